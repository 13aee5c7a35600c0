"""Issue 13, item 6: a client used from another event loop, or after its loop ended
without ``aclose()``, raises a clear error at once (as aiohttp and httpx do) instead of
hanging; a loop that ends with the client still open gives a ResourceWarning and still
resolves every receipt."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator

import pytest

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Failed, FailureReason, Identify
from amplitude_async.emulator import EmulatorThread

from ..conftest import fast_config

KEY = "hostile-key-000666"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    thread = EmulatorThread()
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def test_a_client_used_from_another_loop_raises_at_once(emu: EmulatorThread) -> None:
    """The client lives on a loop in a thread of its own; the test's loop must not use it."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config())
    try:
        asyncio.run_coroutine_threadsafe(amp.__aenter__(), loop).result(5)

        async def misuse() -> list[str]:
            errors = []
            with pytest.raises(aa.ClientStateError, match="event loop") as info:
                await asyncio.wait_for(amp.identify(Identify(user_id="user-00001")), 2)
            errors.append(str(info.value))
            with pytest.raises(aa.ClientStateError, match="event loop") as info:
                amp.identify_nowait(Identify(user_id="user-00002"))
            errors.append(str(info.value))
            with pytest.raises(aa.ClientStateError, match="event loop"):
                await asyncio.wait_for(amp.flush(), 2)
            with pytest.raises(aa.ClientStateError, match="event loop"):
                await asyncio.wait_for(amp.aclose(), 2)
            return errors

        errors = asyncio.run(misuse())
        assert "identify_threadsafe" in errors[0]
        # From a plain thread with no loop at all: the same clear error.
        with pytest.raises(aa.ClientStateError, match="event loop"):
            amp.identify_nowait(Identify(user_id="user-00003"))
        # The client itself is unharmed and closes normally on its own loop.
        assert asyncio.run_coroutine_threadsafe(amp.aclose(), loop).result(10) == []
        assert amp.closed and amp.stats().enqueued == 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def test_a_client_outliving_its_loop_warns_resolves_and_then_refuses(
    emu: EmulatorThread,
) -> None:
    # A server that never answers in time: operations are queued and in flight when
    # the loop ends.
    emu.pause()
    try:
        cfg = fast_config(request_timeout=30)

        async def open_and_leave() -> tuple[AmplitudeClient, list[aa.Receipt]]:
            amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg)
            await amp.__aenter__()
            receipts = [
                await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", i)) for i in range(50)
            ]
            await asyncio.sleep(0.1)  # let requests go out
            return amp, receipts  # no aclose(): asyncio.run closes the loop

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            amp, receipts = asyncio.run(open_and_leave())
        resource = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert any("aclose" in str(w.message) for w in resource), [str(w.message) for w in caught]
        assert all(
            isinstance(r.outcome, Failed) and r.outcome.reason is FailureReason.SHUTDOWN
            for r in receipts
        )
        assert amp.closed

        async def use_again() -> None:
            with pytest.raises(aa.ClientStateError, match="event loop"):
                await asyncio.wait_for(amp.identify(Identify(user_id="user-09999")), 2)
            await asyncio.wait_for(amp.aclose(), 2)  # harmless

        asyncio.run(use_again())
    finally:
        emu.resume()
