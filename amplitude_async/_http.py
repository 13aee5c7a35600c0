"""The transport edge: the only module that touches aiohttp's client.

aiohttp's exceptions are translated here, once, into :class:`TransportError` subclasses
(``raise ... from exc``), so the rest of the package never catches third-party errors.
Messages name the host and the error class, never a URL query or a header (where a
key could be).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ._errors import ConfigurationError, ConnectError, RequestTimeout
from ._version import __version__

__all__ = ["USER_AGENT", "HttpResponse", "caller_session", "new_session", "send"]

#: Sent by the sessions the clients make themselves (a caller's session keeps its own).
USER_AGENT = f"amplitude-async/{__version__}"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status, headers and the whole body of one answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def retry_after(self) -> float | None:
        """The ``Retry-After`` header in seconds, when it is a number."""
        value = self.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds if 0 <= seconds < 86_400 else None


def new_session(*, max_connections: int, timeout: float) -> aiohttp.ClientSession:
    """One pooled session; keep-alive connections are reused across requests.

    ``trust_env``: HTTP(S)_PROXY / NO_PROXY and .netrc apply, as in every aiohttp or
    requests program; a service behind an egress proxy needs no code for it.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        # Our bodies are bytes we encoded ourselves; skip aiohttp's charset guessing.
        auto_decompress=True,
        raise_for_status=False,
        trust_env=True,
        headers={"User-Agent": USER_AGENT},
    )


def caller_session(session: object) -> aiohttp.ClientSession | None:
    """Check a ``session=`` argument: None or an open :class:`aiohttp.ClientSession`."""
    if session is None:
        return None
    if not isinstance(session, aiohttp.ClientSession):
        raise ConfigurationError(
            f"session must be an aiohttp.ClientSession, got {type(session).__name__}"
        )
    if session.closed:
        raise ConfigurationError("session is closed; pass an open aiohttp.ClientSession")
    return session


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - aiohttp's per-request timeout
) -> HttpResponse:
    """Send one request and read the whole answer, or raise a :class:`TransportError`."""
    host = urlsplit(url).netloc
    try:
        # Passing timeout=None would switch the session's timeout off: only pass one
        # when the caller has its own.
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with session.request(
            method,
            url,
            data=data,
            headers=headers,
            params=params,
            allow_redirects=False,
            # A caller's session may raise on 4xx/5xx; the answer is ours to classify.
            raise_for_status=False,
            **extra,
        ) as response:
            body = await response.read()
            return HttpResponse(response.status, response.headers, body)
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise RequestTimeout(f"no answer from {host} in time ({type(exc).__name__})") from exc
    except aiohttp.ClientConnectorError as exc:
        # The connection never opened: nothing was sent.
        raise ConnectError(
            f"could not connect to {host}: {type(exc).__name__}: {_safe(exc)}",
            maybe_applied=False,
        ) from exc
    except aiohttp.ClientError as exc:
        raise ConnectError(
            f"connection to {host} failed: {type(exc).__name__}: {_safe(exc)}"
        ) from exc
    except OSError as exc:
        raise ConnectError(f"connection to {host} failed: {type(exc).__name__}") from exc


def _safe(exc: BaseException) -> str:
    """The exception's text with any URL query cut off (queries may carry ids)."""
    text = str(exc)
    return text.split("?", 1)[0][:200]
