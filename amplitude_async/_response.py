"""What an answer from ``/identify`` means for the operations it carried.

One pure function, :func:`classify`, turns a status and body (or a transport error) into
a :class:`Verdict` the sender acts on: delivered, hold these identities, split, narrow
the bad items, stop (auth), or retry later. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import msgspec

from ._errors import TransportError
from ._http import HttpResponse
from ._jsonguard import ANSWER_NESTING_MAX, decode_or_none
from ._rules import INVALID_API_KEY_TEXT
from ._scrub import REDACTED, Scrubber

__all__ = ["REDACTED", "Verdict", "VerdictKind", "classify", "classify_transport_error"]

# Statuses after which the request may already have been applied (DESIGN section 3):
# a retry can duplicate. 503 and 429 were not applied.
_AMBIGUOUS_STATUSES = frozenset((500, 502, 504))
_MESSAGE_MAX = 300
#: No secrets to cut out (a classify() called without a scrubber).
_NOTHING = Scrubber()


class VerdictKind(enum.Enum):
    DELIVERED = "delivered"
    THROTTLED = "throttled"
    TOO_LARGE = "too_large"
    INVALID = "invalid"
    AUTH = "auth"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    status: int | None
    message: str = ""
    #: THROTTLED: identities the server named (empty sets: it named nobody).
    users: frozenset[str] = field(default_factory=frozenset)
    devices: frozenset[str] = field(default_factory=frozenset)
    quota_users: frozenset[str] = field(default_factory=frozenset)
    quota_devices: frozenset[str] = field(default_factory=frozenset)
    #: INVALID: indices (into the request's identification array) the server named,
    #: or None when it did not say which.
    indices: frozenset[int] | None = None
    #: INVALID: whether the refusal may be about some items only (a 400), so narrowing
    #: by bisecting can deliver the rest. Other 4xx and 3xx refuse the request itself.
    narrow: bool = True
    #: THROTTLED / RETRY: the server's Retry-After, in seconds.
    retry_after: float | None = None
    #: THROTTLED: the per-identity identifications per second the server allows, if said.
    eps_threshold: int | None = None
    #: RETRY: the request may have been applied (a retry may duplicate it).
    ambiguous: bool = False


class _ErrorBody(msgspec.Struct):
    """The HTTP V2 error shape Amplitude documents; every part optional."""

    code: int | None = None
    error: str | None = None
    eps_threshold: float | None = None
    throttled_users: dict[str, float] | None = None
    throttled_devices: dict[str, float] | None = None
    exceeded_daily_quota_users: dict[str, float] | None = None
    exceeded_daily_quota_devices: dict[str, float] | None = None
    events_with_invalid_fields: dict[str, list[int]] | None = None
    events_with_missing_fields: dict[str, list[int]] | None = None
    # Not in the docs' tables but sent by Amplitude and read by every official SDK
    # (Amplitude-Python http_client.py invalid_or_silenced_index; analytics-go
    # invalidOrSilencedEventIndexes; analytics-core handleInvalidResponse).
    events_with_invalid_id_lengths: dict[str, list[int]] | None = None
    silenced_events: list[int] | None = None


_decode_error_body = msgspec.json.Decoder(_ErrorBody).decode


def _parse(body: bytes) -> _ErrorBody | None:
    # Hostile input: a body nested thousands deep must not raise RecursionError here
    # (it would kill the sender); it is simply not a body we understand.
    return decode_or_none(_decode_error_body, body, ANSWER_NESTING_MAX)


def _message(response: HttpResponse, parsed: _ErrorBody | None, scrub: Scrubber) -> str:
    if parsed is not None and parsed.error:
        text = parsed.error
    else:
        text = response.text().strip() or f"HTTP {response.status}"
    # A server or proxy may echo the request, key included: cut it out (in any
    # spelling) before the text is shortened and shown anywhere.
    return scrub.cut(text, _MESSAGE_MAX)


def classify(response: HttpResponse, scrub: Scrubber = _NOTHING) -> Verdict:
    """The meaning of one answer from ``/identify``. ``scrub`` cuts the secrets (the
    API key) out of the server's message."""
    status = response.status
    if 200 <= status < 300:
        return Verdict(VerdictKind.DELIVERED, status)
    parsed = _parse(response.body) if response.body[:1] == b"{" else None
    message = _message(response, parsed, scrub)
    if status in (401, 403) or (status == 400 and _is_invalid_key(message)):
        return Verdict(VerdictKind.AUTH, status, "the API key was not accepted")
    if status == 429:
        p = parsed or _ErrorBody()
        return Verdict(
            VerdictKind.THROTTLED,
            status,
            message,
            users=frozenset(p.throttled_users or ()),
            devices=frozenset(p.throttled_devices or ()),
            quota_users=frozenset(p.exceeded_daily_quota_users or ()),
            quota_devices=frozenset(p.exceeded_daily_quota_devices or ()),
            retry_after=response.retry_after(),
            eps_threshold=_threshold(p.eps_threshold),
        )
    if status in (413, 414):
        return Verdict(VerdictKind.TOO_LARGE, status, message)
    if status == 400:
        return Verdict(VerdictKind.INVALID, status, message, indices=_indices(parsed))
    if status >= 500 or status == 408:
        return Verdict(
            VerdictKind.RETRY,
            status,
            message,
            retry_after=response.retry_after(),
            ambiguous=status in _AMBIGUOUS_STATUSES,
        )
    # Any other 4xx, or a redirect (not followed): the request itself is refused (a
    # wrong URL, say); it will not get better by retrying, nor by sending its items
    # one by one (that would be a request storm against the wrong endpoint).
    hint = " (check server_url)" if status < 400 or status in (404, 405) else ""
    message = f"the request was refused with HTTP {status}{hint}: {message}"[:_MESSAGE_MAX]
    return Verdict(VerdictKind.INVALID, status, message, indices=None, narrow=False)


def classify_transport_error(exc: TransportError, scrub: Scrubber = _NOTHING) -> Verdict:
    """A request that got no answer: retry; it may have been applied unless it never left."""
    # A connection that could not be opened sent nothing; a reset or timeout may have.
    message = scrub.cut(str(exc), _MESSAGE_MAX)
    return Verdict(VerdictKind.RETRY, None, message, ambiguous=exc.maybe_applied)


def _is_invalid_key(message: str) -> bool:
    lowered = message.lower()
    return INVALID_API_KEY_TEXT in lowered or "invalid api key" in lowered


def _indices(parsed: _ErrorBody | None) -> frozenset[int] | None:
    if parsed is None:
        return None
    found: set[int] = set()
    for table in (
        parsed.events_with_invalid_fields,
        parsed.events_with_missing_fields,
        parsed.events_with_invalid_id_lengths,
    ):
        if table:
            for indices in table.values():
                found.update(i for i in indices if isinstance(i, int))
    if parsed.silenced_events:
        found.update(i for i in parsed.silenced_events if isinstance(i, int))
    return frozenset(found) if found else None


def _threshold(value: float | None) -> int | None:
    if value is None or not 1 <= value < 1e9:  # also refuses NaN
        return None
    return int(value)
