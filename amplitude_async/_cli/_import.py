"""``amplitude-async import``: send a file of users (JSON lines or CSV) through the client."""

from __future__ import annotations

import csv
import enum
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import IO, TYPE_CHECKING, Annotated, Any, Final

import typer

from ._settings import ApiKeyOption, ServerUrlOption, ServerZoneOption, Zone, identify_target

if TYPE_CHECKING:
    from rich.console import Console

    from ._checkpoint import Checkpoint
    from ._failed_out import FailedOut
    from ._importer import ImportRun
    from ._records import Chunk, Shard
    from ._settings import IdentifyTarget

__all__ = ["register"]

_HELP = """Import users from a file of JSON lines or a CSV file ("-" reads stdin).

JSON lines: one wire identification per line, as in Amplitude's Identify API docs, e.g. {"user_id": "user-1", "user_properties": {"$set": {"plan": "pro"}}}.

CSV: a header row; --user-id-column (and --device-id-column) give the ids, device and location columns (country, platform, ...) become those fields, every other column is $set (values parsed as JSON where they parse, unless --csv-strings). Empty cells set nothing.

Bad lines are reported with their line number and never stop the import. --failed-out keeps every identification that failed for good, with its reason, as JSON lines this command accepts again. --checkpoint lets an interrupted import resume: it only moves past lines whose operations all have an outcome. Ctrl-C (or SIGTERM) stops reading, delivers what is queued, writes the checkpoint and exits non-zero. --shard I/N takes only the users whose id hashes to shard I, so N machines can split one file and keep each user's order.

Exit codes: 0 every line delivered, 1 some lines failed or were bad, 2 bad arguments, 130/143 interrupted (Ctrl-C/SIGTERM).

Example:

  amplitude-async import users.jsonl --failed-out failed.jsonl --checkpoint users.ckpt

  amplitude-async import users.csv --user-id-column id --shard 2/4
"""

_INPUT = "Input"
_RESUME = "Failures and resuming"
EXIT_INTERRUPTED_BASE: Final = 128


class Format(enum.StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    CSV = "csv"


def import_(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help='JSON lines or CSV file; "-" reads stdin.')
    ],
    format: Annotated[
        Format,
        typer.Option(
            case_sensitive=False,
            help="Input format; auto: csv for *.csv, else JSON lines.",
            rich_help_panel=_INPUT,
        ),
    ] = Format.AUTO,
    user_id_column: Annotated[
        str, typer.Option(help="CSV column with the user id.", rich_help_panel=_INPUT)
    ] = "user_id",
    device_id_column: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help='CSV column with the device id (default: "device_id" if present).',
            rich_help_panel=_INPUT,
        ),
    ] = None,
    csv_strings: Annotated[
        bool,
        typer.Option(
            "--csv-strings",
            help="Keep CSV values as strings (no JSON parsing of numbers, true/false).",
            rich_help_panel=_INPUT,
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="I/N",
            show_default=False,
            help="Import only shard I of N (1-based), by a stable hash of user_id, else device_id.",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    failed_out: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            show_default=False,
            help="Write permanently failed identifications here, with their reason.",
            rich_help_panel=_RESUME,
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            show_default=False,
            help="Resume from / record progress in this file.",
            rich_help_panel=_RESUME,
        ),
    ] = None,
    drain_timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="After Ctrl-C, seconds to let queued operations finish.",
            rich_help_panel=_RESUME,
        ),
    ] = 30.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count only; send nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Live progress on stderr (on a terminal).")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    api_key: ApiKeyOption = None,
    server_zone: ServerZoneOption = Zone.US,
    server_url: ServerUrlOption = None,
) -> None:
    from rich.console import Console

    from ._checkpoint import CheckpointError, load_checkpoint
    from ._records import parse_shard

    target = None if dry_run else identify_target(api_key, server_zone, server_url)
    try:
        the_shard = parse_shard(shard) if shard is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    kind = _format_of(file, format)
    source = "-" if file == "-" else os.path.abspath(file)
    previous: Checkpoint | None = None
    if checkpoint is not None:
        try:
            previous = load_checkpoint(checkpoint)
            if previous is not None:
                previous.check_matches(source, kind, str(the_shard) if the_shard else None)
        except CheckpointError as exc:
            raise typer.BadParameter(str(exc), param_hint="--checkpoint") from None
    if failed_out is not None and file != "-" and os.path.abspath(failed_out) == source:
        raise typer.BadParameter("must not be the input file", param_hint="--failed-out")
    err = Console(stderr=True, highlight=False)
    opened, total_bytes = _open(file)
    with opened as stream:
        chunks = _chunks(
            stream, kind, previous, the_shard, user_id_column, device_id_column, csv_strings
        )
        if checkpoint is not None and failed_out is None and not dry_run:
            err.print(
                "note: without --failed-out, lines that fail for good are not marked done "
                "in the checkpoint; a resumed run tries them again"
            )
        if previous is not None and not dry_run:
            later = sum(b - a + 1 for a, b in previous.settled_after)
            err.print(
                f"resuming from {checkpoint}: lines up to {previous.line:,}"
                + (f" and {later:,} later lines" if later else "")
                + (" (the whole file)" if previous.complete else "")
                + " already have an outcome"
            )
        if dry_run:
            code = _dry_run(chunks, err, json_output)
            raise typer.Exit(code)
        assert target is not None
        code = _send(
            chunks,
            target,
            source,
            kind,
            the_shard,
            checkpoint,
            failed_out,
            append=previous is not None,
            drain_timeout=drain_timeout,
            progress=progress,
            total_bytes=total_bytes,
            console=err,
            json_output=json_output,
        )
    if code:
        raise typer.Exit(code)


