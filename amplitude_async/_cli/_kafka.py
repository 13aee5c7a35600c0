"""``amplitude-async kafka-worker``: one member of a consumer group feeding Amplitude.

Imports only typer and the standard library at import time; aiokafka (the ``kafka``
extra), the SDK and rich are imported inside the command.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._settings import ApiKeyOption, ServerUrlOption, ServerZoneOption, Zone, identify_target

if TYPE_CHECKING:
    from rich.console import Console

    from ..kafka import KafkaIdentifyWorker, WorkerStats
    from ._progress import Sample

__all__ = ["register"]

_HELP = """Consume a Kafka topic of identify operations in a consumer group and send them to Amplitude.

Messages are keyed by user_id (else device_id); each value is one identification as a JSON line of `import` (amplitude_async.kafka.IdentifyProducer writes them). Run one worker per machine with the same --group: Kafka gives each partition to one worker at a time, so every user's operations stay in order. Offsets are committed per partition only up to the first operation without an outcome (at-least-once). Operations that fail for good go to --dead-letter-topic with the reason in headers, else they are logged; either way they are committed past.

SIGTERM or Ctrl-C stops reading, delivers what is queued (at most --drain-timeout seconds; a second signal stops waiting), commits, leaves the group and exits 0. Exit codes: 0 stopped by a signal, 1 the worker stopped on its own (key refused, a revoke that could not drain, the dead-letter topic not writable), 2 bad arguments.

Example:

  amplitude-async kafka-worker --bootstrap-servers 127.0.0.1:9092 --topic identify --group amplitude --dead-letter-topic identify-dead
