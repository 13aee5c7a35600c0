"""Bad input everywhere: oversized identifications fail alone, merges never make good
operations fail, and hypothesis-generated values for every public call either raise the
package's errors with a message or are accepted, and never crash the pipeline."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import event, given, settings
from hypothesis import strategies as st

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify
from amplitude_async.emulator import Emulator

from ..conftest import Request, ScriptedServer, fast_config
from .harness import KEY, SECRET


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emulator:
        yield emulator


def notes(emu: Emulator, user: str) -> list[Any]:
    """The "notes" values appended for ``user``, in applied order."""
    out: list[Any] = []
    for entry in emu.applied:
        if entry.user_id != user:
            continue
        value = (entry.identification.get("user_properties") or {}).get("$append", {})
        value = value.get("notes")
        if value is not None:
            out.extend(value if isinstance(value, list) else [value])
    return out


async def outcomes_of(receipts: list[aa.Receipt]) -> list[aa.Outcome]:
    async def one(receipt: aa.Receipt) -> aa.Outcome:
        return await receipt

    return await asyncio.wait_for(asyncio.gather(*(one(r) for r in receipts)), 20)


# -- too large ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["client", "server"])
async def test_an_oversized_identification_fails_alone_with_too_large(
    emu: Emulator, limit: str
) -> None:
    """Too large for the client's batch_max_bytes, or refused by the server with 413:
    only that operation fails; the same user's operations around it are delivered in
    order."""
    if limit == "server":
        emu.max_body_bytes = 3000
        cfg = fast_config()
    else:
        cfg = fast_config(batch_max_bytes=2048)
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id="user-00001").append("notes", "before")),
            # "&" is escaped to "%26" in the form body: the size is known only once
            # encoded (a plain "x" * 5000 is refused at identify(), see test_intake_messages).
            await amp.identify(Identify(user_id="user-00001").set("big", "&" * 1500)),
            await amp.identify(Identify(user_id="user-00001").append("notes", "after")),
            await amp.identify(Identify(user_id="user-00002").set("small", 1)),
        ]
        outcomes = await outcomes_of(receipts)
    big = outcomes[1]
    assert isinstance(big, Failed) and big.reason is FailureReason.TOO_LARGE and big.message
    assert all(isinstance(o, Delivered) for i, o in enumerate(outcomes) if i != 1)
    assert notes(emu, "user-00001") == ["before", "after"]
    assert emu.user("user-00001") == {"notes": ["before", "after"]}


@pytest.mark.parametrize("limit", ["client", "server"])
async def test_a_merge_too_large_for_one_body_is_sent_unmerged_not_failed(
    emu: Emulator, limit: str
) -> None:
    """60 small operations of one hot user, merged, are larger than a body may be: each
    operation fits alone, so every one must be delivered, in order (they all failed
    with too_large before)."""
    if limit == "server":
        emu.max_body_bytes = 3000
        cfg = fast_config()
    else:
        cfg = fast_config(batch_max_bytes=4096)
    values = [f"{i:04d}-" + "n" * 120 for i in range(60)]
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id="user-hot01").append("notes", v)) for v in values
        ]
        outcomes = await outcomes_of(receipts)
        stats = amp.stats()
    failed = [o for o in outcomes if not isinstance(o, Delivered)]
    assert not failed, failed[:3]
    assert notes(emu, "user-hot01") == values
    assert stats.delivered == 60


async def test_a_merged_identification_refused_with_400_fails_only_the_bad_operation(
    server: ScriptedServer,
) -> None:
    """The server refuses any identification carrying "poison" (naming its index, as
    HTTP V2 does). Three operations of one user are merged into one identification;
    only the poisoned one may fail, the other two are delivered in order."""

    def answer(request: Request) -> web.Response:
        bad = [
            i for i, ident in enumerate(request.identifications) if "poison" in json.dumps(ident)
        ]
        if not bad:
            return web.Response(text="success")
        body = {
            "code": 400,
            "error": "Invalid field values",
            "events_with_invalid_fields": {"user_properties": bad},
        }
        return web.json_response(body, status=400)

    server.responder = answer
    cfg = fast_config(flush_interval=0.2)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id="user-00001").set("a", 1)),
            await amp.identify(Identify(user_id="user-00001").set("b", "poison")),
            await amp.identify(Identify(user_id="user-00001").set("c", 3)),
        ]
        outcomes = await outcomes_of(receipts)
    assert isinstance(outcomes[1], Failed) and outcomes[1].reason is FailureReason.INVALID
    assert outcomes[1].message == "Invalid field values"
    assert isinstance(outcomes[0], Delivered) and isinstance(outcomes[2], Delivered)
    delivered = [
        (name, value)
        for ident in server.delivered
        for name, value in ident["user_properties"]["$set"].items()
    ]
    assert delivered == [("a", 1), ("c", 3)]


async def test_text_json_cannot_carry_is_refused_at_the_call(emu: Emulator) -> None:
    """A lone surrogate cannot travel as UTF-8 JSON: refused before anything is queued."""
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
        with pytest.raises(aa.ValidationError, match="lone surrogate"):
            await amp.identify(Identify(user_id="user-00001").set("bad", "\ud800"))
        with pytest.raises(aa.ValidationError, match="lone surrogate"):
            await amp.identify(Identify(user_id="user-\udfff").set("ok", 1))
        assert amp.stats().enqueued == 0


async def test_a_value_json_cannot_encode_fails_that_operation_only(emu: Emulator) -> None:
    """Values are referenced, not copied: one changed after it was checked (here a list
    that gains a lone surrogate) passes the builders but not the encoder. The sender
    used to die on it (every receipt left unresolved, the owner's task group torn
    down). Now only that operation fails, with reason invalid, even inside a merge."""
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
        changed_later: list[str] = ["fine"]
        sneaky = Identify(user_id="user-00001").set("bad", changed_later)
        changed_later.append("\ud800")
        receipts = [
            await amp.identify(Identify(user_id="user-00001").append("notes", "before")),
            await amp.identify(sneaky),
            await amp.identify(Identify(user_id="user-00001").append("notes", "after")),
            await amp.identify(Identify(user_id="user-00002").set("ok", 1)),
        ]
        outcomes = await outcomes_of(receipts)
        later = await outcomes_of([await amp.identify(Identify(user_id="user-00003").set("a", 1))])
    failed = outcomes[1]
    assert isinstance(failed, Failed) and failed.reason is FailureReason.INVALID
    assert "cannot be encoded" in failed.message
    assert all(isinstance(outcomes[i], Delivered) for i in (0, 2, 3)) and later[0].ok
    assert notes(emu, "user-00001") == ["before", "after"]


# -- hypothesis: every public call ----------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None)

# Any text, lone surrogates included (hypothesis leaves them out by default): Python
# strings that UTF-8 JSON cannot carry.
any_text = st.text(
    st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028", "%", "&", "+", "é", "😀"])
    | st.characters(exclude_categories=[]),
    max_size=8,
)
# Everything a caller might pass where a value is expected: JSON, almost-JSON and junk.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats()  # nan and infinities included
    | any_text
    | st.binary(max_size=8)
)
junk = st.sampled_from([object(), {1, 2}, frozenset(), 1j, b"bytes", bytearray(b"x"), print])
values = st.recursive(
    scalars | junk,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers() | st.none(), inner, max_size=4)
    ),
    max_leaves=12,
)
ids = st.none() | st.text(max_size=12) | any_text | st.integers() | st.binary(max_size=6) | junk
names = st.text(max_size=10) | any_text | st.none() | st.integers() | st.just("")
METHODS = [
    "set",
    "set_once",
    "add",
    "append",
    "prepend",
    "pre_insert",
    "post_insert",
    "remove",
    "unset",
    "clear_all",
]
FIELDS = ["platform", "os_name", "country", "city", "paying", "language", "app_version"]


def _expect_package_error(exc: BaseException) -> None:
    assert isinstance(exc, aa.ValidationError), f"{type(exc).__name__}: {exc}"
    assert str(exc).strip(), "an error without a message"


def _build(
    user_id: Any, device_id: Any, fields: dict[str, Any], groups: Any, calls: list[Any]
) -> Identify | None:
    """Build an Identify from drawn input; None when the package refused it properly."""
    try:
        identify = Identify(user_id=user_id, device_id=device_id, groups=groups, **fields)
        for method, name, value in calls:
            if method == "unset":
                identify.unset(name)
            elif method == "clear_all":
                identify.clear_all()
            else:
                getattr(identify, method)(name, value)
    except aa.AmplitudeError as exc:
        _expect_package_error(exc)
        return None
    return identify


calls = st.lists(st.tuples(st.sampled_from(METHODS), names, values), max_size=5)
identify_input = st.tuples(
    ids,
    ids,
    st.dictionaries(st.sampled_from(FIELDS), ids | st.booleans(), max_size=3),
    st.none() | st.dictionaries(names, ids | st.lists(ids, max_size=2), max_size=2),
    calls,
)


@FUZZ
@given(identify_input)
def test_identify_accepts_or_raises_validation_error_with_a_message(drawn: Any) -> None:
    identify = _build(*drawn)
    if identify is not None:
        # An accepted operation is usable: its wire form and repr never raise.
        assert isinstance(identify.to_dict(), dict)
        assert repr(identify).startswith("Identify(")


wire_objects = st.dictionaries(
    st.sampled_from(["user_id", "device_id", "user_properties", "groups", "platform", "junk"]),
    values
    | st.dictionaries(
        st.sampled_from(["$set", "$add", "$append", "$unset", "$clearAll", "$bogus", "plain"]),
        values | st.dictionaries(st.text(max_size=5), values, max_size=3),
        max_size=3,
    ),
    max_size=5,
)


@FUZZ
@given(wire_objects | values)
def test_from_dict_accepts_or_raises_validation_error_with_a_message(obj: Any) -> None:
    try:
        identify = Identify.from_dict(obj)
    except aa.AmplitudeError as exc:
        _expect_package_error(exc)
        return
    assert Identify.from_dict(identify.to_dict()) == identify


CONFIG_FIELDS = {
    "batch_max_items": st.integers(-5, 5000),
    "batch_max_bytes": st.integers(-5, 60_000_000),
    "flush_interval": st.floats() | st.integers(-2, 5),
    "max_in_flight": st.integers(-1, 2000),
    "queue_max": st.integers(-1, 10**9),
    "on_full": st.sampled_from(["wait", "drop", "raise", "block", ""]),
    "request_timeout": st.floats() | st.integers(-2, 5),
    "retry_base": st.floats(),
    "retry_cap": st.floats(),
    "retry_deadline": st.floats(),
    "throttle_hold": st.floats(),
    "throttle_map_max": st.integers(-1, 10**9),
    "min_id_length": st.integers(-1, 2000) | st.booleans(),
    "encoding": st.sampled_from(["form", "multipart", "json"]),
    "coalesce": st.booleans(),
    "shutdown_timeout": st.floats(),
    "on_outcome": st.none() | st.just(print) | st.integers(),
    "on_undelivered": st.none() | st.just(print) | st.text(max_size=3),
    "spool_path": st.none() | st.text(max_size=8) | st.integers(),
}


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: strategy | st.none() | st.text(max_size=3) | st.booleans()
            for name, strategy in CONFIG_FIELDS.items()
        },
    ),
    st.text(max_size=12)
    | any_text
    | st.sampled_from(["key\n", " key", "k\x00y", "\ud800key"])
    | st.none()
    | st.integers(),
    st.sampled_from(["US", "EU", "eu", "", None]),
    st.none()
    | st.sampled_from(["http://127.0.0.1:1/identify", "ftp://x", "https://", "not a url"])
    | st.text(max_size=12),
)
def test_config_and_client_accept_or_raise_configuration_error(
    changes: dict[str, Any], api_key: Any, zone: Any, url: Any
) -> None:
    try:
        config = aa.ClientConfig(**changes)
    except aa.AmplitudeError as exc:
        assert isinstance(exc, aa.ConfigurationError), f"{type(exc).__name__}: {exc}"
        assert str(exc).strip()
        config = None
    try:
        client = AmplitudeClient(api_key, server_zone=zone, server_url=url, config=config)
    except aa.AmplitudeError as exc:
        assert isinstance(exc, aa.ConfigurationError), f"{type(exc).__name__}: {exc}"
        assert str(exc).strip()
        return
    assert not client.closed


PIPELINE = settings(max_examples=40, deadline=None)

# Mostly what the builders accept (so operations reach the pipeline): JSON-like values
# with any text (lone surrogates included), huge integers, deep-ish nesting.
json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | any_text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
plausible_calls = st.lists(
    st.tuples(
        st.sampled_from(METHODS[:-1]),
        st.text(min_size=1, max_size=6) | any_text.filter(bool),
        json_like
        | st.integers()
        # Strings UTF-8 cannot carry, as values the builders accept today.
        | st.sampled_from(["\ud800", "ok\udfff", ["\udc00"], {"k": "\ud83d"}]),
    ),
    min_size=1,
    max_size=4,
)


@PIPELINE
@given(
    st.lists(
        st.tuples(st.sampled_from(["user-aaaa1", "user-bbbb2"]), plausible_calls),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_accepted_operations_never_crash_the_pipeline(
    drawn: list[tuple[str, list[Any]]], coalesce: bool
) -> None:
    """Whatever the builders accept goes through a real client into the emulator: each
    operation ends in exactly one outcome, the client keeps working, and an operation
    fails only if it cannot be encoded (a lone surrogate) or the server refuses it."""
    ops = [op for user, c in drawn if (op := _build(user, None, {}, None, c)) is not None]
    event(f"accepted operations: {min(len(ops), 5)}{'+' if len(ops) >= 5 else ''}")
    if not ops:
        return
    asyncio.run(_through_the_pipeline(ops, coalesce))


async def _through_the_pipeline(ops: list[Identify], coalesce: bool) -> None:
    seen: list[aa.Outcome] = []
    async with Emulator(api_keys=[KEY], eps_threshold=None) as emulator:
        cfg = fast_config(coalesce=coalesce, on_outcome=lambda _op, o: seen.append(o))
        async with AmplitudeClient(KEY, server_url=emulator.identify_url, config=cfg) as amp:
            receipts = [await amp.identify(op) for op in ops]
            outcomes = await outcomes_of(receipts)
            # Still working afterwards.
            after = await amp.identify(Identify(user_id="user-after").set("ok", True))
            assert (await outcomes_of([after]))[0].ok
    assert len(seen) == len(ops) + 1
    for outcome in outcomes:
        event(f"outcome: {outcome.reason.value if isinstance(outcome, Failed) else 'delivered'}")
        if isinstance(outcome, Failed):
            assert outcome.reason is FailureReason.INVALID, outcome
            assert "encoded" in outcome.message or outcome.status == 400, outcome


# -- whatever the server answers --------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308, 404, 405, 415, 422])
async def test_a_refused_request_fails_its_batch_in_one_request_not_item_by_item(
    server: ScriptedServer, status: int
) -> None:
    """A redirect (a wrong http:// URL) or a 404 refuses the request, not some items:
    narrowing it by bisecting sent about two requests per operation (199 for 100)."""
    server.responder = lambda _r: web.Response(status=status, text="nope")
    cfg = fast_config(batch_max_items=100, flush_interval=0.05)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", i)) for i in range(100)
        ]
        outcomes = await outcomes_of(receipts)
    assert len(server.requests) == 1
    for outcome in outcomes:
        assert isinstance(outcome, Failed) and outcome.reason is FailureReason.INVALID
        assert outcome.status == status and f"HTTP {status}" in outcome.message


@pytest.mark.parametrize(("retry_after", "delivered"), [("3600", False), ("0.05", True)])
async def test_a_retry_after_past_the_retry_deadline_fails_at_once(
    server: ScriptedServer, retry_after: str, delivered: bool
) -> None:
    """A 503 whose Retry-After lies past retry_deadline used to park the operations
    until then (an hour here, a day for 86399) whatever the deadline said."""
    answers = [web.Response(status=503, text="busy", headers={"Retry-After": retry_after})]
    server.responder = lambda _r: answers.pop() if answers else web.Response(text="success")
    cfg = fast_config(retry_deadline=1.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        (outcome,) = await asyncio.wait_for(outcomes_of([receipt]), 5)
    if delivered:
        assert isinstance(outcome, Delivered) and outcome.attempts == 2
    else:
        assert isinstance(outcome, Failed) and outcome.reason is FailureReason.RETRIES_EXHAUSTED
        assert "3600" in outcome.message and outcome.status == 503
        assert len(server.requests) == 1


STATUSES = [200, 201, 204, 301, 304, 400, 401, 403, 404, 408, 409, 413, 414, 418, 422, 429]
STATUSES += [500, 501, 502, 503, 504, 599]
json_bodies = st.fixed_dictionaries(
    {},
    optional={
        "code": st.integers() | st.text(max_size=3),
        "error": st.text(max_size=20) | st.integers() | st.none(),
        "throttled_users": st.dictionaries(
            st.sampled_from(["user-00001", "user-00002", "ghost"]), st.integers() | st.text()
        )
        | st.lists(st.text(max_size=5))
        | st.none(),
        "throttled_devices": st.dictionaries(st.text(max_size=5), st.integers()),
        "exceeded_daily_quota_users": st.dictionaries(
            st.sampled_from(["user-00002", "other"]), st.integers()
        ),
        "events_with_invalid_fields": st.dictionaries(
            st.text(max_size=5), st.lists(st.integers(-3, 12), max_size=4)
        )
        | st.text(max_size=3),
        "events_with_missing_fields": st.dictionaries(
            st.text(max_size=5), st.lists(st.integers() | st.text(max_size=2), max_size=3)
        ),
    },
)
answers = st.tuples(
    st.sampled_from(STATUSES),
    json_bodies.map(json.dumps) | st.text(max_size=30) | st.just("invalid_api_key"),
    st.none() | st.sampled_from(["0", "0.01", "-1", "nan", "inf", "1e9", "abc", " 0.02 ", "86399"]),
).filter(
    # A 429's Retry-After is honoured however long it is (a hold is not a failure, see
    # docs/guarantees.md): a day-long one would only make this test wait a day.
    lambda a: not (a[0] == 429 and a[2] == "86399")
)


@settings(max_examples=60, deadline=None)
@given(st.lists(answers, max_size=8), st.booleans())
def test_whatever_the_server_answers_every_operation_gets_one_outcome(
    script: list[tuple[int, str, str | None]], coalesce: bool
) -> None:
    asyncio.run(_against_a_scripted_server(script, coalesce))


async def _against_a_scripted_server(
    script: list[tuple[int, str, str | None]], coalesce: bool
) -> None:
    server = ScriptedServer()
    queue = list(script)

    def answer(request: Request) -> web.Response:
        if not queue:
            return web.Response(text="success")
        status, body, retry_after = queue.pop(0)
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if status in (204, 304):
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, text=body, headers=headers)

    server.responder = answer
    await server.start()
    seen: Counter[int] = Counter()
    try:
        cfg = fast_config(
            coalesce=coalesce,
            batch_max_items=3,
            retry_deadline=2.0,
            throttle_hold=0.02,
            on_outcome=lambda op, _o: seen.update([id(op)]),
        )
        async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
            ops = [Identify(user_id=f"user-0000{1 + i % 3}").append("log", i) for i in range(10)]
            receipts = [await amp.identify(op) for op in ops]
            await asyncio.wait_for(amp.flush(), 10)
    finally:
        await server.stop()
    assert all(r.outcome is not None for r in receipts)
    assert sorted(seen.values()) == [1] * len(ops)
