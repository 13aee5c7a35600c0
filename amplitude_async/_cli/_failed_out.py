"""``--failed-out``: permanently failed identifications, as JSON lines ``import`` accepts.

Each line is the wire identification plus a ``_failure`` object (reason, message, HTTP
status, source line); ``import`` ignores that key, so the file can be fixed and fed back.
"""

from __future__ import annotations

import os
from typing import IO, Any

import msgspec

from ._records import FAILURE_KEY

__all__ = ["FailedOut"]


class FailedOut:
    """An append-only JSON-lines file; ``None`` path: count only."""

    def __init__(self, path: str | None, *, append: bool) -> None:
        self.path = path
        self.written = 0
        self._encode = msgspec.json.Encoder().encode
        self._file: IO[bytes] | None = open(path, "ab" if append else "wb") if path else None  # noqa: SIM115 - closed by close()

    def write(
        self, wire: dict[str, Any], reason: str, message: str, status: int | None, line: int
    ) -> None:
        self.written += 1
        if self._file is None:
            return
        failure = {"reason": reason, "message": message, "status": status, "line": line}
        self._file.write(self._encode({**wire, FAILURE_KEY: failure}) + b"\n")

    def flush(self) -> int | None:
        """Hand buffered lines to the OS; returns the descriptor to fsync (None: no file)."""
        if self._file is None:
            return None
        self._file.flush()
        return self._file.fileno()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
