"""The close sequence on its own (``_shutdown.Closer``, docs/architecture.md): built on
the stages with a stand-in for the facade's host task, no AmplitudeClient."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from amplitude_async import ClientConfig, Delivered, Failed, FailureReason, Identify
from amplitude_async._clock import SystemClock
from amplitude_async._pipeline import Pipeline
from amplitude_async._shutdown import Closer
from amplitude_async._state import State, StateMachine
from amplitude_async.testing import HttpRequest, HttpResponse, MockTransport, response

from .conftest import fast_config

KEY = "closer-key-0123456789"
URL = "http://127.0.0.1:9/identify"


class _Rig:
    """The stages, the state machine and the closer of one client, opened."""

    def __init__(self, transport: MockTransport, cfg: ClientConfig) -> None:
        self.transport = transport
        self.states = StateMachine(lambda state: None)
        self.stages = Pipeline(
            KEY, URL, cfg, SystemClock(), transport, on_auth_failed=lambda status: None
        )
        self.closer = Closer(self.stages, cfg, SystemClock(), self.states)

    async def open(self) -> None:
        intake = self.stages.intake
        intake.loop = asyncio.get_running_loop()
        intake.loop_thread = threading.get_ident()
        self.closer.host = asyncio.get_running_loop().create_task(self._host())
        await asyncio.sleep(0)
        self.states.enter(State.OPEN)

    async def _host(self) -> None:
        # What the facade's host task does: run the sender until the closer says stop.
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.stages.sender.run, tg)
            await self.closer.stop.wait()
            tg.cancel_scope.cancel()

    def queue(self, count: int) -> list[Identify]:
        ops = [Identify(user_id=f"user-{i:05d}").set("a", i) for i in range(count)]
        for op in ops:
            self.stages.intake.submit_nowait(op)
        return ops


class _SlowToClose(MockTransport):
    """Closing takes a while, as an aiohttp session's does: a cancel can land in it."""

    async def aclose(self) -> None:
        await asyncio.sleep(0.02)
        await super().aclose()


async def _never(request: HttpRequest) -> HttpResponse:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_closing_drains_what_can_be_delivered_then_closes() -> None:
    rig = _Rig(MockTransport(lambda request: response(200)), fast_config())
    await rig.open()
    ops = rig.queue(3)
    assert await rig.closer.close(drain=True) == []
    assert all(isinstance(op.outcome, Delivered) for op in ops)
    assert rig.states.state is State.CLOSED and rig.transport.closed


async def test_closing_without_the_drain_fails_the_rest_and_hands_it_over() -> None:
    handed: list[list[Identify]] = []
    rig = _Rig(
        MockTransport(lambda request: response(200)), fast_config(on_undelivered=handed.append)
    )
    await rig.open()
    ops = rig.queue(3)
    undelivered = await rig.closer.close(drain=False)
    assert undelivered == ops and handed == [ops]
    assert all(
        isinstance(op.outcome, Failed) and op.outcome.reason is FailureReason.SHUTDOWN for op in ops
    )
    assert rig.states.state is State.CLOSED and rig.transport.closed


async def test_a_closer_cancelled_again_and_again_still_resolves_everything() -> None:
    rig = _Rig(_SlowToClose(_never), fast_config(shutdown_timeout=5.0))
    await rig.open()
    ops = rig.queue(5)
    await asyncio.sleep(0.05)  # the first request is in flight and never answered
    closing = asyncio.get_running_loop().create_task(rig.closer.close(drain=True))
    await asyncio.sleep(0.01)
    while not closing.done():  # a supervisor cancelling on every turn
        closing.cancel()
        await asyncio.sleep(0.001)
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert all(
        isinstance(op.outcome, Failed) and op.outcome.reason is FailureReason.SHUTDOWN for op in ops
    )
    assert rig.states.state is State.CLOSED and rig.transport.closed


async def test_the_orphaned_close_warns_fails_and_spools(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    rig = _Rig(MockTransport(_never), fast_config(spool_path=str(spool)))
    await rig.open()
    ops = rig.queue(2)
    with pytest.warns(ResourceWarning, match="the-client was not closed before its event loop"):
        await rig.closer.orphan("the-client")
    assert rig.states.orphaned and rig.states.state is State.CLOSED and rig.transport.closed
    assert all(isinstance(op.outcome, Failed) for op in ops)
    lines: list[dict[str, Any]] = [
        msgspec.json.decode(line) for line in spool.read_bytes().splitlines()
    ]
    assert [line["user_id"] for line in lines] == ["user-00000", "user-00001"]
    rig.closer.stop.set()  # let the stand-in host task end
    assert rig.closer.host is not None
    await rig.closer.host


async def test_closing_an_unopened_or_closed_client_does_nothing() -> None:
    rig = _Rig(MockTransport(lambda request: response(200)), fast_config())
    assert await rig.closer.close(drain=True) == []
    assert rig.states.state is State.UNOPENED and not rig.transport.closed
    await rig.open()
    await rig.closer.close(drain=True)
    assert await rig.closer.close(drain=True) == []
    assert rig.states.state is State.CLOSED
