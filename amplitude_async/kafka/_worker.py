"""``KafkaIdentifyWorker``: a consumer group member that feeds one AmplitudeClient.

Flow (one event loop)::

    getmany ──► decode (the import parser) ──► identify() ──► receipt.add_done_callback
       ▲  pause/resume per partition                               │
       │                                                           ▼
    commit (per partition, up to the first offset without an outcome) ◄── PartitionTracker
                                                 Failed ──► dead-letter topic, then settled

One partition has one owner at a time, so one user's operations reach Amplitude in
order. The commit point of a partition never passes an operation without an outcome
(at-least-once). On revoke the worker stops feeding, drains within ``drain_timeout``
(which is shorter than the group's rebalance timeout, so no other member gets the
partitions while this one still sends), commits and forgets the partitions. On
:meth:`stop` (or SIGTERM with ``handle_signals``) it drains, closes the client, commits
and leaves the group.
"""

from __future__ import annotations

import functools
import logging
import signal
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

import anyio
from aiokafka import ConsumerRebalanceListener

# Only the SDK's public names: the worker uses the client as any user would.
from .. import AmplitudeClient, ClientStateError, ConfigurationError, Failed, FailureReason, Outcome
from ._codec import decode_message
from ._drain import Drain, check_timeouts
from ._errors import KafkaWorkerError
from ._stats import WorkerStats
from ._tracker import PartitionTracker

__all__ = ["DEAD_LETTER_HEADERS", "KafkaIdentifyWorker"]

logger = logging.getLogger("amplitude_async.kafka")

#: Headers of a dead-letter message (its key and value are the original's, unchanged).
DEAD_LETTER_HEADERS: Final = (
    "amplitude-async-reason",  # a FailureReason value, or "unreadable"
    "amplitude-async-message",  # why, in words (never a key)
    "amplitude-async-status",  # the HTTP status of the refusal, if any
    "amplitude-async-source",  # topic/partition/offset of the original message
)
#: Reason of a message that carries no valid identification.
UNREADABLE: Final = "unreadable"
#: Not stopping a partition for good: these outcomes leave the offset uncommitted.
_NOT_SENT: Final = frozenset({FailureReason.SHUTDOWN, FailureReason.DROPPED, FailureReason.AUTH})
#: Set by the worker; consumer_options may not change them.
_OWN_OPTIONS: Final = frozenset(
    {
        "bootstrap_servers",
        "group_id",
        "enable_auto_commit",
        "key_deserializer",
        "value_deserializer",
    }
)
_POLL_MS: Final = 100
#: After a drain, closing the client may take this long (what is left then fails
#: "shutdown" at once and stays uncommitted).
_CLOSE_BUDGET: Final = 1.0
#: Leaving the group and closing the dead-letter producer may take this long.
_LEAVE_BUDGET: Final = 10.0
#: Unreadable messages logged one by one; past this only counted.
_MAX_LOGGED: Final = 20


