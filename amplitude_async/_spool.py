"""The spool: undelivered operations appended as JSON lines that ``import`` accepts."""

from __future__ import annotations

import msgspec

from ._identify import Identify

__all__ = ["write_spool"]


def write_spool(path: str, ops: list[Identify]) -> None:
    """Append one wire identification per line (blocking: run it in a worker thread)."""
    encode = msgspec.json.Encoder().encode
    with open(path, "ab") as handle:
        for op in ops:
            handle.write(encode(op.to_dict()))
            handle.write(b"\n")
