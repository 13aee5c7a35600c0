"""Garbage in, 4xx out: random bytes and random JSON at every endpoint, never a 500 and
never a dropped connection. Plus the fast form decoder against urllib's."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplitude_async.emulator import EmulatorThread
from amplitude_async.emulator._decode import percent_decode

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

POST_PATHS = [
    "/identify",
    "/2/httpapi",
    "/batch",
    "/_emulator/script",
    "/_emulator/faults",
    "/_emulator/throttle",
    "/_emulator/cohorts",
    "/_emulator/recommendations",
    "/_emulator/computations",
    "/_emulator/predictions",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "text/plain",
    "",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# JSON shaped like a request, so the fuzzing reaches past the first checks.
request_like = st.fixed_dictionaries(
    {},
    optional={
        "api_key": st.sampled_from(["fuzz-key", "", "other"]) | json_values,
        "identification": json_values | json_values.map(json.dumps),
        "events": json_values,
        "options": json_values,
        "faults": json_values,
        "users": json_values,
        "cohort_id": json_values,
        "where": json_values,
    },
)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorThread]:
    with EmulatorThread(api_keys=["fuzz-key"], eps_threshold=None) as emu:
        yield emu


def _send(server: EmulatorThread, method: str, path: str, body: bytes, content_type: str) -> int:
    # A fuzzed control request may validly set faults or holds; start each one clean.
    server.set_faults(None)
    server.reset()
    connection = http.client.HTTPConnection("127.0.0.1", server.emulator.port, timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@FUZZ
@given(
    path=st.sampled_from(POST_PATHS),
    content_type=st.sampled_from(CONTENT_TYPES),
    body=st.binary(max_size=600),
)
def test_random_bytes(server: EmulatorThread, path: str, content_type: str, body: bytes) -> None:
    status = _send(server, "POST", path, body, content_type)
    if path.startswith("/_emulator/"):
        # An empty or lucky body can be a valid control request (e.g. "no faults").
        assert status < 500, (path, content_type, body)
    else:
        assert 400 <= status < 500, (path, content_type, body)


@FUZZ
@given(
    path=st.sampled_from(POST_PATHS),
    content_type=st.sampled_from(CONTENT_TYPES[:2]),
    payload=request_like | json_values,
)
def test_random_json(server: EmulatorThread, path: str, content_type: str, payload: Any) -> None:
    if content_type.startswith("application/x-www"):
        if isinstance(payload, dict):
            fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
            body = urllib.parse.urlencode(fields).encode()
        else:
            body = json.dumps(payload).encode()
    else:
        body = json.dumps(payload).encode()
    status = _send(server, "POST", path, body, content_type)
    # Random JSON may by chance be a valid request (200); it must never be a 5xx.
    assert status < 500, (path, payload)


@FUZZ
@given(
    path=st.sampled_from(["/identify", "/v1/userprofile", "/_emulator/applied"]),
    query=st.binary(max_size=300),
)
def test_random_query_strings(server: EmulatorThread, path: str, query: bytes) -> None:
    safe = urllib.parse.quote_from_bytes(query, safe="=&%+,")
    status = _send(server, "GET", f"{path}?{safe}", b"", "")
    assert status < 500, (path, query)
    if path == "/identify":
        assert status >= 400


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=40)
    | st.text(alphabet="%0123456789abcdefABCDEF+ =xyz\r\n\x00é", max_size=40).map(str.encode)
)
def test_fast_percent_decoding_matches_urllib(raw: bytes) -> None:
    assert percent_decode(raw) == urllib.parse.unquote_to_bytes(raw.replace(b"+", b" "))
