"""Reading an import source: JSON lines or CSV, as numbered records, in chunks.

Runs in a reader thread (see :mod:`._pump`), so nothing here touches the event loop.
Every physical line is accounted for: it becomes a record (an operation, or a bad line
with its reason), or it is counted as blank, already done (the checkpoint says so) or
another shard's. A CSV record that spans several lines is numbered by its first line.
"""

from __future__ import annotations

import csv
import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from .._rules import FAILURE_KEY, SPOOL_KEY
from .._wire_lines import LineError, decode_object, identify_from_wire
from .._wire_lines import identity_of as _identity
from ._values import parse_value

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

    from .. import Identify

__all__ = [
    "FAILURE_KEY",
    "RAW_KEY",
    "BlockLines",
    "Chunk",
    "CsvColumns",
    "CsvHeaderError",
    "Record",
    "Shard",
    "csv_records",
    "jsonl_records",
    "lift_plain_properties",
    "parse_shard",
]

# FAILURE_KEY: the annotation ``--failed-out`` adds to each line, SPOOL_KEY: the
# client's spool's (with maybe_applied); both are ignored when imported.
#: In a ``--failed-out`` line for a line that could not be read: the line as it was.
RAW_KEY: Final = "raw"
CHUNK_LINES: Final = 1000


@dataclass(slots=True)
class Record:
    """One record of the source: an operation to send, or a bad line and why."""

    line: int
    op: Identify | None = None
    #: The identification as read, when it is a JSON object (for --failed-out).
    wire: dict[str, Any] | None = None
    error: str | None = None
    #: A line that is not an identification: its text as read (for --failed-out).
    raw: str | None = None
    #: A spool line that says the server may already have applied it.
    maybe_applied: bool = False


@dataclass(slots=True)
class Chunk:
    """Records of consecutive lines, and what happened to the lines that are not records."""

    records: list[Record] = field(default_factory=list)
    #: The last physical line read; every line up to it is a record or counted below.
    upto: int = 0
    blank: int = 0
    already_done: int = 0
    other_shard: int = 0
    #: Bytes of the source read so far (for the progress bar).
    position: int = 0


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): the identities whose hash lands on it."""

    index: int
    count: int

    def owns(self, identity: str | None) -> bool:
        # Records without an identity are bad lines: one shard (the first) reports them,
        # so that the shards' counts add up to the file's.
        if identity is None:
            return self.index == 1
        digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` with 1 <= I <= N; ValueError with a clear message otherwise."""
    index, sep, count = text.partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        raise ValueError(f"expected I/N such as 1/4, got {text!r}") from None
    if not sep or shard.count < 1 or not 1 <= shard.index <= shard.count:
        raise ValueError(f"expected I/N with 1 <= I <= N, got {text!r}")
    return shard


Skip = Callable[[int], bool]


def _to_record(line: int, wire: dict[str, Any], min_id_length: int) -> Record:
    from .. import ValidationError

    try:
        op = identify_from_wire(wire, min_id_length)
    except ValidationError as exc:
        return Record(line, wire=wire, error=str(exc))
    return Record(line, op=op, wire=wire)


class BlockLines:
    """The lines of a binary stream, read a block at a time.

    :meth:`buffered` tells whether the next line is already in memory. The readers yield
    their chunk before a line that is not: on a pipe the next read may wait for the
    writer, and what was read so far must not wait with it.
    """

    def __init__(self, stream: BinaryIO, block: int = 1 << 16) -> None:
        self._stream = stream
        self._block = block
        self._lines: deque[bytes] = deque()
        #: Bytes of the lines handed out so far.
        self.position = 0

    def buffered(self) -> bool:
        return bool(self._lines)

    def __iter__(self) -> Iterator[bytes]:
        lines = self._lines
        tail = b""
        read = getattr(self._stream, "read1", self._stream.read)
        while True:
            if not lines:
                data = read(self._block)
                if not data:
                    if tail:
                        self.position += len(tail)
                        yield tail  # the last line, without a newline
                    return
                parts = (tail + data).split(b"\n")
                tail = parts.pop()
                lines.extend(part + b"\n" for part in parts)
                continue
            line = lines.popleft()
            self.position += len(line)
            yield line


