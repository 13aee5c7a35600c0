"""An async worker that keeps user properties in sync from a stream of updates.

Shape of a real consumer (Kafka, SQS, Redis streams): a *puller* fetches batches from the
source and puts each update on a bounded anyio memory stream; a *consumer* turns updates
into identify operations. Memory stays bounded end to end:

    source --fetch--> puller --stream (buffer)--> consumer --identify()--> client queue
                         ^ waits when the stream is full   ^ waits when the client is full

so a slow or throttled Amplitude slows the fetching down instead of filling memory.

Shutdown on SIGTERM (or Ctrl-C) loses nothing: the puller stops fetching after the
batch in hand, the consumer drains the stream, and closing the client delivers what is
queued within ``shutdown_timeout``; whatever it could not deliver is appended to the
spool file as JSON lines (``amplitude-async import`` sends it later). In a real
consumer, commit the source's offsets only after that.

Run it against the local emulator::

    amplitude-async emulator --port 8787 --api-key dev-key &
    AMPLITUDE_API_KEY=dev-key AMPLITUDE_SERVER_URL=http://127.0.0.1:8787/identify \\
    python examples/worker.py

It prints one JSON report line when it stops.
"""

import json
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from amplitude_async import AmplitudeClient, ClientConfig, Identify


@dataclass(frozen=True)
class Update:
    """One message of the source: something a user did."""

    user_id: str
    event: str  # "login" | "purchase"
    amount: int = 0


def to_identify(update: Update) -> Identify:
    op = Identify(user_id=update.user_id)
    if update.event == "purchase":
        return op.add("purchases", 1).add("revenue_cents", update.amount)
    return op.add("logins", 1)


Fetch = Callable[[], Awaitable[list[Update]]]


@dataclass
class Report:
    #: Updates taken from the source; every one is delivered, failed or spooled.
    taken: int = 0
    consumed: int = 0
    delivered: int = 0
    failed: int = 0
    spooled: int = 0


class Pipeline:
    """The puller and the consumer, joined by a bounded memory stream."""

    def __init__(self, amp: AmplitudeClient, fetch: Fetch, *, buffer: int = 1000) -> None:
        self.amp = amp
        self.report = Report()
        self._fetch = fetch
        self.send: MemoryObjectSendStream[Update]
        self.receive: MemoryObjectReceiveStream[Update]
        self.send, self.receive = anyio.create_memory_object_stream[Update](buffer)

    async def run(self, stop: anyio.Event) -> Report:
        """Pull and consume until ``stop`` is set, then drain the stream and return."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._consume)
            await self._pull(stop)
        return self.report

    async def _pull(self, stop: anyio.Event) -> None:
        async with self.send:  # closing it ends the consumer once the stream is empty
            while not stop.is_set():
                # A real source's poll returns after its own timeout when idle, so the
                # stop flag is seen soon; a batch in hand is always put on the stream
                # whole, never dropped half-way.
                for update in await self._fetch():
                    self.report.taken += 1
                    await self.send.send(update)  # waits while the consumer is behind

    async def _consume(self) -> None:
        async with self.receive:
            async for update in self.receive:
                # Waits while the client's queue is full: the backpressure reaches _pull.
                await self.amp.identify(to_identify(update))
                self.report.consumed += 1


def simulated_source(users: int = 200, batch: int = 50, interval: float = 0.01) -> Fetch:
    """Stands in for a message queue: a batch of updates every ``interval`` seconds."""
    rng = random.Random(1)

    async def fetch() -> list[Update]:
        await anyio.sleep(interval)
        return [
            Update(f"user-{rng.randrange(users):06d}", "purchase", rng.randint(100, 9000))
            if rng.random() < 0.2
            else Update(f"user-{rng.randrange(users):06d}", "login")
            for _ in range(batch)
        ]

    return fetch


async def stop_on_signals(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            stop.set()
            return


async def main() -> Report:
    # Settings are read here, at the edge, and nowhere deeper.
    api_key = os.environ["AMPLITUDE_API_KEY"]
    server_url = os.environ.get("AMPLITUDE_SERVER_URL")
    config = ClientConfig(
        queue_max=5_000,  # operations without an outcome yet, at most
        shutdown_timeout=10.0,
        spool_path=os.environ.get("WORKER_SPOOL", "undelivered.jsonl"),
    )
    stop = anyio.Event()
    async with AmplitudeClient(api_key, server_url=server_url, config=config) as amp:
        pipeline = Pipeline(amp, simulated_source())
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signals, stop)
            print("worker running; SIGTERM or Ctrl-C stops it", file=sys.stderr, flush=True)
            report = await pipeline.run(stop)
            tg.cancel_scope.cancel()
        report.spooled = len(await amp.aclose())
        stats = amp.stats()
    report.delivered = stats.delivered
    report.failed = stats.failed_total - report.spooled
    return report


if __name__ == "__main__":
    final = anyio.run(main)
    print(json.dumps(asdict(final)), flush=True)