"""

_KAFKA = "Kafka"


def kafka_worker(
    bootstrap_servers: Annotated[
        str,
        typer.Option(
            metavar="HOST:PORT[,HOST:PORT...]", help="Kafka brokers.", rich_help_panel=_KAFKA
        ),
    ],
    topic: Annotated[
        str, typer.Option(help="Topic of identify operations.", rich_help_panel=_KAFKA)
    ],
    group: Annotated[
        str, typer.Option(help="Consumer group shared by all workers.", rich_help_panel=_KAFKA)
    ],
    dead_letter_topic: Annotated[
        str | None,
        typer.Option(
            metavar="TOPIC",
            show_default=False,
            help="Where operations that failed for good go (original key and value).",
            rich_help_panel=_KAFKA,
        ),
    ] = None,
    drain_timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds to let queued operations finish on a revoke or a signal.",
            rich_help_panel=_KAFKA,
        ),
    ] = 30.0,
    rebalance_timeout: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="The group's rebalance timeout; must exceed --drain-timeout by 2 s.",
            rich_help_panel=_KAFKA,
        ),
    ] = 60.0,
    max_unsettled: Annotated[
        int,
        typer.Option(
            min=1,
            help="Pause a partition with this many operations without an outcome.",
            rich_help_panel=_KAFKA,
        ),
    ] = 1000,
    progress: Annotated[bool, typer.Option(help="Live status on stderr (on a terminal).")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    api_key: ApiKeyOption = None,
    server_zone: ServerZoneOption = Zone.US,
    server_url: ServerUrlOption = None,
) -> None:
    target = identify_target(api_key, server_zone, server_url)
    try:
        import aiokafka  # noqa: F401
    except ModuleNotFoundError:
        raise typer.BadParameter(
            "kafka-worker needs aiokafka: install the extra 'amplitude-async[kafka]'",
            param_hint="--bootstrap-servers",
        ) from None
    import anyio
    from rich.console import Console

    from .. import AmplitudeClient, ClientConfig, ConfigurationError
    from ..kafka import KafkaIdentifyWorker

    err = Console(stderr=True, highlight=False)
    try:
        # The worker drains with its own deadline; closing then fails the rest at once,
        # and they stay uncommitted for the partitions' next owner.
        client = AmplitudeClient(
            target.api_key,
            server_zone=target.server_zone,
            server_url=target.server_url,
            config=ClientConfig(shutdown_timeout=0.0),
        )
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server-url") from None
    try:
        worker = KafkaIdentifyWorker(
            client,
            bootstrap_servers=bootstrap_servers.split(","),
            topic=topic,
            group_id=group,
            dead_letter_topic=dead_letter_topic,
            drain_timeout=drain_timeout,
            rebalance_timeout=rebalance_timeout,
            max_unsettled=max_unsettled,
        )
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc)) from None
    err.print(
        f"kafka-worker: group {group!r}, topic {topic!r} on {bootstrap_servers} -> "
        f"{target.describe()}"
    )
    started = time.monotonic()
    stats, stopped = anyio.run(_run, worker, err, progress, drain_timeout)
    if stopped is not None:
        err.print(f"error: {stopped}", markup=False, style="red")
    _report(stats, time.monotonic() - started, stopped, json_output)
    if stopped is not None:
        raise typer.Exit(1)


async def _run(
    worker: KafkaIdentifyWorker, console: Console, progress: bool, drain_timeout: float
) -> tuple[WorkerStats, str | None]:
    """Run the worker with a live status line; its counters, and why it stopped on its own."""
    import anyio
    from aiokafka.errors import KafkaError

    from ..kafka import KafkaWorkerError
    from ._progress import LiveProgress

    live = LiveProgress(console, "kafka-worker", lambda: _sample(worker), enabled=progress)
    stopped: str | None = None
    with live:
        async with anyio.create_task_group() as tg:
            tg.start_soon(live.run)
            tg.start_soon(_watch_signals, worker, console, drain_timeout)
            try:
                await worker.run()
            except KafkaWorkerError as exc:
                stopped = str(exc)
            except KafkaError as exc:  # the brokers: unreachable, refused, gone
                stopped = f"Kafka: {exc}"
            finally:
                tg.cancel_scope.cancel()
    return worker.stats(), stopped


async def _watch_signals(
    worker: KafkaIdentifyWorker, console: Console, drain_timeout: float
) -> None:
    """Say what a signal does, then do it: the first drains, the second stops waiting."""
    import signal

    import anyio

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        first = True
        async for signum in signals:
            name = signal.Signals(signum).name
            if first:
                console.print(
                    f"[yellow]{name}[/yellow]: no more messages are read; delivering what is "
                    f"queued (at most {drain_timeout:g} s; again to stop now), then committing "
                    "and leaving the group"
                )
            else:
                console.print(f"[yellow]{name}[/yellow]: not waiting any longer")
            first = False
            worker.stop()


def _sample(worker: KafkaIdentifyWorker) -> Sample:
    from ._progress import Sample

    stats = worker.stats()
    client = stats.client
    return Sample(
        delivered=stats.delivered,
        failed=sum(stats.failed.values()),
        retried=client.retried if client else 0,
        held=client.throttled_identities if client else 0,
        throttled=client.throttle_responses if client else 0,
        queued=stats.unsettled,
    )


def _report(stats: WorkerStats, elapsed: float, stopped: str | None, json_output: bool) -> None:
    from ._import import _print_summary

    client = stats.client
    rows: list[tuple[str, object]] = [
        ("consumed", stats.consumed),
        ("delivered", stats.delivered),
    ]
    rows += [(f"failed: {reason}", n) for reason, n in sorted(stats.failed.items())]
    rows += [
        ("dead-lettered", stats.dead_lettered),
        ("unreadable messages", stats.unreadable),
        ("not sent (left uncommitted)", stats.not_sent),
        ("commits", stats.commits),
        ("assignments", stats.rebalances),
        ("pauses", stats.pauses),
    ]
    if client is not None:
        rows += [("requests", client.requests), ("429 answers", client.throttle_responses)]
    settled = stats.delivered + sum(stats.failed.values())
    rows += [
        ("ops/s", f"{settled / elapsed if elapsed > 0 else 0.0:,.0f}"),
        ("wall time", f"{elapsed:.2f} s"),
    ]
    data: dict[str, Any] = {
        "consumed": stats.consumed,
        "delivered": stats.delivered,
        "failed": stats.failed,
        "dead_lettered": stats.dead_lettered,
        "unreadable": stats.unreadable,
        "not_sent": stats.not_sent,
        "commits": stats.commits,
        "rebalances": stats.rebalances,
        "pauses": stats.pauses,
        "requests": client.requests if client else 0,
        "throttle_responses": client.throttle_responses if client else 0,
        "elapsed": round(elapsed, 3),
        "stopped": stopped,
    }
    title = "kafka-worker stopped" if stopped is None else f"kafka-worker failed: {stopped}"
    _print_summary(title, rows, data, json_output)


def register(app: typer.Typer) -> None:
    app.command(name="kafka-worker", help=_HELP)(kafka_worker)
