"""The spool: undelivered operations appended as JSON lines that ``import`` accepts.

Each line is the wire identification plus a ``_spool`` annotation,
``{"maybe_applied": true|false}``: true when the operation's request was in flight at
the close, or ended ambiguously (the server may already have applied it, so sending
it again may apply it twice). ``Identify.from_dict`` and ``import`` ignore the
annotation; ``import`` counts the lines that say ``maybe_applied``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ._identify import Identify
from ._rules import SPOOL_KEY

__all__ = ["write_spool"]


def write_spool(path: str, ops: Sequence[Identify], maybe_applied: Sequence[bool]) -> None:
    """Append one line per operation (blocking: run it in a worker thread)."""
    encode = msgspec.json.Encoder().encode
    annotations = ({SPOOL_KEY: {"maybe_applied": False}}, {SPOOL_KEY: {"maybe_applied": True}})
    with open(path, "ab") as handle:
        for op, maybe in zip(ops, maybe_applied, strict=True):
            handle.write(encode({**op.to_dict(), **annotations[maybe]}))
            handle.write(b"\n")
