"""The official amplitude-analytics SDK against the emulator (issue 14, acceptance).

A test suite that passes against the emulator must not fail against Amplitude for
reasons of the emulator's making. These run the real SDK (threads, urllib) against an
:class:`EmulatorThread` and check what its users would see.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from emulator_helpers import KEY

from amplitude_async.emulator import EmulatorThread

amplitude = pytest.importorskip("amplitude")


class _Seen(logging.Handler):
    """Records the SDK's log lines; ``event`` is set when ``wanted`` is logged."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.event = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if message == self.wanted:
            self.event.set()


class _Codes:
    """Collects the SDK's per-event callback codes; ``wait(n)`` for n of them."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self._cond = threading.Condition()

    def __call__(self, event: Any, code: int, message: str | None = None) -> None:
        with self._cond:
            self.codes.append(code)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.codes) >= count, timeout)


def test_a_wrong_key_raises_the_sdks_invalid_key_error_at_once() -> None:
    # Amplitude-Python worker.send logs "Invalid API Key" only when process_response
    # raised InvalidAPIKeyError, which it does for an error starting "Invalid API key:".
    # Before the fix the SDK took the body for a per-event 400 and retried it.
    seen = _Seen("Invalid API Key")
    logger = logging.getLogger("amplitude-fidelity-test")
    logger.addHandler(seen)
    try:
        with EmulatorThread(api_keys=[KEY]) as emu:
            config = amplitude.Config(server_url=emu.httpapi_url, flush_queue_size=1, logger=logger)
            client = amplitude.Amplitude("not-the-key", configuration=config)
            started = time.monotonic()
            client.track(amplitude.BaseEvent(event_type="Played", user_id="sdk-user-1"))
            client.flush()
            assert seen.event.wait(5), seen.messages
            elapsed = time.monotonic() - started
            client.shutdown()
            assert elapsed < 3.0
            assert emu.stats().by_endpoint == {"httpapi": 1}  # no retries
            assert emu.users() == {}
    finally:
        logger.removeHandler(seen)


def test_track_event_user_properties_update_the_user() -> None:
    # HTTP V2 API docs: user_properties on an event update the user.
    codes = _Codes()
    with EmulatorThread(api_keys=[KEY]) as emu:
        config = amplitude.Config(server_url=emu.httpapi_url, flush_queue_size=1, callback=codes)
        client = amplitude.Amplitude(KEY, configuration=config)
        event = amplitude.BaseEvent(
            event_type="Upgraded", user_id="sdk-user-2", user_properties={"plan": "pro"}
        )
        client.track(event)
        client.flush()
        assert codes.wait(1, 10)
        client.shutdown()
        assert codes.codes == [200]
        assert emu.user("sdk-user-2") == {"plan": "pro"}


def test_50_events_of_one_user_on_the_batch_api_are_not_throttled() -> None:
    # Batch Event Upload API docs: 1,000 events per second per user. Before the fix the
    # emulator applied the HTTP V2 limit (30) and the SDK held the events for 30 s.
    codes = _Codes()
    with EmulatorThread(api_keys=[KEY]) as emu:
        config = amplitude.Config(
            server_url=emu.batch_url, use_batch=True, flush_queue_size=50, callback=codes
        )
        client = amplitude.Amplitude(KEY, configuration=config)
        for i in range(50):
            identify = amplitude.Identify().add("plays", 1)
            client.identify(identify, amplitude.EventOptions(user_id="sdk-user-3", event_id=i))
        client.flush()
        assert codes.wait(50, 10), codes.codes
        client.shutdown()
        assert codes.codes == [200] * 50
        assert 429 not in emu.stats().by_status
        assert emu.user("sdk-user-3") == {"plays": 50}
