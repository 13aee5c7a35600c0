"""A lean ``/identify`` sink for benchmarks, run in its own process.

It really parses each request (form or multipart body, then the JSON array) and counts
identifications, so the client cannot cheat, but applies nothing: the client, not the
server, is what a throughput benchmark measures. ``GET /count`` reports the totals.

    python -m benchmarks._sink --port 0     # prints "port N" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.parse

import msgspec
from aiohttp import web

_decode = msgspec.json.decode


class Sink:
    def __init__(self) -> None:
        self.requests = 0
        self.identifications = 0
        self.bytes = 0

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
            payload = urllib.parse.unquote_to_bytes(raw.replace(b"+", b" "))
        else:
            form = await _multipart(request, body)
            payload = form.get("identification", b"")
        try:
            items = _decode(payload)
        except msgspec.DecodeError:
            return web.Response(status=400, text="missing_event")
        self.identifications += len(items) if isinstance(items, list) else 1
        return web.Response(text="success")

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

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "identifications": self.identifications,
                "bytes": self.bytes,
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
    app.router.add_get("/count", sink.count)
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
