"""``IdentifyProducer``: operations onto a topic, keyed by identity."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from .. import ConfigurationError, Identify
from .._rules import DEFAULT_MIN_ID_LENGTH
from ._codec import identity_key, message_value, refuse_bad_op

__all__ = ["IdentifyProducer"]

#: Set by the producer itself; a caller's producer_options may not change them.
_OWN_OPTIONS: Final = frozenset({"bootstrap_servers", "key_serializer", "value_serializer"})


class IdentifyProducer:
    """Writes identify operations to ``topic``, one message per operation.

    The key is the operation's identity (``user_id``, else ``device_id``): Kafka's
    partitioner then puts one user's operations on one partition, in the order sent. The
    value is the wire identification as JSON, the format of an ``import`` JSON line.

    >>> async with IdentifyProducer("127.0.0.1:9092", "identify") as producer:
    ...     await producer.send(Identify(user_id="user-1").append("log", 1))
    ...     await producer.flush()

    ``producer_options`` go to :class:`aiokafka.AIOKafkaProducer` (security, linger,
    compression). By default every write waits for all in-sync replicas (``acks="all"``).
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        *,
        min_id_length: int = DEFAULT_MIN_ID_LENGTH,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError("topic must be a non-empty string")
        options = dict(producer_options or {})
        own = sorted(_OWN_OPTIONS & options.keys())
        if own:
            raise ConfigurationError(f"producer_options may not set {', '.join(own)}")
        self._topic = topic
        self._min_id_length = min_id_length
        self._options: dict[str, Any] = {"acks": "all", **options}
        self._bootstrap = bootstrap_servers
        self._producer: Any = None

    async def __aenter__(self) -> IdentifyProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        if self._producer is not None:
            raise RuntimeError("this IdentifyProducer is already started")
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, **self._options)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        """Send what is buffered, then close."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, op: Identify) -> asyncio.Future[Any]:
        """Queue one operation; returns a future of its ``RecordMetadata`` (partition,
        offset) once the broker has it. Waits only for buffer room. Raises
        :class:`~amplitude_async.ValidationError` for an operation a client would refuse,
        before anything is queued."""
        refuse_bad_op(op, self._min_id_length)
        producer = self._started()
        future: asyncio.Future[Any] = await producer.send(
            self._topic, value=message_value(op), key=identity_key(op)
        )
        return future

    async def send_and_wait(self, op: Identify) -> Any:
        """Send one operation and wait until the broker has it; its ``RecordMetadata``."""
        return await (await self.send(op))

    async def flush(self) -> None:
        """Wait until everything queued so far is on the broker."""
        await self._started().flush()

    def _started(self) -> Any:
        if self._producer is None:
            raise RuntimeError("the IdentifyProducer is not started; use 'async with'")
        return self._producer

    def __repr__(self) -> str:
        state = "started" if self._producer is not None else "stopped"
        return f"IdentifyProducer(topic={self._topic!r}, {state})"
