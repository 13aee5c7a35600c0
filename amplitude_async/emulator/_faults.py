"""Faults: one-shot scripted behaviours and seeded random ones.

A :class:`Fault` says what the server does with one request instead of (or besides)
answering it normally. Tests queue them with ``emu.script(...)`` for exact control;
:class:`Faults` injects them at random rates from a seeded RNG, so a run with the same
seed and the same request sequence sees the same faults.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

__all__ = ["Fault", "FaultPlan", "Faults"]

FaultKind = Literal["http", "reset", "hang", "delay"]
_AMBIGUOUS_5XX: Final = (500, 502, 504)


@dataclass(frozen=True)
class Fault:
    """What the server does with one request. Build with the class methods.

    - ``Fault.http(503)``: answer 503 without applying anything.
    - ``Fault.http(500, apply=True)``: apply the request, then answer 500 (ambiguous).
    - ``Fault.http(429)``: a 429 that names nobody (HTTP V2 shape, empty maps).
    - ``Fault.reset()``: drop the connection without an answer (``apply=True``: after
      applying).
    - ``Fault.hang(30.0)``: read the request and never answer; the connection is closed
      after ``seconds`` (or when the emulator stops). Nothing is applied.
    - ``Fault.delay(0.5)``: wait, then handle the request normally.
    - ``Fault.ok()``: handle normally (a placeholder in a script).
    """

    kind: FaultKind
    status: int = 0
    apply: bool = False
    seconds: float = 0.0
    body: Any = None
    retry_after: float | None = None

    @classmethod
    def http(
        cls,
        status: int,
        *,
        apply: bool = False,
        body: Any = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Answer ``status`` (with ``body``: a str, or a JSON value; default: Amplitude's)."""
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status}")
        return cls("http", status=status, apply=apply, body=body, retry_after=retry_after)

    @classmethod
    def reset(cls, *, apply: bool = False) -> Fault:
        """Drop the connection without answering."""
        return cls("reset", apply=apply)

    @classmethod
    def hang(cls, seconds: float = 3600.0) -> Fault:
        """Never answer; close the connection after ``seconds``."""
        return cls("hang", seconds=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds``."""
        return cls("delay", seconds=seconds)

    @classmethod
    def ok(cls) -> Fault:
        """Answer normally."""
        return cls("delay", seconds=0.0)

    @property
    def label(self) -> str:
        """The name this fault is counted under in ``stats().faults``."""
        if self.kind == "http":
            return f"http_{self.status}" + ("_applied" if self.apply else "")
        if self.kind == "reset":
            return "reset_applied" if self.apply else "reset"
        return self.kind

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build from the control API's JSON, e.g. ``{"kind": "http", "status": 503}``."""
        kind = data.get("kind")
        if kind == "http":
            return cls.http(
                int(data["status"]),
                apply=bool(data.get("apply", False)),
                body=data.get("body"),
                retry_after=_opt_float(data.get("retry_after")),
            )
        if kind == "reset":
            return cls.reset(apply=bool(data.get("apply", False)))
        if kind == "hang":
            return cls.hang(float(data.get("seconds", 3600.0)))
        if kind == "delay":
            return cls.delay(float(data.get("seconds", 0.0)))
        if kind == "ok":
            return cls.ok()
        raise ValueError(f"unknown fault kind {kind!r}; known: http, reset, hang, delay, ok")


@dataclass(frozen=True)
class Faults:
    """Random fault rates (fractions of requests, 0..1), drawn from a seeded RNG.

    ``rate_503``: answered 503 before applying. ``rate_5xx_after``: applied, then
    answered 500, 502 or 504. ``rate_reset``: connection dropped before applying.
    ``rate_hang``: never answered (closed after ``hang_seconds``). ``latency`` seconds,
    plus up to ``latency_jitter`` more, are added to every ingestion request.
    """

    rate_503: float = 0.0
    rate_5xx_after: float = 0.0
    rate_reset: float = 0.0
    rate_hang: float = 0.0
    hang_seconds: float = 3600.0
    latency: float = 0.0
    latency_jitter: float = 0.0

    def __post_init__(self) -> None:
        rates = (self.rate_503, self.rate_5xx_after, self.rate_reset, self.rate_hang)
        if any(not 0.0 <= rate <= 1.0 for rate in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be within 0..1 and sum to at most 1")
        if self.latency < 0 or self.latency_jitter < 0 or self.hang_seconds < 0:
            raise ValueError("latency, latency_jitter and hang_seconds must be >= 0")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Faults:
        known = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**{name: float(value) for name, value in data.items()})


class FaultPlan:
    """Decides the fault for each request: scripted ones first, then random ones."""

    def __init__(self, faults: Faults | None = None, seed: int = 0) -> None:
        self.faults = faults or Faults()
        self.seed = seed
        self._rng = random.Random(seed)
        self._scripts: dict[str, deque[Fault]] = {}

    def script(self, endpoint: str, faults: Iterable[Fault]) -> None:
        self._scripts.setdefault(endpoint, deque()).extend(faults)

    def pending(self, endpoint: str) -> int:
        return len(self._scripts.get(endpoint, ()))

    def reset(self) -> None:
        """Forget scripts and restart the RNG from the seed."""
        self._scripts.clear()
        self._rng = random.Random(self.seed)

    def next(self, endpoint: str) -> tuple[Fault | None, float]:
        """The fault for the next request to ``endpoint`` and the latency to add."""
        queued = self._scripts.get(endpoint)
        if queued:
            return queued.popleft(), 0.0
        faults = self.faults
        latency = faults.latency
        if faults.latency_jitter:
            latency += self._rng.uniform(0.0, faults.latency_jitter)
        if not (faults.rate_503 or faults.rate_5xx_after or faults.rate_reset or faults.rate_hang):
            return None, latency
        draw = self._rng.random()
        if draw < faults.rate_503:
            return Fault.http(503), latency
        draw -= faults.rate_503
        if draw < faults.rate_5xx_after:
            return Fault.http(self._rng.choice(_AMBIGUOUS_5XX), apply=True), latency
        draw -= faults.rate_5xx_after
        if draw < faults.rate_reset:
            return Fault.reset(), latency
        draw -= faults.rate_reset
        if draw < faults.rate_hang:
            return Fault.hang(faults.hang_seconds), latency
        return None, latency


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
