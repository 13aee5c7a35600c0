"""What a :class:`ProfileClient` is given, checked once: its settings and its secret key.

A bad setting is a :class:`ConfigurationError` from the constructor, before any session
exists. The secret key is held by :class:`Secret`, whose repr hides it and whose
scrubber cuts it out of every text a server sends back; no message here echoes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import ConfigurationError
from ._scrub import Scrubber

__all__ = ["DEFAULT_PROFILE_URL", "ProfileConfig", "Secret"]

DEFAULT_PROFILE_URL = "https://profile-api.amplitude.com/v1/userprofile"


class Secret:
    """Holds the secret key; its repr and str never show it."""

    __slots__ = ("_headers", "scrub")

    def __init__(self, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("secret_key must be a non-empty string")
        if any(c.isspace() for c in value):
            # A header value with whitespace or newlines is either a paste error or an
            # injection; the message must not echo the key.
            raise ConfigurationError("secret_key must not contain whitespace")
        self._headers = {"Authorization": f"Api-Key {value}", "Accept": "application/json"}
        #: Cuts the key, in any spelling, out of a text (in case a server echoes it).
        self.scrub = Scrubber(value)

    def headers(self) -> dict[str, str]:
        return self._headers

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileConfig:
    """The checked settings of one client. Times are in seconds (floats)."""

    url: str
    #: Bounds one HTTP attempt.
    timeout: float
    #: Backoff: the first retry waits up to retry_base, doubling up to retry_cap.
    retry_base: float
    retry_cap: float
    #: Bounds one lookup with all its retries.
    retry_deadline: float
    #: Connections of the client's own session, at most.
    max_connections: int

    @classmethod
    def checked(
        cls,
        *,
        server_url: str | None,
        timeout: object,
        retry_base: object,
        retry_cap: object,
        retry_deadline: object,
        max_connections: object,
    ) -> ProfileConfig:
        """The settings, or :class:`ConfigurationError` for the first bad one."""
        url = _check_url(server_url if server_url is not None else DEFAULT_PROFILE_URL)
        # In this order: the first bad one is the one reported.
        attempt = _positive_seconds("timeout", timeout)
        base = _positive_seconds("retry_base", retry_base)
        cap = _positive_seconds("retry_cap", retry_cap)
        deadline = _positive_seconds("retry_deadline", retry_deadline)
        if not isinstance(max_connections, int) or max_connections < 1:
            raise ConfigurationError(
                f"max_connections must be a positive int, got {max_connections!r}"
            )
        return cls(
            url=url,
            timeout=attempt,
            retry_base=base,
            retry_cap=cap,
            retry_deadline=deadline,
            max_connections=max_connections,
        )


def _check_url(url: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("server_url must be an http(s) URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError("server_url must not carry credentials, a query or a fragment")
    return url


def _positive_seconds(name: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)
