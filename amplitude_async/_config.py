"""``ClientConfig``: every tunable of the identify pipeline, checked once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

from ._errors import ConfigurationError
from ._rules import DEFAULT_MIN_ID_LENGTH, MAX_BODY_BYTES, MAX_ITEMS_PER_REQUEST

if TYPE_CHECKING:
    from ._identify import Identify
    from ._outcome import Outcome

__all__ = ["ClientConfig", "OnFull"]

OnFull = Literal["wait", "drop", "raise"]
Encoding = Literal["form", "multipart"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Settings of :class:`AmplitudeClient`. Times are in seconds (floats)."""

    #: Identifications in one request, at most.
    batch_max_items: int = 1000
    #: Encoded request body size, at most (bytes). Amplitude's safe cap is 1 MB.
    batch_max_bytes: int = 900_000
    #: How long the oldest queued operation may wait for a batch to fill.
    flush_interval: float = 0.2
    #: Requests in flight at once.
    max_in_flight: int = 4
    #: Operations accepted but without an outcome yet, at most (bounds memory).
    queue_max: int = 100_000
    #: What identify() does when queue_max is reached: wait for room, drop the
    #: operation (its receipt fails with reason "dropped"), or raise QueueFull.
    on_full: OnFull = "wait"
    #: Seconds to wait for one HTTP answer.
    request_timeout: float = 10.0
    #: Backoff: first retry waits up to retry_base, doubling up to retry_cap (full jitter).
    retry_base: float = 0.5
    retry_cap: float = 30.0
    #: An operation that keeps failing with retriable errors fails this long after its
    #: first attempt (reason "retries_exhausted").
    retry_deadline: float = 300.0
    #: How long identities named in a 429 are held back (when it has no Retry-After).
    throttle_hold: float = 15.0
    #: Every 429 holds its identities at least this long, whatever its Retry-After says
    #: (``Retry-After: 0`` would otherwise re-send at once: a request storm). Never more
    #: than ``throttle_hold``: a shorter throttle_hold (in tests, say) lowers it too.
    min_throttle_hold: float = 1.0
    #: Identities held at once, at most; past it the holds ending soonest are let go.
    throttle_map_max: int = 100_000
    #: Shortest user_id / device_id accepted; any other value than 5 is also sent to the
    #: server as the Identify API's ``options={"min_id_length": N}``.
    min_id_length: int = DEFAULT_MIN_ID_LENGTH
    #: "form" (application/x-www-form-urlencoded) or "multipart" (multipart/form-data).
    encoding: Encoding = "form"
    #: Merge a user's consecutive operations into one identification where the result
    #: is the same (fewer identifications against Amplitude's per-user limits).
    coalesce: bool = True
    #: aclose() gives delivery this long before failing what is left with "shutdown".
    shutdown_timeout: float = 10.0
    #: Called once per operation with its outcome (on the event loop; keep it quick).
    on_outcome: Callable[[Identify, Outcome], None] | None = None
    #: Called at shutdown with the operations that were not delivered.
    on_undelivered: Callable[[list[Identify]], None] | None = None
    #: If set, undelivered operations are appended to this file as JSON lines
    #: (wire identifications) that ``amplitude-async import`` can send later.
    spool_path: str | None = None

    def __post_init__(self) -> None:
        _positive_int("batch_max_items", self.batch_max_items, MAX_ITEMS_PER_REQUEST)
        _positive_int("batch_max_bytes", self.batch_max_bytes, 50 * MAX_BODY_BYTES)
        if self.batch_max_bytes < 1024:
            raise ConfigurationError(
                f"batch_max_bytes must be at least 1024, got {self.batch_max_bytes}"
            )
        _positive_int("max_in_flight", self.max_in_flight, 1024)
        _positive_int("queue_max", self.queue_max, 100_000_000)
        _positive_int("throttle_map_max", self.throttle_map_max, 100_000_000)
        if not isinstance(self.min_id_length, int) or not 1 <= self.min_id_length <= 1024:
            raise ConfigurationError(
                f"min_id_length must be an int from 1 to 1024, got {self.min_id_length!r}"
            )
        _seconds("flush_interval", self.flush_interval, allow_zero=True)
        _seconds("request_timeout", self.request_timeout)
        _seconds("retry_base", self.retry_base, allow_zero=True)
        _seconds("retry_cap", self.retry_cap, allow_zero=True)
        _seconds("retry_deadline", self.retry_deadline, allow_zero=True)
        _seconds("throttle_hold", self.throttle_hold, allow_zero=True)
        _seconds("min_throttle_hold", self.min_throttle_hold, allow_zero=True)
        _seconds("shutdown_timeout", self.shutdown_timeout, allow_zero=True)
        if self.retry_cap < self.retry_base:
            raise ConfigurationError(
                f"retry_cap ({self.retry_cap}) must be at least retry_base ({self.retry_base})"
            )
        if not isinstance(self.coalesce, bool):
            raise ConfigurationError(f"coalesce must be True or False, got {self.coalesce!r}")
        if self.on_full not in ("wait", "drop", "raise"):
            raise ConfigurationError(
                f"on_full must be 'wait', 'drop' or 'raise', got {self.on_full!r}"
            )
        if self.encoding not in ("form", "multipart"):
            raise ConfigurationError(
                f"encoding must be 'form' or 'multipart', got {self.encoding!r}"
            )
        for name in ("on_outcome", "on_undelivered"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigurationError(f"{name} must be callable, got {type(value).__name__}")
        if self.spool_path is not None and not isinstance(self.spool_path, str):
            raise ConfigurationError(
                f"spool_path must be a str path, got {type(self.spool_path).__name__}"
            )

    def replace(self, **changes: object) -> ClientConfig:
        """A copy with some settings changed (checked again)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigurationError(f"unknown ClientConfig setting(s): {', '.join(unknown)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ClientConfig(**values)


def _positive_int(name: str, value: object, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ConfigurationError(f"{name} must be an int from 1 to {maximum}, got {value!r}")


def _seconds(name: str, value: object, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ConfigurationError(f"{name} must be {bound} seconds, got {value!r}")
