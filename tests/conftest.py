"""Shared fixtures: a scripted ``/identify`` server on 127.0.0.1 for exact client tests.

The emulator (amplitude_async.emulator) is the end-to-end reference; this server lets a
test decide each answer (429 naming someone, 413 above a size, a reset, a hang) and
records exactly what arrived, decoded from the real form body.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

import amplitude_async as aa

Responder = Callable[["Request"], Awaitable[web.StreamResponse] | web.StreamResponse]


@dataclass
class Request:
    """One request that reached the scripted server."""

    number: int
    api_key: str
    identifications: list[dict[str, Any]]
    body: bytes
    content_type: str
    raw: web.Request = field(repr=False)
    #: The status the server answered with.
    status: int = 0

    def users(self) -> list[str | None]:
        return [i.get("user_id") for i in self.identifications]


class ScriptedServer:
    """Records every /identify request; answers with ``responder`` (default: 200 success)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responder: Responder = lambda request: web.Response(text="success")
        self.url = ""
        self._runner: web.AppRunner | None = None

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Identifications of requests answered 2xx, in arrival order."""
        return [i for r in self.requests if 200 <= r.status < 300 for i in r.identifications]

    async def _handle(self, raw: web.Request) -> web.StreamResponse:
        body = await raw.read()
        ctype = raw.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            form = await _parse_multipart(raw.headers["Content-Type"], body)
        else:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8")).items()}
        request = Request(
            number=len(self.requests),
            api_key=form.get("api_key", ""),
            identifications=json.loads(form.get("identification", "[]")),
            body=body,
            content_type=ctype,
            raw=raw,
        )
        self.requests.append(request)
        answer = self.responder(request)
        if asyncio.iscoroutine(answer) or isinstance(answer, Awaitable):
            answer = await answer
        request.status = answer.status
        return answer

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/identify", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/identify"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts: dict[str, str] = {}
    for chunk in body.split(b"--" + boundary):
        if b'name="' not in chunk:
            continue
        head, _, value = chunk.partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = value.rstrip(b"\r\n").decode()
    return parts


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def fast_config(**changes: Any) -> aa.ClientConfig:
    """A config for tests: short linger, short backoff, short shutdown."""
    base: dict[str, Any] = dict(
        flush_interval=0.01,
        retry_base=0.01,
        retry_cap=0.05,
        request_timeout=2.0,
        shutdown_timeout=2.0,
        throttle_hold=0.2,
    )
    base.update(changes)
    return aa.ClientConfig(**base)


def op(user: str, seq: int | None = None, **sets: Any) -> aa.Identify:
    """An operation that appends ``seq`` to the user's "log" list, so order is visible."""
    identify = aa.Identify(user_id=user)
    if seq is not None:
        identify.append("log", seq)
    for name, value in sets.items():
        identify.set(name, value)
    return identify


def appended_log(identifications: list[dict[str, Any]], user: str) -> list[Any]:
    """The "log" values appended for ``user``, in the order the server received them."""
    out: list[Any] = []
    for ident in identifications:
        if ident.get("user_id") != user:
            continue
        value = ident.get("user_properties", {}).get("$append", {}).get("log")
        if value is None:
            continue
        out.extend(value if isinstance(value, list) else [value])
    return out


@asynccontextmanager
async def local_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) for the block; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
