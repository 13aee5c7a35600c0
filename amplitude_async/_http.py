"""The transport edge: the only module that touches aiohttp's client.

aiohttp's exceptions are translated here, once, into :class:`TransportError` subclasses
(``raise ... from exc``), so the rest of the package never catches third-party errors.
Messages name the host and the error class, never a URL query or a header (where a
key could be).

Answers are hostile input: :func:`send` reads at most ``max_body`` bytes of a body, and
inflates a gzip/deflate body itself, in steps that stop at that bound (aiohttp's own
decompression is switched off), so neither a 100 MB error page nor a gzip bomb costs
more than ``max_body`` bytes of memory or of work on the loop. A body cut short is
flagged ``truncated`` and its connection is closed, not reused.
"""

from __future__ import annotations

import contextlib
import weakref
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from ._errors import ConfigurationError, ConnectError, RequestTimeout
from ._scrub import Scrubber
from ._version import __version__

__all__ = [
    "ANSWER_MAX_BYTES",
    "USER_AGENT",
    "HttpResponse",
    "caller_session",
    "new_session",
    "send",
]

#: Sent by the sessions the clients make themselves (a caller's session keeps its own).
USER_AGENT = f"amplitude-async/{__version__}"
#: Bytes of an ``/identify`` answer read, at most (after decompression). The client needs
#: only the status and a short error body; a 429 naming a thousand 100-character ids
#: still fits.
ANSWER_MAX_BYTES = 256 * 1024
#: Read in pieces of this size (also the most a single inflate step produces past need).
_CHUNK = 64 * 1024
# Only codings we can inflate with a bound are asked for; aiohttp would add br/zstd.
_ACCEPT_ENCODING = "gzip, deflate"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status, headers and the whole body of one answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    #: The body was longer than the bound (or in a coding we do not read): ``body``
    #: holds only its start (or nothing).
    truncated: bool = False

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
        # Decompressed by _read_body, with a bound: aiohttp would inflate a bomb whole.
        auto_decompress=False,
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
    max_body: int = ANSWER_MAX_BYTES,
    scrub: Scrubber | None = None,
) -> HttpResponse:
    """Send one request and read its answer (at most ``max_body`` bytes of body, after
    decompression), or raise a :class:`TransportError`.

    aiohttp's error texts may quote what the server sent (an echoed request, secrets
    included): ``scrub`` cuts the secrets out of the message, and an error whose text
    held one is raised without its aiohttp cause, so no traceback shows it either."""
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
        sent_headers = {"Accept-Encoding": _ACCEPT_ENCODING}
        if headers:
            sent_headers.update(headers)
        proxy = _proxies.get(session)
        if proxy is not None:
            extra["proxy"], extra["proxy_auth"] = proxy
        async with session.request(
            method,
            url,
            data=data,
            headers=sent_headers,
            params=params,
            allow_redirects=False,
            # A caller's session may raise on 4xx/5xx; the answer is ours to classify.
            raise_for_status=False,
            # Per request too, so a caller's session (session=) cannot inflate a bomb
            # whole either: _read_body inflates with a bound.
            auto_decompress=False,
            **extra,
        ) as response:
            body, truncated = await _read_body(response, max_body)
            if truncated:
                # The rest is never read: this connection cannot carry another request.
                response.close()
            return HttpResponse(response.status, response.headers, body, truncated)
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise RequestTimeout(f"no answer from {host} in time ({type(exc).__name__})") from exc
    except aiohttp.ClientConnectorError as exc:
        # The connection never opened: nothing was sent.
        text, leaked = _safe(exc, scrub)
        error = ConnectError(
            f"could not connect to {host}: {type(exc).__name__}: {text}", maybe_applied=False
        )
        raise error from (None if leaked else exc)
    except aiohttp.ClientError as exc:
        text, leaked = _safe(exc, scrub)
        error = ConnectError(f"connection to {host} failed: {type(exc).__name__}: {text}")
        raise error from (None if leaked else exc)
    except OSError as exc:
        raise ConnectError(f"connection to {host} failed: {type(exc).__name__}") from exc


async def _read_body(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the (inflated) body, and whether there was more."""
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    inflater = None
    if coding in ("gzip", "x-gzip", "deflate"):
        # wbits 32+: a gzip or zlib header, whichever the server sent.
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
    elif coding not in ("", "identity"):
        return b"", True  # not asked for, and not inflatable with a bound: not read
    out = bytearray()
    raw = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        raw += len(chunk)
        if inflater is not None:
            try:
                # At most what is still wanted, plus one byte to see that there is more;
                # the rest of the input stays in unconsumed_tail, never inflated.
                chunk = inflater.decompress(chunk, limit + 1 - len(out))
            except zlib.error:
                return bytes(out), True
        out += chunk
        if len(out) > limit or raw > limit:
            del out[limit:]
            return bytes(out), True
    return bytes(out), False


def _safe(exc: BaseException, scrub: Scrubber | None) -> tuple[str, bool]:
    """The exception's text, scrubbed, with any URL query cut off (queries may carry
    ids), and whether a secret had to be cut out of it."""
    text = str(exc)
    if scrub is None:
        return text.split("?", 1)[0][:200], False
    cleaned = scrub(text)
    return cleaned.split("?", 1)[0][:200], cleaned != text
