"""The import's building blocks: settlement, checkpoint files, shards, record reading."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path

import pytest

from amplitude_async._cli._checkpoint import (
    Checkpoint,
    CheckpointError,
    Settlement,
    load_checkpoint,
    save_checkpoint,
)
from amplitude_async._cli._records import (
    Chunk,
    CsvColumns,
    CsvHeaderError,
    csv_records,
    jsonl_records,
    parse_shard,
)


def never(line: int) -> bool:
    return False


class Op:
    """Stands in for an Identify: Settlement only needs object identity."""


def test_the_checkpoint_waits_for_the_lowest_unsettled_line() -> None:
    settlement = Settlement()
    ops = {line: Op() for line in (1, 2, 4, 5)}
    for line, op in ops.items():
        settlement.dispatch(op, line)
    settlement.settle_line(3)  # a bad line: settled without an operation
    settlement.advance(6)  # line 6 was blank
    assert settlement.snapshot("f", "jsonl", None).line == 0

    settlement.settle(ops[1])
    settlement.settle(ops[4])
    snap = settlement.snapshot("f", "jsonl", None)
    assert (snap.line, snap.settled_after) == (1, ((3, 4), (6, 6)))
    assert [snap.done(n) for n in range(1, 8)] == [True, False, True, True, False, True, False]

    settlement.abandon(ops[2])  # "shutdown": no outcome in this run, stays unsettled
    settlement.settle(ops[5])
    snap = settlement.snapshot("f", "jsonl", None, complete=True)
    assert (snap.line, snap.settled_after, snap.complete) == (1, ((3, 6),), False)


def test_a_fully_settled_run_is_complete() -> None:
    settlement = Settlement()
    op = Op()
    settlement.dispatch(op, 1)
    settlement.settle(op)
    settlement.advance(3)
    snap = settlement.snapshot("f", "jsonl", "1/2", complete=True)
    assert (snap.line, snap.settled_after, snap.complete) == (3, (), True)


def test_checkpoint_files_round_trip_and_replace_atomically(tmp_path: Path) -> None:
    path = str(tmp_path / "import.ckpt")
    assert load_checkpoint(path) is None
    first = Checkpoint("/data/users.jsonl", "jsonl", "2/4", 10, ((12, 20), (30, 31)))
    save_checkpoint(path, first)
    assert load_checkpoint(path) == first
    second = Checkpoint("/data/users.jsonl", "jsonl", "2/4", 31, (), True)
    save_checkpoint(path, second)
    assert load_checkpoint(path) == second
    assert os.listdir(tmp_path) == ["import.ckpt"]  # no temporary file left behind


def test_a_checkpoint_belongs_to_one_import(tmp_path: Path) -> None:
    checkpoint = Checkpoint("/data/a.jsonl", "jsonl", None, 5)
    checkpoint.check_matches("/data/a.jsonl", "jsonl", None)
    with pytest.raises(CheckpointError, match="shard"):
        checkpoint.check_matches("/data/a.jsonl", "jsonl", "1/2")
    broken = tmp_path / "broken.ckpt"
    broken.write_text(json.dumps({"version": 1, "line": 3}))
    with pytest.raises(CheckpointError, match="not a checkpoint file"):
        load_checkpoint(str(broken))


def test_shards_partition_identities_by_a_stable_hash() -> None:
    shards = [parse_shard(f"{i}/4") for i in range(1, 5)]
    for n in range(500):
        identity = f"user-{n}"
        owners = [s.index for s in shards if s.owns(identity)]
        digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
        # Documented, so other tools can split the same way.
        assert owners == [int.from_bytes(digest, "big") % 4 + 1]
    # Lines without any identity are reported by the first shard only.
    assert [s.owns(None) for s in shards] == [True, False, False, False]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "3", "1/2/3"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        parse_shard(text)


def records(chunks: list[Chunk]) -> list[tuple[int, str | None]]:
    return [(r.line, r.error) for c in chunks for r in c.records]


def test_jsonl_lines_are_numbered_and_accounted_for() -> None:
    data = (
        b'{"user_id": "user-000001", "user_properties": {"$set": {"a": 1}}}\n'
        b"\n"
        b'{"user_id": "user-000002", "_failure": {"reason": "invalid"}}\n'
        b"[1]\n"
        b'{"user_id": "user-000003"}'  # no trailing newline
    )
    chunks = list(
        jsonl_records(io.BytesIO(data), skip=lambda n: n == 3, shard=None, min_id_length=5)
    )
    assert records(chunks) == [(1, None), (4, "expected a JSON object, got an array"), (5, None)]
    assert sum(c.blank for c in chunks) == 1 and sum(c.already_done for c in chunks) == 1
    assert chunks[-1].upto == 5 and chunks[-1].position == len(data)


def test_a_chunk_is_handed_on_before_the_reader_would_wait() -> None:
    # On a pipe, lines already read must not wait for lines the writer has not written.
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as writer:
        writer.write(b'{"user_id": "user-000001"}\n{"user_id": "user-000002"}\n')
        writer.flush()
        chunks = jsonl_records(reader, skip=never, shard=None, min_id_length=5)
        got: list[Chunk] = []
        thread = threading.Thread(target=lambda: got.append(next(chunks)), daemon=True)
        thread.start()
        thread.join(timeout=10)
        assert got, "the first chunk waited for more input"
        assert [r.line for r in got[0].records] == [1, 2]


def test_csv_header_problems_are_raised_before_reading_rows() -> None:
    with pytest.raises(CsvHeaderError, match="no column 'user_id'"):
        csv_records(io.BytesIO(b"id,plan\n"), CsvColumns(), skip=never, shard=None, min_id_length=5)
    with pytest.raises(CsvHeaderError, match="empty"):
        csv_records(io.BytesIO(b""), CsvColumns(), skip=never, shard=None, min_id_length=5)


def test_csv_values_ids_and_fields() -> None:
    data = b'user_id,device_id,platform,plan,seats,tags\nuser-000001,,iOS,pro,3,"[1,2]"\n'
    chunks = csv_records(io.BytesIO(data), CsvColumns(), skip=never, shard=None, min_id_length=5)
    [record] = [r for chunk in chunks for r in chunk.records]
    assert record.wire == {
        "user_id": "user-000001",
        "platform": "iOS",
        "user_properties": {"$set": {"plan": "pro", "seats": 3, "tags": [1, 2]}},
    }
