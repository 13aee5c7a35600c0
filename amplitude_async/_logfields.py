"""The ``extra=`` fields every log record of the package carries.

JSON log formatters and structlog read attributes of the record, not the message: each
record gets the same six fields (None where one does not apply), so a dashboard can
filter on ``event`` and sum ``count`` without parsing prose.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LOG_FIELDS", "fields"]

#: The attributes set on every record, in this order.
LOG_FIELDS = ("event", "count", "reason", "status", "attempt", "delay")


def fields(
    event: str,
    *,
    count: int | None = None,
    reason: str | None = None,
    status: int | None = None,
    attempt: int | None = None,
    delay: float | None = None,
) -> dict[str, Any]:
    """The ``extra=`` mapping of one record. ``event`` is a stable dotted name such as
    ``identify.retry``; ``delay`` is in seconds. Never a key, never an identity."""
    return {
        "event": event,
        "count": count,
        "reason": reason,
        "status": status,
        "attempt": attempt,
        "delay": delay,
    }
