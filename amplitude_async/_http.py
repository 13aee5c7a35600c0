"""The transport edge: the only module that touches aiohttp's client.

aiohttp's exceptions are translated here, once, into :class:`TransportError` subclasses
(``raise ... from exc``), so the rest of the package never catches third-party errors.
Messages name the host and the error class, never a URL query or a header (where a
key could be).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

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


# The proxy each session made by new_session() sends through (None: direct).
_proxies: weakref.WeakKeyDictionary[aiohttp.ClientSession, tuple[URL, aiohttp.BasicAuth | None]] = (
    weakref.WeakKeyDictionary()
)


def new_session(*, max_connections: int, timeout: float, url: str) -> aiohttp.ClientSession:
    """One pooled session for ``url``'s server; keep-alive connections are reused.

    It honours the proxy variables as ``trust_env`` would (HTTP_PROXY / HTTPS_PROXY /
    NO_PROXY, proxy credentials from .netrc), looked up once, here: the clients talk to
    one server. aiohttp's own ``trust_env=True`` looks them up again on every request in
    two thread-pool hops, and also adds .netrc credentials for the server itself, which
    would clash with the profile client's own Authorization header.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        # Our bodies are bytes we encoded ourselves; skip aiohttp's charset guessing.
        auto_decompress=True,
        raise_for_status=False,
        headers={"User-Agent": USER_AGENT},
    )
    # LookupError: no proxy named for this URL, or NO_PROXY exempts it: direct.
    with contextlib.suppress(LookupError):
        _proxies[session] = get_env_proxy_for_url(URL(url))
    return session


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
    if session.closed:
        # A caller's session closed by its owner while a client still uses it: aiohttp
        # would raise RuntimeError. Nothing was sent.
        raise ConnectError(f"the HTTP session for {host} is closed", maybe_applied=False)
    try:
        # Passing timeout=None would switch the session's timeout off: only pass one
        # when the caller has its own.
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = aiohttp.ClientTimeout(total=timeout)
        proxy = _proxies.get(session)
        if proxy is not None:
            extra["proxy"], extra["proxy_auth"] = proxy
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
