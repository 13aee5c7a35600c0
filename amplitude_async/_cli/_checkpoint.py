"""Import checkpoints: which lines already have an outcome, kept across runs.

The checkpoint's ``line`` advances past line N only when every operation from lines
<= N is settled: delivered, or permanently failed and written to --failed-out. Lines
above it that are settled too are kept as ranges, so a resumed import re-sends only
what really has no outcome (operations that were in flight or held when it stopped).
Each user's settled lines are a prefix of that user's lines (the client delivers a
user's operations in order), so skipping them keeps every user's order.

The file is JSON, written atomically (a temporary file, fsync, ``os.replace``).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["Checkpoint", "CheckpointError", "Settlement", "load_checkpoint", "save_checkpoint"]

_VERSION: Final = 1
#: Ranges kept above the low watermark, at most; past it the rest is simply re-sent.
MAX_RANGES: Final = 10_000


class CheckpointError(ValueError):
    """The checkpoint file cannot be used (unreadable, or written for another import)."""


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file says."""

    source: str
    format: str
    shard: str | None
    #: Every line <= ``line`` is settled.
    line: int = 0
    #: Inclusive ranges of settled lines above ``line``, sorted.
    settled_after: tuple[tuple[int, int], ...] = ()
    #: True when the import read its whole source and every line is settled.
    complete: bool = False
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(a for a, _ in self.settled_after))

    def done(self, line: int) -> bool:
        """Whether ``line`` already has an outcome (thread-safe: the object is frozen)."""
        if line <= self.line:
            return True
        i = bisect.bisect_right(self._starts, line) - 1
        return i >= 0 and line <= self.settled_after[i][1]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "source": self.source,
            "format": self.format,
            "shard": self.shard,
            "line": self.line,
            "settled_after": [list(r) for r in self.settled_after],
            "complete": self.complete,
        }

    def check_matches(self, source: str, format: str, shard: str | None) -> None:
        for name, mine, theirs in (
            ("source", self.source, source),
            ("format", self.format, format),
            ("shard", self.shard, shard),
        ):
            if mine != theirs:
                raise CheckpointError(
                    f"the checkpoint was written for {name} {mine!r}, not {theirs!r}; "
                    "use another --checkpoint file for another import"
                )


def load_checkpoint(path: str) -> Checkpoint | None:
    """The checkpoint in ``path``, or None if there is no such file."""
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    try:
        if data["version"] != _VERSION:
            raise CheckpointError(f"checkpoint {path} has unknown version {data['version']!r}")
        ranges = tuple((int(a), int(b)) for a, b in data["settled_after"])
        return Checkpoint(
            source=str(data["source"]),
            format=str(data["format"]),
            shard=None if data["shard"] is None else str(data["shard"]),
            line=int(data["line"]),
            settled_after=ranges,
            complete=bool(data["complete"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is not a checkpoint file: {exc!r}") from exc


def save_checkpoint(path: str, checkpoint: Checkpoint) -> None:
    """Write atomically: readers see the old file or the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".checkpoint-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(checkpoint.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class Settlement:
    """Which lines are handed on and which of them still wait for an outcome.

    Used on the event loop only. Lines must be handed on in increasing order.
    """

    def __init__(self) -> None:
        # Insertion order is line order; OrderedDict finds the first key in O(1) even
        # after many deletions at the front (a plain dict may not).
        self._pending: OrderedDict[int, None] = OrderedDict()
        self._line_of: dict[int, int] = {}
        self._upto = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def dispatch(self, op: object, line: int) -> None:
        """``op`` from ``line`` is about to be queued; it is unsettled until :meth:`settle`."""
        # Keyed by id(): Identify is unhashable, and the client holds the object until
        # its outcome, so the id cannot be reused meanwhile.
        self._line_of[id(op)] = line
        self._pending[line] = None
        self._upto = max(self._upto, line)

    def withdraw(self, op: object) -> int:
        """``op`` was not queued after all (identify() raised): forget it, return its line."""
        return self._line_of.pop(id(op))

    def line_of(self, op: object) -> int:
        return self._line_of[id(op)]

    def settle(self, op: object) -> int:
        """``op`` has its final outcome; returns its line."""
        line = self._line_of.pop(id(op))
        self._pending.pop(line, None)
        return line

    def abandon(self, op: object) -> int:
        """``op`` will get no outcome in this run: its line stays unsettled."""
        return self._line_of.pop(id(op))

    def settle_line(self, line: int) -> None:
        """A line that needs no operation (bad, or its op settled another way)."""
        self._pending.pop(line, None)
        self._upto = max(self._upto, line)

    def advance(self, line: int) -> None:
        """Every line up to ``line`` has been read and handed on."""
        self._upto = max(self._upto, line)

    def snapshot(
        self, source: str, format: str, shard: str | None, *, complete: bool = False
    ) -> Checkpoint:
        """The checkpoint as of now."""
        pending = iter(self._pending)
        first = next(pending, None)
        if first is None:
            return Checkpoint(source, format, shard, self._upto, (), complete)
        ranges: list[tuple[int, int]] = []
        start = first + 1
        for line in pending:
            if line > start:
                ranges.append((start, line - 1))
                if len(ranges) >= MAX_RANGES:
                    break
            start = line + 1
        else:
            if self._upto >= start:
                ranges.append((start, self._upto))
        return Checkpoint(source, format, shard, first - 1, tuple(ranges), False)
