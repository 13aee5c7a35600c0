"""The transport seam: what the identify client needs of HTTP, and the aiohttp implementation.

The client hands a finished request (method, URL, headers, body bytes) to an
:class:`AsyncTransport` and gets back the whole answer (:class:`HttpResponse`) or a
:class:`TransportError` (nothing usable came back). Everything above this line is pure:
classifying the answer, holds, retries. That is what makes the pipeline testable without
a socket (``amplitude_async.testing.MockTransport``) and the aiohttp dependency
replaceable.

:class:`AiohttpTransport` is the default. It owns its ``aiohttp.ClientSession`` (one pool
of keep-alive connections, opened on first use inside the running loop) and closes it in
:meth:`AiohttpTransport.aclose`. The client closes the transport it was given when it
closes, as httpx does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import aiohttp

from ._http import HttpResponse, new_session, send
from ._scrub import Scrubber

__all__ = ["AiohttpTransport", "AsyncTransport", "HttpRequest", "HttpResponse"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request as the client built it. ``body`` is the encoded form or multipart body.

    Its repr leaves the body and headers out: the body carries the API key.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} {self.url}, {len(self.body)} bytes)"


@runtime_checkable
class AsyncTransport(Protocol):
    """Sends one request and returns the whole answer.

    Raise :class:`~amplitude_async.ConnectError` when no connection could be made or it
    broke (``maybe_applied=False`` only when nothing was sent) and
    :class:`~amplitude_async.RequestTimeout` when no answer came in time. Any other
    exception is a bug: the client stops and reports it (see docs/guarantees.md, 5).
    """

    async def handle_async_request(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """The default transport: one pooled ``aiohttp.ClientSession``, owned here.

    ``max_connections`` bounds the pool (the client passes its ``max_in_flight``);
    ``timeout`` is the total time for one request, in seconds. Answers are read up to a
    bound and decompressed with one (``_http.send``).
    """

    __slots__ = ("_max_connections", "_scrub", "_session", "_timeout")

    def __init__(
        self, *, max_connections: int = 4, timeout: float = 10.0, scrub: Scrubber | None = None
    ) -> None:
        self._max_connections = max_connections
        self._timeout = timeout
        #: Cuts secrets out of aiohttp's error texts (they may quote an echoed request).
        self._scrub = scrub
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, opened on first use (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = new_session(
                max_connections=self._max_connections, timeout=self._timeout
            )
        return self._session

    async def handle_async_request(self, request: HttpRequest) -> HttpResponse:
        return await send(
            self.session,
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            scrub=self._scrub,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "idle"
        return f"AiohttpTransport(max_connections={self._max_connections}, {state})"
