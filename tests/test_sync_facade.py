"""amplitude_async.sync.Client: a blocking facade, from plain threads, forked children and
at interpreter exit, against the emulator on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from amplitude_async import (
    ClientClosed,
    ClientConfig,
    ConfigurationError,
    Delivered,
    Identify,
    ValidationError,
)
from amplitude_async.emulator import EmulatorThread
from amplitude_async.sync import Client

KEY = "sync-facade-api-key"
pytestmark = pytest.mark.amplitude_emulator(api_keys=[KEY], eps_threshold=None)
CONFIG = ClientConfig(flush_interval=0.01, retry_base=0.01, retry_cap=0.05, shutdown_timeout=5)


def test_identify_from_a_plain_thread_then_flush_and_close(
    amplitude_emulator: EmulatorThread,
) -> None:
    amp = Client(KEY, server_url=amplitude_emulator.identify_url, config=CONFIG)
    assert repr(amp) == "sync.Client(state='not started')"  # no thread until first use
    assert KEY not in repr(vars(amp))  # no attribute's repr shows the key
    futures = []

    def produce() -> None:
        for n in range(10):
            futures.append(amp.identify(Identify(user_id=f"user-{n:04d}").set("n", n)))

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(10)
    assert len(futures) == 10
    amp.flush(timeout=10)
    # flush() returned: every operation queued before it has its outcome already.
    assert all(f.done() and isinstance(f.result(0), Delivered) for f in futures)
    assert amplitude_emulator.users() == {f"user-{n:04d}": {"n": n} for n in range(10)}
    assert amp.stats().delivered == 10
    (runner_thread,) = [t for t in threading.enumerate() if t.name == "amplitude-async sync"]
    assert amp.close(timeout=10) == []
    assert not runner_thread.is_alive() and amp.closed
    with pytest.raises(ClientClosed):
        amp.identify(Identify(user_id="user-late").set("n", 1))
    assert amp.close() == []  # twice is harmless


def test_with_block_closes_and_delivers(amplitude_emulator: EmulatorThread) -> None:
    with Client(KEY, server_url=amplitude_emulator.identify_url, config=CONFIG) as amp:
        future = amp.identify(Identify(user_id="user-with").set("plan", "pro"))
    assert amp.closed and isinstance(future.result(0), Delivered)
    assert amplitude_emulator.user("user-with") == {"plan": "pro"}


def test_bad_input_raises_in_the_callers_thread(amplitude_emulator: EmulatorThread) -> None:
    with pytest.raises(ConfigurationError):
        Client("", server_url=amplitude_emulator.identify_url)
    with pytest.raises(ConfigurationError, match="start_timeout"):
        Client(KEY, start_timeout=0)
    with Client(KEY, server_url=amplitude_emulator.identify_url, config=CONFIG) as amp:
        with pytest.raises(ValidationError):
            amp.identify("user-1")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            amp.identify(Identify(user_id="null").set("a", 1))


def test_flush_times_out_without_losing_anything(amplitude_emulator: EmulatorThread) -> None:
    with Client(KEY, server_url=amplitude_emulator.identify_url, config=CONFIG) as amp:
        amplitude_emulator.pause()
        future = amp.identify(Identify(user_id="user-paused").set("a", 1))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            amp.flush(timeout=0.2)
        assert time.monotonic() - started < 5
        assert not future.done()
        amplitude_emulator.resume()
        amp.flush(timeout=10)
        assert isinstance(future.result(0), Delivered)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_fresh_client(amplitude_emulator: EmulatorThread) -> None:
    amp = Client(KEY, server_url=amplitude_emulator.identify_url, config=CONFIG)
    amp.identify(Identify(user_id="user-parent-1").set("who", "parent")).result(10)
    parent_thread = amp._runner.thread if amp._runner else None
    assert parent_thread is not None and parent_thread.is_alive()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        signal.alarm(30)  # a child that hangs dies instead of outliving the test
        try:
            fresh = amp._runner is None  # the parent's thread was forgotten
            outcome = amp.identify(Identify(user_id="user-child-1").set("who", "child")).result(10)
            stats = amp.stats()
            own_thread = amp._runner is not None and amp._runner.thread is not parent_thread
            undelivered = amp.close(timeout=10)
            report = (
                f"{fresh} {isinstance(outcome, Delivered)} {stats.enqueued} {own_thread} "
                f"{len(undelivered)}"
            )
            os.write(write, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    report = os.read(read, 1000).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    # Fresh (no parent thread), delivered, its own counters (the parent's one op is not
    # there), its own thread, nothing left over.
    assert report == "True True 1 True 0"
    assert amplitude_emulator.user("user-child-1") == {"who": "child"}
    # The parent's client was not disturbed by the fork.
    amp.identify(Identify(user_id="user-parent-2").set("who", "parent")).result(10)
    assert amp.stats().enqueued == 2
    amp.close(timeout=10)


def test_a_script_that_exits_without_closing_loses_nothing(
    amplitude_emulator: EmulatorThread,
) -> None:
    # "localhost", not 127.0.0.1: the name must be resolved at exit, in a worker thread.
    url = amplitude_emulator.identify_url.replace("127.0.0.1", "localhost")
    script = f"""
from amplitude_async import ClientConfig, Identify
from amplitude_async.sync import Client
amp = Client({KEY!r}, server_url={url!r}, config=ClientConfig(flush_interval=60))
for n in range(5):
    amp.identify(Identify(user_id=f"user-exit-{{n}}").set("n", n))
print("queued")
"""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "queued"
    # flush_interval=60: nothing was sent before the exit; the exit hook delivered it all.
    assert amplitude_emulator.users() == {f"user-exit-{n}": {"n": n} for n in range(5)}
