"""One worker process for the multi-process test: ``python -m tests.kafka.worker_main``.

Short holds and timeouts, so that a test with 429s and a killed worker runs in seconds;
otherwise exactly what a deployment runs. Prints its final counters as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import amplitude_async as aa
from amplitude_async.kafka import KafkaIdentifyWorker


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("--bootstrap", "--topic", "--group", "--server-url", "--api-key"):
        parser.add_argument(name, required=True)
    parser.add_argument("--max-unsettled", type=int, default=50)
    args = parser.parse_args(argv)
    config = aa.ClientConfig(
        flush_interval=0.05,
        throttle_hold=0.5,
        retry_base=0.05,
        retry_cap=0.5,
        shutdown_timeout=0.0,
    )
    client = aa.AmplitudeClient(args.api_key, server_url=args.server_url, config=config)
    worker = KafkaIdentifyWorker(
        client,
        bootstrap_servers=args.bootstrap,
        topic=args.topic,
        group_id=args.group,
        drain_timeout=8.0,
        rebalance_timeout=12.0,
        session_timeout=6.0,
        max_unsettled=args.max_unsettled,
        commit_interval=0.5,
        # Small fetches: pausing at max_unsettled then bites, as with real backlogs.
        consumer_options={"max_poll_records": 50},
    )
    task = asyncio.create_task(worker.run(handle_signals=True))
    while not task.done():
        # Status on stderr, so that a test can see what a worker it kills was doing.
        now = worker.stats()
        print(
            json.dumps(
                {"assigned": now.assigned, "consumed": now.consumed, "delivered": now.delivered}
            ),
            file=sys.stderr,
            flush=True,
        )
        await asyncio.wait({task}, timeout=0.25)
    stats = task.result()
    client_stats = stats.client
    print(
        json.dumps(
            {
                "consumed": stats.consumed,
                "delivered": stats.delivered,
                "rebalances": stats.rebalances,
                "commits": stats.commits,
                "not_sent": stats.not_sent,
                "throttle_responses": client_stats.throttle_responses if client_stats else 0,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
