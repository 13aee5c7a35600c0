"""A lean ``/identify`` sink for benchmarks, run in its own process.

It really parses each request (form or multipart body, then the JSON array) and counts
identifications, so the client cannot cheat, but applies nothing: the client, not the
server, is what a throughput benchmark measures. ``GET /count`` reports the totals.

For the benchmark suite (benchmarks/suite.py) it also has a few controls, all off by
default so ``python -m benchmarks.throughput`` measures the same lean path as before:

``GET /count`` also says the sink's own CPU seconds so far (``cpu_seconds``): a run
that kept the sink busy most of its wall time was measuring the sink.

- ``POST /_reset``  zero the counters; body ``{"track_seq": true}`` turns on the order
  check: every accepted identification's ``$append.seq`` values (scalar or list) must
  continue its user's sequence 0, 1, 2, ... (``GET /_seq`` reports it).
- ``POST /_throttle`` ``{"users": [...]}``: requests naming any of them get a 429 with
  Amplitude's body (``throttled_users``, ``throttled_events``), nothing counted;
  ``POST /_unthrottle`` lifts it.
- ``POST /hang/identify``: read nothing, answer never (a server that does not answer).

    python -m benchmarks._sink --port 0     # prints "port N" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import msgspec
from aiohttp import web

# The emulator's form decoder: percent-escapes decoded in C (binascii.a2b_qp), exact,
# with urllib's decoder as the fallback. urllib alone costs ~8 ms per 1,000-item body,
# which made this sink, not the client, the ceiling of the raw loop.
from amplitude_async.emulator._decode import percent_decode

_decode = msgspec.json.decode
_encode = msgspec.json.encode


class Sink:
    def __init__(self) -> None:
        self.requests = 0
        self.identifications = 0
        self.bytes = 0
        self.throttled_requests = 0
        self.hanging = 0
        self.throttled: set[str] = set()
        self.track_seq = False
        #: user -> next expected sequence number (when track_seq).
        self.seq_next: dict[str, int] = {}
        #: Values that did not continue their user's sequence (reordered, lost or repeated).
        self.seq_violations = 0
        self.seq_values = 0
        self._forever = asyncio.Event()

    async def identify(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        self.bytes += len(body)
        if request.content_type == "application/x-www-form-urlencoded":
            marker = body.find(b"identification=")
            if marker < 0:
                return web.Response(status=400, text="missing_event")
            end = body.find(b"&", marker)
            raw = body[marker + len("identification=") : end if end >= 0 else None]
            payload = percent_decode(raw)
        else:
            form = await _multipart(request, body)
            payload = form.get("identification", b"")
        try:
            items = _decode(payload)
        except msgspec.DecodeError:
            return web.Response(status=400, text="missing_event")
        if not isinstance(items, list):
            items = [items]
        if self.throttled or self.track_seq:
            throttled = self._throttled_in(items)
            if throttled is not None:
                return throttled
            if self.track_seq:
                self._check_seq(items)
        self.identifications += len(items)
        return web.Response(text="success")

    def _throttled_in(self, items: list[Any]) -> web.Response | None:
        if not self.throttled:
            return None
        users: dict[str, int] = {}
        indices: list[int] = []
        for index, item in enumerate(items):
            user = item.get("user_id")
            if user in self.throttled:
                users[user] = users.get(user, 0) + 1
                indices.append(index)
        if not users:
            return None
        self.throttled_requests += 1
        body = {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": 30,
            "throttled_devices": {},
            "throttled_users": {user: 30 + count for user, count in users.items()},
            "throttled_events": indices,
        }
        return web.Response(status=429, body=_encode(body), content_type="application/json")

    def _check_seq(self, items: list[Any]) -> None:
        seq_next = self.seq_next
        for item in items:
            appended = (item.get("user_properties") or {}).get("$append") or {}
            if "seq" not in appended:
                continue
            values = appended["seq"]
            if not isinstance(values, list):
                values = [values]
            user = item.get("user_id")
            expected = seq_next.get(user, 0)
            for value in values:
                self.seq_values += 1
                if value != expected:
                    self.seq_violations += 1
                expected = max(expected, value + 1) if isinstance(value, int) else expected
            seq_next[user] = expected

    async def httpapi(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        self.bytes += len(body)
        try:
            events = _decode(body).get("events", [])
        except (msgspec.DecodeError, AttributeError):
            return web.Response(status=400)
        self.identifications += len(events)
        return web.json_response({"code": 200, "events_ingested": len(events)})

    async def hang(self, request: web.Request) -> web.Response:
        self.hanging += 1
        try:
            await self._forever.wait()
        finally:
            self.hanging -= 1
        return web.Response(status=503)  # pragma: no cover - never reached

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "identifications": self.identifications,
                "bytes": self.bytes,
                "throttled_requests": self.throttled_requests,
                "hanging": self.hanging,
                "pid": os.getpid(),
                "cpu_seconds": time.process_time(),
                "cpus": sorted(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else None,
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        options = await request.json() if request.can_read_body else {}
        self.requests = self.identifications = self.bytes = self.throttled_requests = 0
        self.throttled = set()
        self.track_seq = bool(options.get("track_seq", False))
        self.seq_next = {}
        self.seq_violations = self.seq_values = 0
        return web.json_response({"ok": True, "cpu_seconds": time.process_time()})

    async def throttle(self, request: web.Request) -> web.Response:
        self.throttled = set((await request.json()).get("users", []))
        return web.json_response({"throttled": len(self.throttled)})

    async def unthrottle(self, request: web.Request) -> web.Response:
        self.throttled = set()
        return web.json_response({"throttled": 0})

    async def seq(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "values": self.seq_values,
                "violations": self.seq_violations,
                "next": self.seq_next,
            }
        )


async def _multipart(request: web.Request, body: bytes) -> dict[str, bytes]:
    boundary = request.content_type_params.get("boundary", "").encode()  # type: ignore[attr-defined]
    parts: dict[str, bytes] = {}
    for chunk in body.split(b"--" + boundary):
        head, _, value = chunk.partition(b"\r\n\r\n")
        if b'name="' in head:
            name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
            parts[name] = value[:-2] if value.endswith(b"\r\n") else value
    return parts


def build_app(sink: Sink) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/identify", sink.identify)
    app.router.add_post("/2/httpapi", sink.httpapi)
    app.router.add_post("/hang/identify", sink.hang)
    app.router.add_get("/count", sink.count)
    app.router.add_post("/_reset", sink.reset)
    app.router.add_post("/_throttle", sink.throttle)
    app.router.add_post("/_unthrottle", sink.unthrottle)
    app.router.add_get("/_seq", sink.seq)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(build_app(Sink()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    actual = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"port {actual}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
