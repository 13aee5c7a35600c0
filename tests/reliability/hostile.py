"""A hostile server for the hostile-server tests: aiohttp.web on 127.0.0.1, every answer
decided by the test.

``HostileServer(answer)`` serves ``POST /identify`` and ``GET /v1/userprofile``; each
request is counted and handed to ``answer(number, request)``, which returns the
response (any status, headers, body, encoding) or raises to break the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

Answer = Callable[[int, web.Request], Awaitable[web.StreamResponse] | web.StreamResponse]


#: A JSON text nested ``depth`` deep, as the value of a field no client reads.
def deep_json(depth: int, *, field: str = "noise") -> bytes:
    return b'{"' + field.encode() + b'":' + b"[" * depth + b"]" * depth + b"}"


class HostileServer:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0
        self.bodies: list[bytes] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base = ""

    @property
    def identify_url(self) -> str:
        return f"{self.base}/identify"

    @property
    def profile_url(self) -> str:
        return f"{self.base}/v1/userprofile"

    async def wait_for_requests(self, count: int, within: float = 5.0) -> None:
        """Return once ``count`` requests have arrived (TimeoutError after ``within`` s)."""
        async with asyncio.timeout(within):
            while self.requests < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        number = self.requests
        self.requests += 1
        self.bodies.append(await request.read())
        self.arrived.set()
        result = self.answer(number, request)
        if isinstance(result, web.StreamResponse):
            return result
        return await result

    async def __aenter__(self) -> HostileServer:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/identify", self._handle)
        app.router.add_get("/v1/userprofile", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
