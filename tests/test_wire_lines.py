"""The shared JSON-line parser: what import and the Kafka worker both accept or refuse."""

from __future__ import annotations

import msgspec
import pytest

from amplitude_async import Identify, ValidationError
from amplitude_async._wire_lines import LineError, decode_line, identify_from_wire, identity_of

decode = msgspec.json.Decoder().decode


def test_a_line_round_trips_to_the_same_operation() -> None:
    op = Identify(user_id="user-0001", device_id="device-01").append("log", 3).set("plan", "pro")
    raw = msgspec.json.encode(op.to_dict())
    assert identify_from_wire(decode_line(raw, decode), 5) == op


def test_the_failure_annotation_is_ignored() -> None:
    wire = decode_line(b'{"user_id": "user-0001", "_failure": {"reason": "invalid"}}', decode)
    assert wire == {"user_id": "user-0001"}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"text"', "expected a JSON object, got a string"),
        (b"null", "expected a JSON object, got null"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_what_is_not_an_object_says_why(raw: bytes, words: str) -> None:
    with pytest.raises(LineError, match=words):
        decode_line(raw, decode)


def test_short_ids_are_refused_as_the_client_would() -> None:
    with pytest.raises(ValidationError, match="user_id"):
        identify_from_wire({"user_id": "abc"}, 5)
    assert identify_from_wire({"user_id": "abc"}, 3).user_id == "abc"


def test_identity_is_user_id_else_device_id() -> None:
    assert identity_of({"user_id": "user-0001", "device_id": "device-01"}) == "user-0001"
    assert identity_of({"device_id": "device-01"}) == "device-01"
    assert identity_of({"user_id": 7}) is None
