"""Small pure pieces: config checks, backoff, form escaping, verdicts, public namespace."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import amplitude_async as aa
from amplitude_async._backoff import backoff_delay
from amplitude_async._encode import _PASSES, BatchEncoder, form_escape
from amplitude_async._http import HttpResponse
from amplitude_async._response import VerdictKind, classify


def test_public_namespace_is_sorted_and_complete() -> None:
    assert aa.__all__ == sorted(aa.__all__)
    for name in aa.__all__:
        assert hasattr(aa, name), name
    public = {n for n in dir(aa) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(aa.__all__)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_max_items": 0}, "batch_max_items"),
        ({"batch_max_items": 5000}, "batch_max_items"),
        ({"batch_max_bytes": 10}, "batch_max_bytes"),
        ({"flush_interval": -1}, "flush_interval"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"on_full": "block"}, "on_full"),
        ({"encoding": "json"}, "encoding"),
        ({"retry_base": 5, "retry_cap": 1}, "retry_cap"),
        ({"max_in_flight": True}, "max_in_flight"),
        ({"throttle_hold": float("nan")}, "throttle_hold"),
        ({"on_outcome": 3}, "on_outcome"),
        ({"min_id_length": 0}, "min_id_length"),
        # Not a bool: the pure build took None as False, the compiled one raised TypeError.
        ({"coalesce": None}, "coalesce"),
        ({"coalesce": 1}, "coalesce"),
    ],
)
def test_config_refuses_what_cannot_work(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(aa.ConfigurationError, match=message):
        aa.ClientConfig(**changes)


def test_config_replace_checks_names_and_values() -> None:
    cfg = aa.ClientConfig().replace(batch_max_items=10)
    assert cfg.batch_max_items == 10
    with pytest.raises(aa.ConfigurationError, match="unknown"):
        cfg.replace(batch_size=3)


def test_client_refuses_bad_arguments_and_hides_the_key() -> None:
    with pytest.raises(aa.ConfigurationError):
        aa.AmplitudeClient("")
    with pytest.raises(aa.ConfigurationError, match="server_zone"):
        aa.AmplitudeClient("k", server_zone="APAC")  # type: ignore[arg-type]
    with pytest.raises(aa.ConfigurationError, match="server_url"):
        aa.AmplitudeClient("k", server_url="ftp://x")
    client = aa.AmplitudeClient("SECRET-KEY-123", server_zone="EU")
    assert "api.eu.amplitude.com" in repr(client)
    assert "SECRET-KEY-123" not in repr(client)
    assert "https://api2.amplitude.com/identify" in repr(aa.AmplitudeClient("k"))


def test_backoff_is_full_jitter_capped_and_overflow_safe() -> None:
    assert backoff_delay(1, base=0.5, cap=30, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, base=0.5, cap=30, rand=lambda: 1.0) == 2.0
    assert backoff_delay(10_000, base=0.5, cap=30, rand=lambda: 1.0) == 30
    assert backoff_delay(4, base=0.5, cap=30, rand=lambda: 0.0) == 0.0
    # Retry-After is a floor.
    assert backoff_delay(1, base=0.5, cap=30, retry_after=7, rand=lambda: 0.5) == 7


def _form_decoded(escaped: bytes) -> bytes:
    """What a form decoder makes of ``identification=<escaped>``: the one value, bytes."""
    pairs = urllib.parse.parse_qsl(
        "identification=" + escaped.decode("ascii"),
        keep_blank_values=True,
        strict_parsing=True,
        encoding="latin-1",
    )
    assert len(pairs) == 1 and pairs[0][0] == "identification"
    return pairs[0][1].encode("latin-1")


_FORM_SAMPLES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)).map(str.encode),
    st.text(alphabet="%&+=; {}\"',:[]$#?/").map(str.encode),
)


@given(data=_FORM_SAMPLES)
def test_form_escape_round_trips_through_a_form_decoder(data: bytes) -> None:
    escaped = form_escape(data)
    assert _form_decoded(escaped) == data
    # Printable ASCII only, none of the bytes a decoder gives a meaning to unescaped.
    assert all(0x21 <= b <= 0x7E for b in escaped)
    assert not set(escaped.replace(b"%25", b"").replace(b"%2B", b"")) & set(b"&;=")
    # Exactly the size BatchEncoder.item_size() predicts.
    assert len(escaped) == BatchEncoder("k", "form").item_size(data)


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 2,  # every byte: the translate path
        '{"city":"Zürich","n":"%41 + b&c=d;e"}'.encode(),  # few distinct bytes to escape
        "東京 😀 Ünïcödé".encode() * 3,
        b"",
    ],
)
def test_form_escape_both_paths_round_trip(data: bytes) -> None:
    assert _form_decoded(form_escape(data)) == data
    assert form_escape(data) == urllib.parse.quote_plus(data, safe=_PASSES).encode()


def test_json_punctuation_passes_unescaped_as_in_the_identify_api_example() -> None:
    # The Identify API docs send `identification=[{"user_id":...}]` with curl --data,
    # unescaped; a usual body needs no work at all.
    item = b'[{"user_id":"user-1","user_properties":{"$set":{"plan":"pro"}}}]'
    assert form_escape(item) is item


def test_form_body_is_exactly_what_the_identify_api_documents() -> None:
    enc = BatchEncoder("my key&=", "form")
    items = [enc.encode_item({"user_id": "user-1", "user_properties": {"$set": {"a": "b c"}}})]
    body = enc.body(items)
    assert urllib.parse.parse_qs(body.decode()) == {
        "api_key": ["my key&="],
        "identification": ['[{"user_id":"user-1","user_properties":{"$set":{"a":"b c"}}}]'],
    }
    assert len(body) == enc.overhead(1) + enc.item_size(items[0])
    two = enc.body(items * 2)
    assert len(two) == enc.overhead(2) + 2 * enc.item_size(items[0])
    assert "my key" not in repr(enc)


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, headers or {}, body)


def test_verdicts_for_each_documented_answer() -> None:
    assert classify(_answer(200, b"success")).kind is VerdictKind.DELIVERED
    throttled = classify(
        _answer(
            429,
            b'{"code":429,"error":"Too many requests for some devices and users",'
            b'"eps_threshold":30,"throttled_devices":{"d-1":31},"throttled_users":{"u-1":32},'
            b'"throttled_events":[3,4,7],"exceeded_daily_quota_users":{"u-9":1}}',
            {"Retry-After": "3"},
        )
    )
    assert throttled.kind is VerdictKind.THROTTLED
    assert throttled.users == {"u-1"} and throttled.devices == {"d-1"}
    assert throttled.quota_users == {"u-9"} and throttled.retry_after == 3.0
    assert classify(_answer(413, b'{"code":413,"error":"Payload too large"}')).kind is (
        VerdictKind.TOO_LARGE
    )
    invalid = classify(
        _answer(400, b'{"code":400,"error":"bad","events_with_invalid_fields":{"user_id":[1,4]}}')
    )
    assert invalid.kind is VerdictKind.INVALID and invalid.indices == {1, 4}
    assert classify(_answer(400, b"missing_event")).indices is None
    assert classify(_answer(400, b'{"code":400,"error":"invalid_api_key"}')).kind is (
        VerdictKind.AUTH
    )
    assert classify(_answer(503, b"")).ambiguous is False
    assert classify(_answer(500, b"")).ambiguous is True
    assert classify(_answer(504, b"<html>")).kind is VerdictKind.RETRY


@given(st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=20)), min_size=1, max_size=5))
def test_encoder_sizes_bodies_exactly(items: list[dict[str, str]]) -> None:
    for encoding in ("form", "multipart"):
        enc = BatchEncoder("key", encoding)
        encoded = [enc.encode_item(item) for item in items]
        body = enc.body(encoded)
        assert len(body) == enc.overhead(len(items)) + sum(enc.item_size(e) for e in encoded)
