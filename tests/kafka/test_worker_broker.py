"""The producer and the worker against a real broker (Tansu) and the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import amplitude_async as aa
from amplitude_async.emulator import Emulator, Fault
from amplitude_async.kafka import (
    DEAD_LETTER_HEADERS,
    IdentifyProducer,
    KafkaIdentifyWorker,
    KafkaWorkerError,
    identity_key,
    message_value,
)

from ..conftest import fast_config
from .conftest import Broker, eventually

KEY = "kafka-test-key-0123"
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY], eps_threshold=None) as emulator:
        yield emulator


def client(emu: Emulator, **changes: Any) -> aa.AmplitudeClient:
    return aa.AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config(**changes))


def worker(
    broker: Broker, amp: aa.AmplitudeClient, topic: str, **changes: Any
) -> KafkaIdentifyWorker:
    options: dict[str, Any] = dict(
        bootstrap_servers=broker.bootstrap,
        topic=topic,
        group_id=f"{topic}-group",
        drain_timeout=5.0,
        rebalance_timeout=10.0,
        session_timeout=6.0,
        commit_interval=0.1,
    )
    options.update(changes)
    return KafkaIdentifyWorker(amp, **options)


@contextlib.asynccontextmanager
async def running(w: KafkaIdentifyWorker) -> AsyncIterator[asyncio.Task[Any]]:
    """Run the worker in a task; on the way out (also after a failed assert) stop it."""
    task = asyncio.create_task(w.run())
    try:
        yield task
    finally:
        w.stop()
        done, _ = await asyncio.wait({task}, timeout=30)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=10)


async def produce(broker: Broker, topic: str, ops: list[aa.Identify]) -> None:
    async with IdentifyProducer(broker.bootstrap, topic) as producer:
        for op in ops:
            await producer.send(op)
        await producer.flush()


def log_of(emu: Emulator, user: str) -> list[Any]:
    return (emu.user(user) or {}).get("log", [])


# -- the producer ----------------------------------------------------------------------


async def test_producer_keys_by_identity_and_writes_import_lines(broker: Broker) -> None:
    await broker.create_topic("keyed", 3)
    ops = [
        aa.Identify(user_id=f"user-{u:04d}").append("log", i) for i in range(4) for u in range(6)
    ]
    ops.append(aa.Identify(device_id="device-only-1").set("plan", "free"))
    await produce(broker, "keyed", ops)
    records = await broker.read_all("keyed", 3, len(ops))
    assert len(records) == len(ops)
    by_key: dict[bytes, list[Any]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    assert set(by_key) == {f"user-{u:04d}".encode() for u in range(6)} | {b"device-only-1"}
    for key, mine in by_key.items():
        assert len({r.partition for r in mine}) == 1, key  # one user, one partition
        mine.sort(key=lambda r: r.offset)
        if key.startswith(b"user-"):
            values = [json.loads(r.value) for r in mine]
            # The value is an import JSON line; in the order sent.
            assert values == [
                {"user_id": key.decode(), "user_properties": {"$append": {"log": i}}}
                for i in range(4)
            ]
    (device,) = by_key[b"device-only-1"]
    assert device.value == message_value(ops[-1])
    assert identity_key(ops[-1]) == b"device-only-1"


async def test_producer_refuses_bad_operations_before_queueing(broker: Broker) -> None:
    async with IdentifyProducer(broker.bootstrap, "refused") as producer:
        with pytest.raises(aa.ValidationError, match="user_id"):
            await producer.send(aa.Identify(user_id="abc").set("a", 1))
        with pytest.raises(aa.ValidationError, match="expected an Identify"):
            await producer.send({"user_id": "user-0001"})  # type: ignore[arg-type]


# -- the worker ------------------------------------------------------------------------


async def test_worker_delivers_every_users_operations_in_order_and_commits(
    broker: Broker, emu: Emulator
) -> None:
    await broker.create_topic("orders", 3)
    users = [f"user-{u:04d}" for u in range(10)]
    await produce(
        broker,
        "orders",
        [aa.Identify(user_id=u).append("log", i) for i in range(20) for u in users],
    )
    w = worker(broker, client(emu), "orders")
    async with running(w) as task:
        await eventually(lambda: all(log_of(emu, u) == list(range(20)) for u in users))
        await eventually(lambda: sum(w.committed().values()) == 200)
        w.stop()
        stats = await asyncio.wait_for(task, 20)
        assert stats.delivered == stats.consumed == 200
        assert await broker.committed("orders", "orders-group", 3) == {
            p: n for p, n in w_partition_sizes(await broker.read_all("orders", 3, 200)).items()
        }


def w_partition_sizes(records: list[Any]) -> dict[int, int]:
    sizes = {p: 0 for p in range(3)}
    for record in records:
        sizes[record.partition] = max(sizes[record.partition], record.offset + 1)
    return sizes


async def test_a_throttled_operation_holds_the_commit_point_not_the_other_users(
    broker: Broker, emu: Emulator
) -> None:
    await broker.create_topic("held", 1)
    emu.throttle(users=["user-held"])
    ops = [aa.Identify(user_id="user-held").append("log", 0)]
    ops += [aa.Identify(user_id=f"user-{u:04d}").append("log", 0) for u in range(5)]
    await produce(broker, "held", ops)
    w = worker(broker, client(emu, throttle_hold=0.1, retry_deadline=60.0), "held")
    async with running(w) as task:
        # Everyone after the held user is delivered ...
        await eventually(lambda: all(log_of(emu, f"user-{u:04d}") == [0] for u in range(5)))
        await eventually(
            lambda: w.stats().client is not None and w.stats().client.throttle_responses >= 3
        )  # type: ignore[union-attr]
        # ... but the commit point stays at the held operation (offset 0), on the broker too.
        assert w.stats().delivered == 5 and w.stats().unsettled == 1
        assert w.committed() == {("held", 0): 0}
        assert (await broker.committed("held", "held-group", 1)) == {0: 0}
        emu.unthrottle()
        await eventually(lambda: w.committed() == {("held", 0): 6})
        assert log_of(emu, "user-held") == [0]
        w.stop()
        await asyncio.wait_for(task, 20)
        assert (await broker.committed("held", "held-group", 1)) == {0: 6}


async def test_a_partition_with_too_many_unsettled_operations_pauses_and_resumes(
    broker: Broker, emu: Emulator
) -> None:
    await broker.create_topic("paused", 1)
    emu.throttle(users=["user-hot1"])
    await produce(
        broker, "paused", [aa.Identify(user_id="user-hot1").append("log", i) for i in range(40)]
    )
    w = worker(
        broker,
        client(emu, throttle_hold=0.1, retry_deadline=60.0),
        "paused",
        max_unsettled=8,
        consumer_options={"max_poll_records": 4},
    )
    async with running(w) as task:
        await eventually(lambda: w.stats().paused == 1)
        consumed = w.stats().consumed
        assert 8 <= consumed < 40
        await asyncio.sleep(1.0)  # paused: nothing more is read while the user is held
        assert w.stats().consumed == consumed and w.stats().paused == 1
        emu.unthrottle()
        await eventually(lambda: log_of(emu, "user-hot1") == list(range(40)))
        await eventually(lambda: w.stats().paused == 0)  # resumed
        stats = w.stats()
        assert stats.consumed == 40 and stats.pauses >= 1
        w.stop()
        await asyncio.wait_for(task, 20)


async def test_failed_and_unreadable_messages_go_to_the_dead_letter_topic(
    broker: Broker, emu: Emulator
) -> None:
    await broker.create_topic("dlq-in", 1)
    await broker.create_topic("dlq-out", 1)
    bad = aa.Identify(user_id="user-bad1").append("log", 0)
    good = [aa.Identify(user_id=f"user-{u:04d}").append("log", 0) for u in range(3)]
    # The first request is refused for its first identification (the bad user).
    emu.script(
        Fault.http(
            400,
            body={
                "code": 400,
                "error": "Invalid field",
                "events_with_invalid_fields": {"user_id": [0]},
            },
        )
    )
    from aiokafka import AIOKafkaProducer

    raw = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await raw.start()
    try:
        await raw.send_and_wait("dlq-in", key=b"user-bad1", value=message_value(bad))
        await raw.send_and_wait("dlq-in", key=b"x", value=b"{not json")
        await raw.send_and_wait("dlq-in", key=b"abc", value=b'{"user_id": "abc"}')
        for op in good:
            await raw.send_and_wait("dlq-in", key=identity_key(op), value=message_value(op))
    finally:
        await raw.stop()
    w = worker(broker, client(emu), "dlq-in", dead_letter_topic="dlq-out")
    async with running(w) as task:
        await eventually(lambda: w.committed() == {("dlq-in", 0): 6})
        w.stop()
        stats = await asyncio.wait_for(task, 20)
        assert stats.delivered == 3 and stats.dead_lettered == 3 and stats.unreadable == 2
        assert stats.failed == {"invalid": 1}
        letters = sorted(await broker.read_all("dlq-out", 1, 3), key=lambda r: r.offset)
        headers = [dict(r.headers) for r in letters]
        # Unreadable messages are dead-lettered as they are read; the refused one after its 400.
        assert [(r.key, r.value) for r in letters] == [
            (b"x", b"{not json"),
            (b"abc", b'{"user_id": "abc"}'),
            (b"user-bad1", message_value(bad)),
        ]
        reasons = {r.key: h[DEAD_LETTER_HEADERS[0]] for r, h in zip(letters, headers, strict=True)}
        assert reasons == {b"user-bad1": b"invalid", b"x": b"unreadable", b"abc": b"unreadable"}
        sources = {r.key: h[DEAD_LETTER_HEADERS[3]] for r, h in zip(letters, headers, strict=True)}
        assert sources == {b"user-bad1": b"dlq-in/0/0", b"x": b"dlq-in/0/1", b"abc": b"dlq-in/0/2"}
        assert all(KEY.encode() not in v for h in headers for v in h.values())
        assert log_of(emu, "user-bad1") == [] and all(
            log_of(emu, f"user-{u:04d}") == [0] for u in range(3)
        )


# -- rebalances ------------------------------------------------------------------------


async def produce_placed(broker: Broker, topic: str, ops: list[aa.Identify]) -> dict[str, int]:
    """Produce ``ops``; the partition each identity landed on."""
    placed: dict[str, int] = {}
    async with IdentifyProducer(broker.bootstrap, topic) as producer:
        for op in ops:
            meta = await producer.send_and_wait(op)
            placed[op.identity] = meta.partition
    return placed


HELD = [f"user-held{u}" for u in range(8)]


async def test_revoke_drains_then_commits_so_the_next_owner_replays_nothing(
    broker: Broker, emu: Emulator
) -> None:
    await broker.create_topic("revoke", 2)
    emu.throttle(users=HELD)
    placed = await produce_placed(
        broker, "revoke", [aa.Identify(user_id=u).append("log", 0) for u in HELD]
    )
    assert set(placed.values()) == {0, 1}  # a held user on each partition
    a = worker(broker, client(emu, throttle_hold=0.1, retry_deadline=60.0), "revoke", group_id="rg")
    async with running(a) as task_a:
        await eventually(lambda: a.stats().unsettled == len(HELD) and a.stats().assigned == 2)
        b = worker(broker, client(emu, throttle_hold=0.1), "revoke", group_id="rg")
        async with running(b) as task_b:
            # A is asked to let go while every held operation is still without an outcome;
            # it drains: the holds end 3 s later, within its drain_timeout of 5 s.
            await asyncio.sleep(3.0)
            emu.unthrottle()
            await eventually(lambda: a.stats().assigned == 1 and b.stats().assigned == 1)
            assert a.stats().drain_timeouts == 0 and a.stats().rebalances >= 2
            more = [aa.Identify(user_id=u).append("log", 1) for u in HELD]
            await produce(broker, "revoke", more)
            await eventually(lambda: all(log_of(emu, u) == [0, 1] for u in HELD))
            # B read only the new messages: A had committed past every drained one.
            assert b.stats().consumed + a.stats().consumed == 2 * len(HELD)
            a.stop()
            b.stop()
            await asyncio.wait_for(asyncio.gather(task_a, task_b), 30)
    assert await broker.committed("revoke", "rg", 2) == {
        p: 2 * list(placed.values()).count(p) for p in (0, 1)
    }


async def test_a_revoke_that_cannot_drain_in_time_closes_the_client_and_stops(
    broker: Broker, emu: Emulator
) -> None:
    await broker.create_topic("undrained", 2)
    emu.throttle(users=HELD)
    await produce(broker, "undrained", [aa.Identify(user_id=u).append("log", 0) for u in HELD])
    cfg = dict(throttle_hold=0.1, retry_deadline=60.0)
    a = worker(
        broker,
        client(emu, **cfg),
        "undrained",
        group_id="ug",
        drain_timeout=1.0,
        rebalance_timeout=4.0,
    )
    async with running(a) as task_a:
        await eventually(lambda: a.stats().unsettled == len(HELD))
        b = worker(broker, client(emu, **cfg), "undrained", group_id="ug")
        async with running(b):
            with pytest.raises(KafkaWorkerError, match="drain_timeout"):
                await asyncio.wait_for(task_a, 30)
            assert a.stats().drain_timeouts == 1 and a.stats().not_sent == len(HELD)
            # B owns everything now and sends what A could not, from A's commit point.
            await eventually(lambda: b.stats().assigned == 2, within=40)
            emu.unthrottle()
            await eventually(lambda: all(log_of(emu, u) == [0] for u in HELD))
            assert b.stats().consumed == len(HELD)


async def test_a_consumer_error_is_raised_as_itself_after_the_shutdown(
    broker: Broker, emu: Emulator
) -> None:
    from aiokafka.errors import KafkaError

    await broker.create_topic("no-reset", 1)
    await produce(broker, "no-reset", [aa.Identify(user_id="user-0001").append("log", 0)])
    amp = client(emu)
    # No committed offset and no reset policy: the consumer refuses to pick a position.
    w = worker(broker, amp, "no-reset", consumer_options={"auto_offset_reset": "none"})
    with pytest.raises(KafkaError):
        await asyncio.wait_for(w.run(), 40)
    assert amp.closed
