"""The worker's own error: it stopped before it was asked to."""

from __future__ import annotations

from .. import AmplitudeError

__all__ = ["KafkaWorkerError"]


class KafkaWorkerError(AmplitudeError):
    """The worker stopped on its own: the API key was refused, a revoke could not drain
    in time, or the dead-letter topic could not be written. Operations without an outcome
    were not committed; the partitions' next owner sends them."""
