"""Test helpers: a transport that calls your function instead of the network, and time
that moves only when you say so.

>>> from amplitude_async.testing import ManualClock, MockTransport, response
>>> def handler(request):
...     return response(429, json={"code": 429, "throttled_users": {"user-1": 31}})
>>> async with AmplitudeClient(key, transport=MockTransport(handler), clock=ManualClock()) as amp:
...     ...

``MockTransport(handler)`` follows httpx's pattern: ``handler(request)`` gets each
:class:`HttpRequest` and returns an :class:`HttpResponse` (or an awaitable of one), or
raises :class:`~amplitude_async.ConnectError` / :class:`~amplitude_async.RequestTimeout`
to play a network failure. :meth:`HttpRequest` bodies can be read back with
:func:`identifications`.
"""

from __future__ import annotations

import inspect
import json as _json
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from ._clock import ManualClock
from ._transport import AsyncTransport, HttpRequest, HttpResponse

__all__ = [
    "AsyncTransport",
    "HttpRequest",
    "HttpResponse",
    "ManualClock",
    "MockTransport",
    "identifications",
    "response",
]

Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class MockTransport:
    """An :class:`AsyncTransport` that answers every request with ``handler(request)``.

    ``requests`` records every request it was handed, in order; ``closed`` says whether
    the client closed it.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.closed = False

    async def handle_async_request(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, HttpResponse), f"the handler returned {answer!r}"
        return answer

    async def aclose(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} request(s))"


def response(
    status: int = 200,
    *,
    text: str | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """An answer for a handler: ``text`` as the body, or ``json`` encoded (default:
    "success" for a 2xx, empty otherwise). Header names are case-insensitive."""
    if json is not None:
        body = _json.dumps(json).encode("utf-8")
    elif text is not None:
        body = text.encode("utf-8")
    else:
        body = b"success" if 200 <= status < 300 else b""
    return HttpResponse(status, CIMultiDictProxy(CIMultiDict(headers or {})), body)


def identifications(request: HttpRequest) -> list[dict[str, Any]]:
    """The identifications a form-encoded request carries, decoded (for assertions)."""
    form = urllib.parse.parse_qs(request.body.decode("utf-8"))
    decoded: list[dict[str, Any]] = _json.loads(form["identification"][0])
    return decoded
