"""A User Profile answer read: the profile it carries, or the error it stands for.

The answer is hostile input: its body was read with a bound (``PROFILE_ANSWER_MAX_BYTES``,
a longer one comes flagged ``truncated``), its nesting is checked before it is decoded,
and no decoding error escapes as anything but :class:`APIStatusError`. Every text taken
from it goes through the client's :class:`Scrubber` first (a server may echo the key).

The mapping, decided from the answer:

- ``{"error": "User id and device id not seen before"}``, whatever the status: UserNotFound
- 401: AuthenticationError with Amplitude's text ("Invalid Api-Key", ...), never the key
- 429: RateLimited with ``retry_after`` from the Retry-After header
- 400: BadRequest with the server's message
- 5xx: ServerError (the client retries it)
- any other status, or a 2xx without a profile: APIStatusError

Plain functions without state; the client passes its scrubber in.
"""

from __future__ import annotations

import msgspec

from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    RateLimited,
    ServerError,
    UserNotFound,
)
from ._http import HttpResponse
from ._jsonguard import ANSWER_NESTING_MAX, decode_or_none, too_deep
from ._profile_models import UserProfile, decode_envelope
from ._scrub import Scrubber

__all__ = ["NOT_SEEN_BEFORE", "PROFILE_ANSWER_MAX_BYTES", "answer", "status_error"]

NOT_SEEN_BEFORE = "User id and device id not seen before"
#: Bytes of a profile answer read, at most (after decompression): a larger answer is an
#: APIStatusError, not a profile. Profiles with every part asked for are far smaller.
PROFILE_ANSWER_MAX_BYTES = 4 * 1024 * 1024
#: Characters of a server's text kept in an error message.
_MESSAGE_MAX = 500


def answer(response: HttpResponse, scrub: Scrubber) -> UserProfile:
    """The profile in a response, or raise the error it stands for."""
    status = response.status
    if not 200 <= status < 300:
        raise status_error(response, scrub)
    if response.truncated:
        raise APIStatusError(
            f"profile API answered {status} with a body of more than "
            f"{PROFILE_ANSWER_MAX_BYTES} bytes (or in an unreadable encoding); "
            "not read",
            status=status,
        )
    if too_deep(response.body, ANSWER_NESTING_MAX):
        raise APIStatusError(
            f"profile API answered {status} with a body that is not a profile: "
            f"nested more than {ANSWER_NESTING_MAX} deep",
            status=status,
        )
    try:
        profile, error = decode_envelope(response.body)
    # RecursionError: hostile input on a stack that was already deep.
    except (msgspec.DecodeError, RecursionError) as exc:
        raise APIStatusError(
            f"profile API answered {status} with a body that is not a profile: {exc}",
            status=status,
        ) from None
    if error is not None and _is_not_found(error):
        raise UserNotFound(NOT_SEEN_BEFORE, status=status)
    if profile is not None:
        return profile
    raise APIStatusError(
        scrub.cut(error or "profile API answered without userData", _MESSAGE_MAX),
        status=status,
    )


def status_error(response: HttpResponse, scrub: Scrubber) -> APIStatusError:
    """The error a response that is not a 2xx stands for (see the module docstring)."""
    status = response.status
    message = _error_message(response, scrub)
    if _is_not_found(message):
        return UserNotFound(NOT_SEEN_BEFORE, status=status)
    if status == 401:
        return AuthenticationError(message, status=status)
    if status == 429:
        return RateLimited(message, status=status, retry_after=response.retry_after())
    if status == 400:
        return BadRequest(message, status=status)
    if status >= 500:
        return ServerError(message, status=status)
    return APIStatusError(message, status=status)


class _ErrorBody(msgspec.Struct):
    error: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _error_message(response: HttpResponse, scrub: Scrubber) -> str:
    """Amplitude's ``{"error": ...}`` text if the body has one, else the plain body;
    scrubbed before it is cut to 500 characters (a key cut in two would escape)."""
    body = response.body
    if body[:1] == b"{":
        parsed = decode_or_none(_error_decoder.decode, body, ANSWER_NESTING_MAX)
        error = parsed.error if parsed is not None else None
        if error:
            return scrub.cut(error, _MESSAGE_MAX)
    text = scrub.cut(response.text().strip(), _MESSAGE_MAX)
    return text or f"HTTP {response.status}"


def _is_not_found(message: str) -> bool:
    return message.strip().lower() == NOT_SEEN_BEFORE.lower()
