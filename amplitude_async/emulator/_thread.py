"""``EmulatorThread``: an :class:`Emulator` on its own event loop in a background thread.

For sync tests, and for async tests that must not share their loop with the server
(a test that blocks its loop would otherwise stall the emulator too). Every method runs
on the emulator's loop and waits for the result, so it is safe from any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ._faults import Fault, Faults
from ._profile import Compute, Predicate
from ._server import Emulator
from ._state import AppliedIdentification, EmulatorStats

__all__ = ["EmulatorThread"]

T = TypeVar("T")
_CALL_TIMEOUT = 30.0


class EmulatorThread:
    """Run ``Emulator(**kwargs)`` in a thread: ``with EmulatorThread(...) as emu:``.

    Also usable from async code (``async with``); starting and stopping block only for
    the few milliseconds a bind or shutdown takes.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._emulator: Emulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> EmulatorThread:
        if self._thread is not None:
            raise RuntimeError("this EmulatorThread is already started")
        # Built here, not in the thread, so bad arguments raise in the caller.
        emulator = Emulator(**self._kwargs)
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(emulator.start())
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller, re-raised there
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(emulator.close())
                loop.close()

        thread = threading.Thread(target=run, name="amplitude-emulator", daemon=True)
        thread.start()
        started.result()
        self._emulator, self._loop, self._thread = emulator, loop, thread
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> EmulatorThread:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def emulator(self) -> Emulator:
        """The emulator itself; only touch it through this thread's methods."""
        if self._emulator is None:
            raise RuntimeError("this EmulatorThread is not started")
        return self._emulator

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the emulator's loop and return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("this EmulatorThread is not running")
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - handed to the calling thread, re-raised there
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(_CALL_TIMEOUT)

    # -- urls (fixed once started) -----------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    @property
    def identify_url(self) -> str:
        return self.emulator.identify_url

    @property
    def httpapi_url(self) -> str:
        return self.emulator.httpapi_url

    @property
    def batch_url(self) -> str:
        return self.emulator.batch_url

    @property
    def groupidentify_url(self) -> str:
        return self.emulator.groupidentify_url

    @property
    def profile_url(self) -> str:
        return self.emulator.profile_url

    @property
    def control_url(self) -> str:
        return self.emulator.control_url

    # -- the Emulator API, thread-safe ----------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self.call(self.emulator.user, user_id)

    def device(self, device_id: str) -> dict[str, Any] | None:
        return self.call(self.emulator.device, device_id)

    def users(self) -> dict[str, dict[str, Any]]:
        return self.call(self.emulator.users)

    def group(self, group_type: str, group_name: str) -> dict[str, Any] | None:
        return self.call(self.emulator.group, group_type, group_name)

    def record(
        self, user_id: str | None = None, device_id: str | None = None
    ) -> dict[str, Any] | None:
        return self.call(self.emulator.record, user_id, device_id)

    @property
    def applied(self) -> list[AppliedIdentification]:
        """A copy of the applied log."""
        return self.call(lambda: list(self.emulator.applied))

    def stats(self) -> EmulatorStats:
        return self.call(self.emulator.stats)

    def reset(self) -> None:
        self.call(self.emulator.reset)

    def throttle(self, users: Iterable[str] = (), devices: Iterable[str] = ()) -> None:
        self.call(self.emulator.throttle, list(users), list(devices))

    def unthrottle(
        self, users: Iterable[str] | None = None, devices: Iterable[str] | None = None
    ) -> None:
        self.call(
            self.emulator.unthrottle,
            None if users is None else list(users),
            None if devices is None else list(devices),
        )

    def silence(self, devices: Iterable[str]) -> None:
        self.call(self.emulator.silence, list(devices))

    def unsilence(self, devices: Iterable[str] | None = None) -> None:
        self.call(self.emulator.unsilence, None if devices is None else list(devices))

    def script(self, *faults: Fault, endpoint: str = "identify") -> None:
        self.call(self.emulator.script, *faults, endpoint=endpoint)

    def set_faults(self, faults: Faults | None) -> None:
        self.call(self.emulator.set_faults, faults)

    def pause(self) -> None:
        self.call(self.emulator.pause)

    def resume(self) -> None:
        self.call(self.emulator.resume)

    def set_eps_threshold(self, eps_threshold: int | None, *, endpoint: str | None = None) -> None:
        self.call(self.emulator.set_eps_threshold, eps_threshold, endpoint=endpoint)

    def define_cohort(self, cohort_id: str, where: Mapping[str, Any] | Predicate) -> None:
        self.call(self.emulator.define_cohort, cohort_id, where)

    def define_recommendation(
        self,
        rec_id: str,
        items: Sequence[str],
        *,
        title: str = "",
        is_control: bool = False,
        source: str = "model",
    ) -> None:
        self.call(
            self.emulator.define_recommendation,
            rec_id,
            items,
            title=title,
            is_control=is_control,
            source=source,
        )

    def define_computation(
        self,
        comp_id: str,
        compute: Compute | None = None,
        *,
        property: str | None = None,
        default: Any = None,
    ) -> None:
        self.call(
            self.emulator.define_computation, comp_id, compute, property=property, default=default
        )

    def define_prediction(
        self, prediction_id: str, score: Callable[[Mapping[str, Any]], float] | None = None
    ) -> None:
        self.call(self.emulator.define_prediction, prediction_id, score)

    def __repr__(self) -> str:
        if self._emulator is None or self._thread is None:
            return "EmulatorThread(stopped)"
        return f"EmulatorThread({self._emulator.base_url})"