class KafkaIdentifyWorker:
    """Consume ``topic`` in consumer group ``group_id`` and send every operation with
    ``client`` (an unopened :class:`~amplitude_async.AmplitudeClient`; the worker opens
    and closes it).

    - ``dead_letter_topic``: where operations that failed for good go (the original key
      and value, the reason in :data:`DEAD_LETTER_HEADERS`); without it they are logged.
      Either way they then count as settled.
    - ``max_unsettled``: a partition with this many operations without an outcome is
      paused, and resumed at half of it.
    - ``drain_timeout`` must be at least 2 s shorter than ``rebalance_timeout``.
    - ``consumer_options`` / ``producer_options`` go to aiokafka (security, fetch sizes).
    """

    def __init__(
        self,
        client: AmplitudeClient,
        *,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        group_id: str,
        dead_letter_topic: str | None = None,
        drain_timeout: float = 30.0,
        rebalance_timeout: float = 60.0,
        session_timeout: float = 10.0,
        max_unsettled: int = 1000,
        commit_interval: float = 1.0,
        consumer_options: Mapping[str, Any] | None = None,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(client, AmplitudeClient):
            raise ConfigurationError(f"client must be an AmplitudeClient, got {client!r}")
        config = client.config
        if config.on_full != "wait":
            # A dropped operation would hold its partition's commit point forever.
            raise ConfigurationError("the worker's client needs on_full='wait'")
        if config.spool_path is not None:
            # Kafka replays what was not delivered; a spool would send it a second time.
            raise ConfigurationError("the worker's client must not have a spool_path")
        for name, value in (("topic", topic), ("group_id", group_id)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{name} must be a non-empty string")
        if dead_letter_topic is not None and (
            not isinstance(dead_letter_topic, str) or dead_letter_topic in ("", topic)
        ):
            raise ConfigurationError("dead_letter_topic must be a topic name other than topic")
        if not isinstance(max_unsettled, int) or max_unsettled < 1:
            raise ConfigurationError(f"max_unsettled must be a positive int, got {max_unsettled!r}")
        for name, seconds in (
            ("session_timeout", session_timeout),
            ("commit_interval", commit_interval),
        ):
            if not seconds > 0:
                raise ConfigurationError(f"{name} must be > 0 seconds, got {seconds!r}")
        try:
            check_timeouts(drain_timeout, rebalance_timeout)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        options = dict(consumer_options or {})
        own = sorted(_OWN_OPTIONS & options.keys())
        if own:
            raise ConfigurationError(f"consumer_options may not set {', '.join(own)}")
        self._client = client
        self._min_id_length = config.min_id_length
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._group_id = group_id
        self._dlq_topic = dead_letter_topic
        self._drain_timeout = float(drain_timeout)
        self._max_unsettled = max_unsettled
        self._commit_interval = commit_interval
        self._consumer_options: dict[str, Any] = {
            "auto_offset_reset": "earliest",
            "session_timeout_ms": int(session_timeout * 1000),
            "heartbeat_interval_ms": max(100, int(session_timeout * 1000) // 5),
            "rebalance_timeout_ms": int(rebalance_timeout * 1000),
            "max_poll_records": 500,
            **options,
        }
        self._producer_options: dict[str, Any] = {"acks": "all", **(producer_options or {})}
        # Partitions assigned now; a tracker per partition.
        self._trackers: dict[Any, PartitionTracker] = {}
        # Partitions being let go: nothing more of theirs is handed on.
        self._closing: set[Any] = set()
        self._paused: set[Any] = set()
        self._counts: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._dead_letters: deque[tuple[PartitionTracker, Any, list[tuple[str, bytes]]]] = deque()
        self._shown = 0
        self._stopping = False
        self._failure: str | None = None
        self._consumer: Any = None
        self._amp: AmplitudeClient | None = None
        # Made in run(): events and scopes belong to a running loop.
        self._changed: anyio.Event | None = None
        self._dlq_ready: anyio.Event | None = None
        self._feed_lock: anyio.Lock | None = None
        self._feed_scope: anyio.CancelScope | None = None
        # The scope of the drain under way, if any (a second signal cancels it).
        self._drain_scope: anyio.CancelScope | None = None
        self._ran = False

    # -- the run ---------------------------------------------------------------------

    async def run(self, *, handle_signals: bool = False) -> WorkerStats:
        """Consume until :meth:`stop` (or SIGTERM/SIGINT with ``handle_signals``), then
        drain, close the client, commit and leave the group; returns the final counters.

        Raises :class:`KafkaWorkerError` when the worker had to stop on its own (see
        there), after the same shutdown.
        """
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        if self._ran:
            raise RuntimeError("a KafkaIdentifyWorker runs once; make a new one")
        self._ran = True
        self._changed = anyio.Event()
        self._dlq_ready = anyio.Event()
        self._feed_lock = anyio.Lock()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            **self._consumer_options,
        )
        consumer.subscribe([self._topic], listener=_Listener(self))
        producer = None
        if self._dlq_topic is not None:
            producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, **self._producer_options)
        try:
            if producer is not None:
                await producer.start()
            await consumer.start()
            self._consumer = consumer
            error: Exception | None = None
            async with self._client as amp:
                self._amp = amp
                async with anyio.create_task_group() as tg:
                    if handle_signals:
                        tg.start_soon(self._watch_signals)
                    if producer is not None:
                        tg.start_soon(self._send_dead_letters, producer)
                    try:
                        await self._consume(consumer, amp)
                    except Exception as exc:  # noqa: BLE001 - raised below, as itself
                        # Kept out of the task group, which would wrap it in a group.
                        error = exc
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self._shut_down(consumer, amp)
                    tg.cancel_scope.cancel()
            if error is not None:
                raise error
        finally:
            # Bounded: leaving the group needs the broker, which may be gone.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_LEAVE_BUDGET):
                await consumer.stop()
            with anyio.CancelScope(shield=True), anyio.move_on_after(_LEAVE_BUDGET):
                if producer is not None:
                    await producer.stop()
        if self._failure is not None:
            raise KafkaWorkerError(self._failure)
        return self.stats()

    def stop(self) -> None:
        """Stop taking messages; :meth:`run` then drains (at most ``drain_timeout``),
        commits and returns. Called again while it drains: stop waiting (what has no
        outcome then stays uncommitted, for the partitions' next owner)."""
        if self._stopping and self._drain_scope is not None:
            self._drain_scope.cancel()
        self._stopping = True
        if self._feed_scope is not None:
            self._feed_scope.cancel()

    def stats(self) -> WorkerStats:
        counts = self._counts
        return WorkerStats(
            consumed=counts["consumed"],
            delivered=counts["delivered"],
            failed=dict(self._failed),
            dead_lettered=counts["dead_lettered"],
            unreadable=counts["unreadable"],
            not_sent=counts["not_sent"],
            unsettled=sum(t.unsettled for t in self._trackers.values()),
            assigned=len(self._trackers),
            paused=len(self._paused),
            pauses=counts["pauses"],
            commits=counts["commits"],
            rebalances=counts["rebalances"],
            drain_timeouts=counts["drain_timeouts"],
            client=self._amp.stats() if self._amp is not None else None,
        )

    def committed(self) -> dict[tuple[str, int], int]:
        """What this worker last committed, per (topic, partition) it owns now."""
        return {
            (tp.topic, tp.partition): t.committed
            for tp, t in self._trackers.items()
            if t.committed is not None
        }

    async def _consume(self, consumer: Any, amp: AmplitudeClient) -> None:
        assert self._feed_lock is not None
        next_commit = anyio.current_time() + self._commit_interval
        while not self._stopping:
            batch = await consumer.getmany(timeout_ms=_POLL_MS)
            async with self._feed_lock:
                with anyio.CancelScope() as scope:
                    self._feed_scope = scope
                    if self._stopping:
                        scope.cancel()
                    for tp, records in batch.items():
                        await self._feed(amp, tp, records)
                self._feed_scope = None
                if scope.cancel_called:
                    self._rewind(consumer, batch)
            self._balance(consumer)
            if anyio.current_time() >= next_commit:
                await self._commit(consumer, dict(self._trackers))
                next_commit = anyio.current_time() + self._commit_interval

    async def _feed(self, amp: AmplitudeClient, tp: Any, records: list[Any]) -> None:
        for record in records:
            tracker = self._trackers.get(tp)
            if tracker is None or tp in self._closing:
                return  # let go meanwhile: the next owner reads it from the commit point
            offset = record.offset
            if not tracker.fresh(offset):
                continue
            try:
                op = decode_message(record.value, self._min_id_length)
                receipt = await amp.identify(op)
            except ValueError as exc:  # a LineError or ValidationError: not an operation
                tracker.add(offset)
                self._unreadable(tracker, record, str(exc))
                continue
            # Nothing awaits between identify() and here, so no outcome was missed.
            tracker.add(offset)
            self._counts["consumed"] += 1
            receipt.add_done_callback(functools.partial(self._on_outcome, tracker, record))

    def _rewind(self, consumer: Any, batch: Mapping[Any, list[Any]]) -> None:
        """A feed cut short: the consumer's position is past records never handed on.
        Seek back to them on partitions we keep, or a later commit would skip them."""
        for tp, records in batch.items():
            tracker = self._trackers.get(tp)
            if tracker is None or tp in self._closing or not records:
                continue  # let go: the next owner reads from the commit point
            resume_at = tracker.next_offset
            if resume_at is None:
                resume_at = records[0].offset
            if records[-1].offset >= resume_at:
                consumer.seek(tp, resume_at)

    def _balance(self, consumer: Any) -> None:
        """Pause partitions with too many unsettled operations; resume them at half."""
        for tp, tracker in self._trackers.items():
            unsettled = tracker.unsettled
            if tp in self._paused:
                if unsettled <= self._max_unsettled // 2:
                    consumer.resume(tp)
                    self._paused.discard(tp)
            elif unsettled >= self._max_unsettled and tp not in self._closing:
                consumer.pause(tp)
                self._paused.add(tp)
                self._counts["pauses"] += 1

    # -- outcomes --------------------------------------------------------------------

    def _on_outcome(self, tracker: PartitionTracker, record: Any, outcome: Outcome) -> None:
        if not isinstance(outcome, Failed):
            tracker.settle(record.offset)
            self._counts["delivered"] += 1
            self._wake()
            return
        reason = outcome.reason
        if reason in _NOT_SENT:
            # Nothing wrong with the data: uncommitted, so the next owner sends it.
            self._counts["not_sent"] += 1
            if reason is FailureReason.AUTH:
                self._fail(f"the API key was not accepted ({outcome.message})")
            return
        self._failed[reason.value] += 1
        self._dead_letter(tracker, record, reason.value, outcome.message, outcome.status)

    def _unreadable(self, tracker: PartitionTracker, record: Any, message: str) -> None:
        self._counts["unreadable"] += 1
        self._shown += 1
        if self._shown <= _MAX_LOGGED:
            logger.warning(
                "%s/%d offset %d carries no identification: %s",
                record.topic,
                record.partition,
                record.offset,
                message,
            )
        self._dead_letter(tracker, record, UNREADABLE, message, None)

    def _dead_letter(
        self,
        tracker: PartitionTracker,
        record: Any,
        reason: str,
        message: str,
        status: int | None,
    ) -> None:
        if self._dlq_topic is None:
            # Final and logged (by the client, or above): settled, committed past.
            tracker.settle(record.offset)
            self._wake()
            return
        headers = [
            (DEAD_LETTER_HEADERS[0], reason.encode()),
            (DEAD_LETTER_HEADERS[1], message.encode("utf-8", "replace")),
            (DEAD_LETTER_HEADERS[2], b"" if status is None else str(status).encode()),
            (
                DEAD_LETTER_HEADERS[3],
                f"{record.topic}/{record.partition}/{record.offset}".encode("utf-8", "replace"),
            ),
        ]
        self._dead_letters.append((tracker, record, headers))
        assert self._dlq_ready is not None
        self._dlq_ready.set()

    async def _send_dead_letters(self, producer: Any) -> None:
        """One at a time, in order: a message is settled once the broker has its copy."""
        from aiokafka.errors import KafkaError

        queue = self._dead_letters
        while True:
            assert self._dlq_ready is not None
            if not queue:
                await self._dlq_ready.wait()
                self._dlq_ready = anyio.Event()
                continue
            tracker, record, headers = queue[0]
            try:
                await producer.send_and_wait(
                    self._dlq_topic, value=record.value, key=record.key, headers=headers
                )
            except KafkaError as exc:
                # Not recorded anywhere: stays unsettled (uncommitted), and we stop.
                self._fail(f"writing to the dead-letter topic {self._dlq_topic!r} failed: {exc}")
                return
            queue.popleft()
            tracker.settle(record.offset)
            self._counts["dead_lettered"] += 1
            self._wake()

    def _wake(self) -> None:
        changed = self._changed
        if changed is not None:
            changed.set()
            self._changed = anyio.Event()

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
            logger.error("the Kafka worker stops: %s", reason)
        self.stop()

    # -- commits, revokes, shutdown ------------------------------------------------------

    async def _commit(self, consumer: Any, trackers: Mapping[Any, PartitionTracker]) -> bool:
        """Commit each partition's commit point that moved; False if the broker refused."""
        from aiokafka.errors import KafkaError

        offsets = Drain(trackers, 0.0).offsets()
        if not offsets:
            return True
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance under way, say: the revoke commits, or the next round does.
            # Not committing is never a loss, only a longer replay.
            logger.info("commit of %d partition(s) failed: %s", len(offsets), exc)
            return False
        for tp, offset in offsets.items():
            trackers[tp].committed = offset
        self._counts["commits"] += 1
        return True

    async def _wait(self, drain: Drain[Any], amp: AmplitudeClient) -> None:
        """Return when the drain is done: everything settled, or its deadline passed."""
        with anyio.move_on_after(drain.remaining(anyio.current_time())) as scope:
            # A drain cut short by a second signal ends here too.
            self._drain_scope = scope
            if drain.left() and not amp.closed:
                try:
                    await amp.flush()  # send now, not after the linger
                except ClientStateError:
                    return  # the client stopped: nothing more will settle
            while drain.left():
                assert self._changed is not None
                await self._changed.wait()

    async def on_revoked(self, revoked: set[Any]) -> None:
        """Stop feeding the partitions, drain them, commit, forget them."""
        if not revoked:
            return
        assert self._feed_lock is not None
        self._closing |= revoked
        if self._feed_scope is not None:
            self._feed_scope.cancel()
        async with self._feed_lock:  # the feed has let go
            pass
        trackers = {tp: self._trackers[tp] for tp in revoked if tp in self._trackers}
        drain = Drain(trackers, anyio.current_time() + self._drain_timeout)
        amp = self._amp
        if amp is not None and not amp.closed:
            await self._wait(drain, amp)
            left = drain.left()
            if left:
                # Still sending: another member must not get these partitions while this
                # client may send their users' operations. Close it; what is left fails
                # "shutdown", stays uncommitted, and this worker stops.
                self._counts["drain_timeouts"] += 1
                with anyio.move_on_after(_CLOSE_BUDGET):
                    await amp.aclose()
                if not self._stopping:
                    self._fail(
                        f"partitions revoked with {left} operation(s) still without an "
                        f"outcome after drain_timeout={self._drain_timeout:g} s"
                    )
        await self._commit(self._consumer, trackers)
        for tp in revoked:
            self._trackers.pop(tp, None)
            self._paused.discard(tp)
        self._closing -= revoked

    def on_assigned(self, assigned: set[Any]) -> None:
        self._counts["rebalances"] += 1
        for tp in assigned:
            self._trackers.setdefault(tp, PartitionTracker())

    async def _shut_down(self, consumer: Any, amp: AmplitudeClient) -> None:
        """Drain everything, close the client, commit: then leaving the group is safe."""
        self._stopping = True
        self._closing |= set(self._trackers)
        drain = Drain(dict(self._trackers), anyio.current_time() + self._drain_timeout)
        await self._wait(drain, amp)
        # Closing before committing: no outcome can change after the commit, and no
        # request of ours is in flight once another member owns the partitions.
        with anyio.move_on_after(_CLOSE_BUDGET):
            await amp.aclose()
        # The snapshot: a revoke meanwhile forgets partitions (after committing them).
        await self._commit(consumer, drain.trackers)
        left = drain.left()
        if left:
            logger.warning(
                "stopped with %d operation(s) without an outcome: not committed, the next "
                "owner of their partitions sends them",
                left,
            )

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.warning(
                    "%s: %s",
                    signal.Signals(signum).name,
                    "stop waiting for the drain"
                    if self._stopping
                    else f"draining (at most {self._drain_timeout:g} s), committing, leaving",
                )
                self.stop()

    def __repr__(self) -> str:
        return (
            f"KafkaIdentifyWorker(topic={self._topic!r}, group_id={self._group_id!r}, "
            f"assigned={len(self._trackers)})"
        )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc] # aiokafka is untyped
    """aiokafka's rebalance listener, handing the events to the worker."""

    def __init__(self, worker: KafkaIdentifyWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._worker.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._worker.on_assigned(set(assigned))
