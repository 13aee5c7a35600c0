"""How many identifications per second the emulator applies on one core.

Three figures, batches of 1,000 identifications (unique users, two operations each):

- apply:   the semantics alone (State.apply on decoded, validated items);
- request: everything a request costs except the socket: form decoding of a ~100 KB
           body, JSON decoding, validation, throttle bookkeeping and apply;
- http:    the same batches POSTed to a running emulator over 127.0.0.1 (one client
           connection; client and server share this core, so this is a lower bound).

Run: python benchmarks/emulator_apply.py [--batches N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import urllib.parse

import aiohttp

from amplitude_async.emulator import Emulator
from amplitude_async.emulator._decode import parse_form
from amplitude_async.emulator._ingest import SUCCESS, Ingestor
from amplitude_async.emulator._state import State
from amplitude_async.emulator._throttle import Throttle
from amplitude_async.emulator._validation import check_identifications

BATCH = 1000


class _Clock:
    def now(self) -> float:
        return time.monotonic()


def _batch(number: int) -> list[dict[str, object]]:
    return [
        {
            "user_id": f"user-{number}-{i:04d}",
            "user_properties": {"$set": {"plan": "pro", "name": f"Zoë {i}"}, "$add": {"logins": 1}},
        }
        for i in range(BATCH)
    ]


def _body(items: list[dict[str, object]]) -> bytes:
    return urllib.parse.urlencode({"api_key": "KEY", "identification": json.dumps(items)}).encode()


def bench_apply(batches: int) -> float:
    state = State()
    data = [_batch(n) for n in range(batches)]
    for items in data:
        assert not check_identifications(items, 5)
    # The prepared input is the benchmark's, not the emulator's: keep the garbage
    # collector from traversing it, so only what the emulator allocates is measured.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    for number, items in enumerate(data):
        state.apply(number, items)
    elapsed = time.perf_counter() - started
    gc.unfreeze()
    return batches * BATCH / elapsed


def bench_request(batches: int) -> tuple[float, int]:
    state = State()
    ingestor = Ingestor(state, Throttle(_Clock(), 30), api_keys=["KEY"], max_items=2000)
    bodies = [_body(_batch(n)) for n in range(batches)]
    started = time.perf_counter()
    for number, body in enumerate(bodies):
        reply = ingestor.identify_form(parse_form(body), number)
        assert reply is SUCCESS, reply
    elapsed = time.perf_counter() - started
    assert len(state.applied) == batches * BATCH
    return batches * BATCH / elapsed, len(bodies[0])


async def bench_http(batches: int) -> float:
    bodies = [_body(_batch(n)) for n in range(batches)]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with Emulator(api_keys=["KEY"]) as emu, aiohttp.ClientSession() as http:
        started = time.perf_counter()
        for body in bodies:
            async with http.post(emu.identify_url, data=body, headers=headers) as response:
                assert response.status == 200, await response.text()
        elapsed = time.perf_counter() - started
        assert emu.stats().applied == batches * BATCH
    return batches * BATCH / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    apply_rate = bench_apply(args.batches)
    request_rate, body_size = bench_request(args.batches)
    http_rate = asyncio.run(bench_http(args.batches))
    print(f"batches of {BATCH} identifications, {args.batches} batches, body {body_size:,} bytes")
    print(f"apply:   {apply_rate:>12,.0f} identifications/s")
    print(
        f"request: {request_rate:>12,.0f} identifications/s (decode + validate + throttle + apply)"
    )
    print(
        f"http:    {http_rate:>12,.0f} identifications/s (over 127.0.0.1, client on the same core)"
    )


if __name__ == "__main__":
    main()