def jsonl_records(
    stream: BinaryIO, *, skip: Skip, shard: Shard | None, min_id_length: int
) -> Iterator[Chunk]:
    """One wire identification (a JSON object) per line."""
    import msgspec

    decode = msgspec.json.Decoder().decode
    lines = BlockLines(stream)
    chunk = Chunk()
    number = flushed = 0
    for raw in lines:
        number += 1
        if skip(number):
            chunk.already_done += 1
        elif not raw.strip():
            chunk.blank += 1
        else:
            record = _json_record(number, raw, decode, shard, min_id_length)
            if record is None:
                chunk.other_shard += 1
            else:
                chunk.records.append(record)
        if number - flushed >= CHUNK_LINES or not lines.buffered():
            chunk.upto, chunk.position = number, lines.position
            yield chunk
            chunk, flushed = Chunk(), number
    chunk.upto, chunk.position = number, lines.position
    yield chunk


def _json_record(
    number: int,
    raw: bytes,
    decode: Callable[[bytes], Any],
    shard: Shard | None,
    min_id_length: int,
) -> Record | None:
    """The record of one non-blank line; None if it belongs to another shard."""
    try:
        obj = decode_object(raw, decode)
    except LineError as exc:
        return Record(number, error=str(exc), raw=_text(raw))
    failure = obj.pop(FAILURE_KEY, None)
    spool = obj.pop(SPOOL_KEY, None)
    if not obj and isinstance(failure, dict) and isinstance(failure.get(RAW_KEY), str):
        # A --failed-out line for an unreadable line, fed back without being fixed:
        # still unreadable, and its text is kept for the next --failed-out.
        return Record(
            number,
            error=f"not fixed yet (line {failure.get('line')} of the first import): "
            f"{failure.get('message')}",
            raw=failure[RAW_KEY],
        )
    if shard is not None and not shard.owns(_identity(obj)):
        return None
    try:
        lifted = lift_plain_properties(obj)
    except ValueError as exc:
        return Record(number, wire=obj, error=str(exc))
    record = _to_record(number, lifted, min_id_length)
    record.wire = obj  # --failed-out keeps the line as written, to be fixed in place
    if isinstance(spool, dict) and spool.get("maybe_applied") is True:
        record.maybe_applied = True
    return record


def lift_plain_properties(obj: dict[str, Any]) -> dict[str, Any]:
    """The identification with top-level keys that are not identification fields taken
    as ``$set`` properties, as CSV columns are: ``{"user_id": "u", "plan": "pro"}`` is
    ``{"user_id": "u", "user_properties": {"$set": {"plan": "pro"}}}``.

    Raises ValueError for an operation (``$set``, ...) at the top level, and for a
    property given both at the top level and in ``user_properties``.
    """
    from .._rules import IDENTIFICATION_KEYS

    plain = {key: value for key, value in obj.items() if key not in IDENTIFICATION_KEYS}
    if not plain:
        return obj
    operations = sorted(key for key in plain if key.startswith("$"))
    if operations:
        raise ValueError(
            f"{', '.join(operations)} at the top level: operations go inside "
            f'user_properties, e.g. {{"user_id": "user-1", "user_properties": '
            f'{{"{operations[0]}": {{"plan": "pro"}}}}}}'
        )
    wire = {key: value for key, value in obj.items() if key in IDENTIFICATION_KEYS}
    props = wire.get("user_properties")
    if props is None:
        wire["user_properties"] = {"$set": plain}
        return wire
    if not isinstance(props, dict):
        return wire  # Identify.from_dict says what is wrong with it
    has_operations = any(isinstance(key, str) and key.startswith("$") for key in props)
    into = props.get("$set", {}) if has_operations else props
    if not isinstance(into, dict):
        return wire
    twice = sorted(set(plain) & set(into))
    if twice:
        raise ValueError(
            f"property {twice[0]!r} is given both at the top level and in user_properties"
        )
    merged = {**into, **plain}
    wire["user_properties"] = {**props, "$set": merged} if has_operations else merged
    return wire


def _text(raw: bytes) -> str:
    """A line's text for --failed-out: without its line break; bytes that are not
    UTF-8 become U+FFFD, so that the file stays valid JSON."""
    return raw.decode("utf-8", "replace").rstrip("\r\n")


class CsvHeaderError(ValueError):
    """The CSV header does not have the columns asked for."""


