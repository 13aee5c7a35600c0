"""``--failed-out``: permanently failed identifications, as JSON lines ``import`` accepts.

Each line is the wire identification plus a ``_failure`` object (reason, message, HTTP
status, source line); ``import`` ignores that key, so the file can be fixed and fed back.
A line that was not an identification at all (not JSON, not an object, a CSV row with the
wrong number of cells) is kept as ``{"_failure": {"reason": "bad_line", ..., "raw": text}}``:
replace it with the fixed identification and import the file again.
"""

from __future__ import annotations

import os
from typing import IO, Any, Final

import msgspec

from ._records import FAILURE_KEY, RAW_KEY

__all__ = ["BAD_LINE", "FailedOut"]

#: The ``_failure`` reason of a line that is not an identification.
BAD_LINE: Final = "bad_line"


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

    def write_unreadable(self, raw: str, message: str, line: int) -> None:
        """A line that is not an identification, with its text, to be fixed by hand."""
        self.written += 1
        if self._file is None:
            return
        failure = {
            "reason": BAD_LINE,
            "message": message,
            "status": None,
            "line": line,
            RAW_KEY: raw,
        }
        self._file.write(self._encode({FAILURE_KEY: failure}) + b"\n")

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
