"""Where the SDK's log records go on the command line: stderr, at the level -v asks for.

By default only errors are shown (a refused API key, say): the commands report 429 holds,
retries and failures in their own progress and summaries, so repeating them as log lines
would only bury the output. At ``-vvv`` each line also shows the record's structured
fields (``[event=identify.retry count=3 status=503 attempt=2 delay=0.41]``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from .._logfields import LOG_FIELDS

__all__ = ["configure_logging"]

_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record.

    Looked up per record, not bound once: a live progress display swaps ``sys.stderr``
    for a proxy that prints above the display, and test runners swap it per command.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except (OSError, ValueError):
            self.handleError(record)


class _FieldsFormatter(logging.Formatter):
    """The plain line, then the structured fields that are set (see docs/observability.md)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        values = [(f, record.__dict__.get(f)) for f in LOG_FIELDS]
        shown = " ".join(f"{f}={_short(v)}" for f, v in values if v is not None)
        return f"{line} [{shown}]" if shown else line


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


_FORMAT = "%(levelname)s %(name)s: %(message)s"
_PLAIN = logging.Formatter(_FORMAT)
_DETAILED = _FieldsFormatter(_FORMAT)
_handler = _StderrHandler()
_handler.setFormatter(_PLAIN)


def configure_logging(verbosity: int) -> Callable[[], None]:
    """Route the ``amplitude_async`` loggers to stderr at the level ``-v`` asks for.

    Returns the function that puts the logger back as it was, for when the command ends
    (the CLI can run inside another program, a test runner for one).
    """
    logger = logging.getLogger("amplitude_async")
    saved = (logger.level, logger.propagate)
    logger.addHandler(_handler)
    # Not also through the root logger's handlers: each record is printed once.
    logger.propagate = False
    logger.setLevel(_LEVELS[min(verbosity, len(_LEVELS) - 1)])
    _handler.setFormatter(_DETAILED if verbosity >= 3 else _PLAIN)

    def restore() -> None:
        logger.removeHandler(_handler)
        logger.level, logger.propagate = saved

    return restore
