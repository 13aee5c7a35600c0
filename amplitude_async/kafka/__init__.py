"""Scale-out on Kafka: a topic keyed by identity, consumed by a group of workers.

Installed with the extra ``amplitude-async[kafka]`` (aiokafka). :class:`IdentifyProducer`
writes operations with the message key set to their identity (``user_id``, else
``device_id``), so that one user's operations share a partition and keep their order;
:class:`KafkaIdentifyWorker` consumes them in a consumer group and feeds an
:class:`~amplitude_async.AmplitudeClient`, committing each partition only up to its first
operation without an outcome. See docs/scale-out.md.

The implementation lives in underscore modules; ``__all__`` is sorted.
"""

from __future__ import annotations

try:
    import aiokafka  # noqa: F401 - only to fail early, with the extra's name
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    if exc.name != "aiokafka":
        raise
    raise ModuleNotFoundError(
        "amplitude_async.kafka needs aiokafka: install the extra 'amplitude-async[kafka]'",
        name=exc.name,
    ) from None

from ._codec import identity_key, message_value
from ._errors import KafkaWorkerError
from ._producer import IdentifyProducer
from ._stats import WorkerStats
from ._worker import DEAD_LETTER_HEADERS, KafkaIdentifyWorker

__all__ = [
    "DEAD_LETTER_HEADERS",
    "IdentifyProducer",
    "KafkaIdentifyWorker",
    "KafkaWorkerError",
    "WorkerStats",
    "identity_key",
    "message_value",
]