def _format_of(file: str, chosen: Format) -> str:
    if chosen is not Format.AUTO:
        return chosen.value
    return "csv" if file.lower().endswith(".csv") else "jsonl"


def _open(file: str) -> tuple[AbstractContextManager[IO[bytes]], int | None]:
    if file == "-":
        # Not closed by us: closing stdin would surprise a caller that shares it.
        return nullcontext(sys.stdin.buffer), None
    try:
        stream = open(file, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except OSError as exc:
        raise typer.BadParameter(f"cannot open {file}: {exc.strerror}", param_hint="FILE") from None
    return stream, os.fstat(stream.fileno()).st_size or None


def _chunks(
    stream: Any,
    kind: str,
    previous: Checkpoint | None,
    shard: Shard | None,
    user_id_column: str,
    device_id_column: str | None,
    csv_strings: bool,
) -> Iterator[Chunk]:
    from .._rules import DEFAULT_MIN_ID_LENGTH
    from ._records import CsvColumns, csv_records, jsonl_records

    def never(line: int) -> bool:
        return False

    skip = previous.done if previous is not None else never
    if kind == "jsonl":
        return jsonl_records(stream, skip=skip, shard=shard, min_id_length=DEFAULT_MIN_ID_LENGTH)
    columns = CsvColumns(user_id_column, device_id_column, csv_strings)
    try:
        return csv_records(
            stream, columns, skip=skip, shard=shard, min_id_length=DEFAULT_MIN_ID_LENGTH
        )
    except (ValueError, csv.Error) as exc:  # the header: missing columns, not UTF-8
        raise typer.BadParameter(str(exc), param_hint="FILE") from None


def _dry_run(chunks: Iterator[Chunk], err: Console, json_output: bool) -> int:
    counts: Counter[str] = Counter()
    shown = 0
    for chunk in chunks:
        counts["blank"] += chunk.blank
        counts["already_done"] += chunk.already_done
        counts["other_shard"] += chunk.other_shard
        for record in chunk.records:
            if record.op is not None:
                counts["valid"] += 1
                continue
            counts["rejected" if record.wire is not None else "bad"] += 1
            shown += 1
            if shown <= 20:
                err.print(f"line {record.line}: {record.error}", markup=False, soft_wrap=True)
    rows = [
        ("valid operations", counts["valid"]),
        ("rejected (invalid identification)", counts["rejected"]),
        ("bad lines (not an identification)", counts["bad"]),
        ("blank lines", counts["blank"]),
        ("other shards", counts["other_shard"]),
        ("already done (checkpoint)", counts["already_done"]),
    ]
    data = {key: counts[key] for key in ("valid", "rejected", "bad", "blank")}
    data |= {key: counts[key] for key in ("other_shard", "already_done")}
    _print_summary("dry run: nothing was sent", rows, data, json_output)
    return 1 if counts["rejected"] or counts["bad"] else 0


def _send(
    chunks: Iterator[Chunk],
    target: IdentifyTarget,
    source: str,
    kind: str,
    shard: Shard | None,
    checkpoint: str | None,
    failed_out_path: str | None,
    *,
    append: bool,
    drain_timeout: float,
    progress: bool,
    total_bytes: int | None,
    console: Console,
    json_output: bool,
) -> int:
    import anyio

    from .. import ConfigurationError
    from ._failed_out import FailedOut
    from ._importer import ImportOptions, ImportRun

    options = ImportOptions(
        source, kind, str(shard) if shard else None, checkpoint, drain_timeout, progress
    )
    try:
        failed_out = FailedOut(failed_out_path, append=append)
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="--failed-out") from None
    run = ImportRun(options, target, chunks, failed_out, console, total_bytes)
    try:
        try:
            client = run.client()
        except ConfigurationError as exc:
            raise typer.BadParameter(str(exc), param_hint="--server-url") from None
        anyio.run(run.run, client)
    finally:
        # Also after an unexpected error: the checkpoint only ever counts settled lines.
        saved = run.save_final()
        failed_out.close()
    _report(run, saved, failed_out, json_output)
    if run.interrupted is not None:
        return EXIT_INTERRUPTED_BASE + run.interrupted
    counts = run.counts
    clean = (
        run.stop_reason is None
        and counts["delivered"] == counts["operations"]
        and not (counts["bad"] or counts["rejected"])
    )
    return 0 if clean else 1


