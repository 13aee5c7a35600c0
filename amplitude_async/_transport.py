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

from ._http import HttpResponse, caller_session, new_session, send
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
    """The default transport: one pooled ``aiohttp.ClientSession``.

    ``max_connections`` bounds the pool (the client passes its ``max_in_flight``);
    ``timeout`` is the total time for one request, in seconds. Answers are read up to a
    bound and decompressed with one (``_http.send``). Its own session honours the proxy
    variables and sends ``User-Agent: amplitude-async/<version>``; it is opened on first
    use and closed by :meth:`aclose`. ``session``: a caller's session to send through
    instead (its connector, proxy and TLS settings apply; ``timeout`` still bounds each
    request); the caller owns it, :meth:`aclose` leaves it open.
    """

    __slots__ = ("_caller", "_max_connections", "_scrub", "_session", "_timeout", "_url")

    def __init__(
        self,
        *,
        max_connections: int = 4,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        url: str | None = None,
        scrub: Scrubber | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._timeout = timeout
        self._caller = caller_session(session)
        #: The server the session is for (its proxy is looked up once, for this URL).
        self._url = url
        #: Cuts secrets out of aiohttp's error texts (they may quote an echoed request).
        self._scrub = scrub
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session requests go through (its own is opened on first use, inside the
        running event loop)."""
        if self._caller is not None:
            return self._caller
        if self._session is None or self._session.closed:
            self._session = new_session(
                max_connections=self._max_connections, timeout=self._timeout, url=self._url or ""
            )
        return self._session

    async def handle_async_request(self, request: HttpRequest) -> HttpResponse:
        if self._url is None:
            self._url = request.url
        return await send(
            self.session,
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            # A caller's session has the caller's timeout: give each request ours.
            timeout=self._timeout if self._caller is not None else None,
            scrub=self._scrub,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def __repr__(self) -> str:
        if self._caller is not None:
            state = "caller's session"
        else:
            state = "open" if self._session is not None and not self._session.closed else "idle"
        return f"AiohttpTransport(max_connections={self._max_connections}, {state})"