@dataclass(frozen=True, slots=True)
class CsvColumns:
    """How CSV columns map onto an identification."""

    user_id: str = "user_id"
    #: None: use a "device_id" column if there is one.
    device_id: str | None = None
    #: Keep every value a string instead of parsing JSON (numbers, true/false, lists).
    strings: bool = False


def csv_records(
    stream: BinaryIO,
    columns: CsvColumns,
    *,
    skip: Skip,
    shard: Shard | None,
    min_id_length: int,
) -> Iterator[Chunk]:
    """A header row, then one user per row: ids, device/location fields, the rest $set.

    Raises :class:`CsvHeaderError` before yielding anything if the id columns are missing.
    """
    from .._rules import FIELDS

    lines = BlockLines(stream)
    # The text of the lines the reader took for its current row, for --failed-out.
    row_text: list[str] = []
    reader = csv.reader(_decoded(lines, row_text))
    header = next(reader, None)
    if header is None:
        raise CsvHeaderError("the CSV file is empty: a header row is needed")
    user_col = columns.user_id if columns.user_id in header else None
    device_name = columns.device_id or "device_id"
    device_col = device_name if device_name in header else None
    if columns.device_id is not None and device_col is None:
        raise CsvHeaderError(f"no column {columns.device_id!r} in the header: {header}")
    if user_col is None and device_col is None:
        raise CsvHeaderError(
            f"no column {columns.user_id!r} in the header (choose one with "
            f"--user-id-column): {header}"
        )
    fields = frozenset(FIELDS)
    value = str if columns.strings else parse_value
    return _csv_chunks(
        reader,
        lines,
        row_text,
        header,
        user_col,
        device_col,
        fields,
        value,
        skip,
        shard,
        min_id_length,
    )


def _decoded(lines: BlockLines, taken: list[str]) -> Iterator[str]:
    """UTF-8 text lines for the csv module (which wants them with their line endings).

    Each line is also appended to ``taken``: the reader asks for lines only until its
    row is complete, so between two rows ``taken`` holds exactly one row's text.
    """
    first = True
    for number, raw in enumerate(lines, 1):
        try:
            # utf-8-sig on the first line: spreadsheet exports often start with a BOM.
            text = raw.decode("utf-8-sig" if first else "utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"line {number} is not UTF-8 text ({exc.reason})") from None
        first = False
        taken.append(text)
        yield text


def _csv_chunks(
    reader: CsvReader,
    lines: BlockLines,
    row_text: list[str],
    header: list[str],
    user_col: str | None,
    device_col: str | None,
    fields: frozenset[str],
    value: Callable[[str], Any],
    skip: Skip,
    shard: Shard | None,
    min_id_length: int,
) -> Iterator[Chunk]:
    width = len(header)
    chunk = Chunk()
    # Line numbers come from the reader, so quoted newlines inside a cell count.
    previous_end = flushed = reader.line_num  # the header's last line
    row_text.clear()
    for row in reader:
        start, previous_end = previous_end + 1, reader.line_num
        text = "".join(row_text)
        row_text.clear()
        if skip(start):
            chunk.already_done += 1
        elif not row or not any(cell.strip() for cell in row):
            chunk.blank += 1
        elif len(row) != width:
            chunk.records.append(
                Record(
                    start,
                    error=f"expected {width} columns as in the header, got {len(row)}",
                    raw=text.rstrip("\r\n"),
                )
            )
        else:
            wire: dict[str, Any] = {}
            props: dict[str, Any] = {}
            for name, cell in zip(header, row, strict=True):
                if cell == "":
                    continue  # an empty cell sets nothing
                if name == user_col:
                    wire["user_id"] = cell
                elif name == device_col:
                    wire["device_id"] = cell
                elif name in fields:
                    wire[name] = cell
                else:
                    props[name] = value(cell)
            if props:
                wire["user_properties"] = {"$set": props}
            if shard is not None and not shard.owns(_identity(wire)):
                chunk.other_shard += 1
            else:
                chunk.records.append(_to_record(start, wire, min_id_length))
        if previous_end - flushed >= CHUNK_LINES or not lines.buffered():
            chunk.upto, chunk.position = previous_end, lines.position
            yield chunk
            chunk, flushed = Chunk(), previous_end
    chunk.upto, chunk.position = previous_end, lines.position
    yield chunk