def _report(
    run: ImportRun, saved: Checkpoint | None, failed_out: FailedOut, json_output: bool
) -> None:
    counts = run.counts
    stats = run.stats
    failed = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("failed:")}
    settled = counts["delivered"] + sum(failed.values())
    rows: list[tuple[str, object]] = [("delivered", counts["delivered"])]
    rows += [(f"failed: {reason}", n) for reason, n in sorted(failed.items())]
    rows += [
        ("rejected (invalid identification)", counts["rejected"]),
        ("bad lines (not an identification)", counts["bad"]),
        ("not sent (interrupted or key refused)", counts["not_sent"]),
        (
            "of those, maybe applied (in flight at the stop: a resume may duplicate them)",
            counts["maybe_applied"],
        ),
        ("spool lines marked maybe applied (possible duplicates)", counts["spool_maybe_applied"]),
        ("blank lines", counts["blank"]),
        ("other shards", counts["other_shard"]),
        ("already done (checkpoint)", counts["already_done"]),
    ]
    if stats is not None:
        rows += [
            ("requests", stats.requests),
            ("identifications", stats.identifications),
            ("429 answers", stats.throttle_responses),
        ]
    rate = settled / run.elapsed if run.elapsed > 0 else 0.0
    rows += [("ops/s", f"{rate:,.0f}"), ("wall time", f"{run.elapsed:.2f} s")]
    if failed_out.path is not None:
        rows.append(("failed-out lines", f"{failed_out.written:,} -> {failed_out.path}"))
    if saved is not None:
        where = "the whole file" if saved.complete else f"line {saved.line:,}"
        rows.append(("checkpoint", f"settled up to {where} -> {run.options.checkpoint}"))
    data: dict[str, Any] = {
        "delivered": counts["delivered"],
        "failed": failed,
        "rejected": counts["rejected"],
        "bad": counts["bad"],
        "not_sent": counts["not_sent"],
        "maybe_applied": counts["maybe_applied"],
        "spool_maybe_applied": counts["spool_maybe_applied"],
        "blank": counts["blank"],
        "other_shard": counts["other_shard"],
        "already_done": counts["already_done"],
        "operations": counts["operations"],
        "requests": stats.requests if stats else 0,
        "identifications": stats.identifications if stats else 0,
        "throttle_responses": stats.throttle_responses if stats else 0,
        "elapsed": round(run.elapsed, 3),
        "interrupted": run.interrupted is not None,
        "stopped": run.stop_reason,
        "checkpoint": saved.to_json() if saved is not None else None,
    }
    title = "import interrupted" if run.interrupted is not None else "import finished"
    if run.stop_reason is not None:
        title = f"import stopped: {run.stop_reason}"
    _print_summary(title, rows, data, json_output)


def _print_summary(
    title: str, rows: Sequence[tuple[str, object]], data: dict[str, Any], json_output: bool
) -> None:
    if json_output:
        import json

        sys.stdout.write(json.dumps(data) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in rows:
        if value == 0 and label not in ("delivered", "valid operations"):
            continue  # only what happened
        table.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    app.command(name="import", help=_HELP, no_args_is_help=True)(import_)
