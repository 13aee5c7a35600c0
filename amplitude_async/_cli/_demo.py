"""``amplitude-async demo``: the whole pipeline on one machine, checked end to end.

Starts the emulator in-process on a free loopback port, sends a generated workload
through :class:`AmplitudeClient` with live progress, checks every user's properties
against the reference semantics, reads a few users back through :class:`ProfileClient`,
and prints a summary. Exit 0 only if every operation got an outcome and every user's
state matches.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Final

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from .. import AmplitudeClient, ClientStats, UserProfile
    from ..emulator import Emulator, EmulatorStats
    from ._workload import Workload

__all__ = ["DemoOptions", "DemoResult", "register", "run_demo"]

_HELP = """Run a realistic workload through the SDK into a local Amplitude emulator, and check it.

Starts the emulator on a free 127.0.0.1 port, sends signups ($setOnce), plan changes ($set), counters ($add), tags and feature lists ($postInsert, $append) for thousands of users (a few of them so busy that the emulator throttles them with 429s in every run: each starts with an offline sync of more list updates than the emulator's per-second limit), shows live progress, verifies every user's properties, reads some users back through the User Profile API (properties, cohorts, recommendations) and prints a summary. No account, no network.

Exit codes: 0 every operation delivered and every user's state as expected, 1 otherwise.

Example:

  amplitude-async demo

  amplitude-async demo --users 500 --ops 5000 --json
"""

API_KEY: Final = "demo-api-key"
SECRET_KEY: Final = "demo-secret-key"
REC_ID: Final = "rec-for-you"
_CATALOGUE: Final = tuple(f"template-{name}" for name in "abcdefghijklmnop")


@dataclass(frozen=True)
class DemoOptions:
    users: int = 3000
    ops: int = 40_000
    hot_users: int = 5
    seed: int = 7
    eps_threshold: int = 10
    throttle_hold: float = 1.0
    profiles: int = 3
    progress: bool = True
    #: Give up (and fail) after this many seconds of sending.
    timeout: float = 120.0


@dataclass
class DemoResult:
    workload: Workload
    stats: ClientStats
    emulator: EmulatorStats
    outcomes: Counter[str]
    send_seconds: float
    total_seconds: float
    mismatched: list[str]
    profiles: list[UserProfile] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        every_outcome = sum(self.outcomes.values()) == len(self.workload.ops)
        return (
            every_outcome
            and not self.mismatched
            and self.stats.failed_total == 0
            and not self.timed_out
        )


async def run_demo(options: DemoOptions, console: Console) -> DemoResult:
    import anyio

    from .. import AmplitudeClient, ClientConfig, Failed, Identify, Outcome
    from ..emulator import Emulator
    from ._progress import LiveProgress, Sample, sample_of
    from ._workload import generate

    started = time.monotonic()
    workload = generate(
        users=options.users,
        ops=options.ops,
        hot_users=options.hot_users,
        seed=options.seed,
        # One more than the emulator's limit: every hot user is throttled once at least.
        burst=options.eps_threshold + 1 if options.eps_threshold else 0,
    )
    outcomes: Counter[str] = Counter()

    def on_outcome(op: Identify, outcome: Outcome) -> None:
        if isinstance(outcome, Failed):
            outcomes[f"failed: {outcome.reason.value}"] += 1
        else:
            outcomes["delivered"] += 1

    config = ClientConfig(
        throttle_hold=options.throttle_hold,
        # Smaller than the default 1000, so requests are frequent enough for the
        # busiest users to cross the emulator's per-user limit and be throttled.
        batch_max_items=250,
        # flush() below is the drain; closing after a timeout fails what is left at once.
        shutdown_timeout=0.0,
        on_outcome=on_outcome,
    )
    async with Emulator(
        api_keys=[API_KEY],
        secret_key=SECRET_KEY,
        eps_threshold=options.eps_threshold or None,
    ) as emu:
        _define_models(emu)
        total = len(workload.ops)
        async with AmplitudeClient(API_KEY, server_url=emu.identify_url, config=config) as amp:

            def sample() -> Sample:
                stats = amp.stats()
                return sample_of(stats, (stats.delivered + stats.failed_total) / total)

            progress = LiveProgress(console, "demo", sample, enabled=options.progress)
            with progress:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(progress.run)
                    send_started = time.monotonic()
                    with anyio.move_on_after(options.timeout) as deadline:
                        await _send(amp, workload)
                    send_seconds = time.monotonic() - send_started
                    tg.cancel_scope.cancel()
        # Closed: after a timeout, what had no outcome now has "shutdown".
        stats = amp.stats()
        actual = emu.users()
        mismatched = [u for u, props in workload.expected.items() if actual.get(u) != props]
        profiles = await _read_back(emu, workload, options.profiles)
        emulator_stats = emu.stats()
    return DemoResult(
        workload,
        stats,
        emulator_stats,
        outcomes,
        send_seconds,
        time.monotonic() - started,
        mismatched,
        profiles,
        deadline.cancelled_caught,
    )


async def _send(amp: AmplitudeClient, workload: Workload) -> None:
    import anyio

    for n, op in enumerate(workload.ops):
        await amp.identify(op)
        if n % 256 == 0:
            # identify() only waits when the queue is full; let the sender (and the
            # in-process emulator) run meanwhile.
            await anyio.lowlevel.checkpoint()
    await amp.flush()


def _define_models(emu: Emulator) -> None:
    emu.define_cohort("pro-users", {"plan": "pro"})
    emu.define_cohort("team-accounts", {"plan": "team"})
    emu.define_cohort("power-users", lambda props: int(props.get("sessions", 0)) >= 20)
    emu.define_cohort("big-spenders", lambda props: int(props.get("revenue_cents", 0)) >= 50_000)
    emu.define_recommendation(REC_ID, _CATALOGUE, title="Templates for you")


async def _read_back(emu: Emulator, workload: Workload, count: int) -> list[UserProfile]:
    """The busiest user, a paying one and a few more, through the User Profile API."""
    from .. import ProfileClient

    picks: list[str] = workload.hot_users[:1]
    paying = [u for u, p in workload.expected.items() if p.get("plan") in ("pro", "team")]
    picks += [u for u in paying[:1] if u not in picks]
    picks += [u for u in workload.users[len(workload.hot_users) :] if u not in picks]
    found = []
    async with ProfileClient(SECRET_KEY, server_url=emu.profile_url) as profiles:
        for user in picks[:count]:
            found.append(
                await profiles.get(user, amp_props=True, cohort_ids=True, rec_id=REC_ID, limit=3)
            )
    return found


def demo(
    users: Annotated[int, typer.Option(min=1, help="Distinct users.")] = DemoOptions.users,
    ops: Annotated[int, typer.Option(min=1, help="Operations to send.")] = DemoOptions.ops,
    hot_users: Annotated[
        int, typer.Option(min=0, help="Users who get a fifth of all operations between them.")
    ] = DemoOptions.hot_users,
    seed: Annotated[int, typer.Option(help="Seed of the workload.")] = DemoOptions.seed,
    eps_threshold: Annotated[
        int,
        typer.Option(
            min=0,
            help="The emulator's identifications per second per user before 429 "
            "(Amplitude: about 10-30; 0: no throttling).",
        ),
    ] = DemoOptions.eps_threshold,
    throttle_hold: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds a throttled user is held (Amplitude advises 15; shorter so the "
            "demo ends soon).",
        ),
    ] = DemoOptions.throttle_hold,
    profiles: Annotated[
        int, typer.Option(min=0, help="Users read back through the User Profile API.")
    ] = DemoOptions.profiles,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Give up after this many seconds of sending.")
    ] = DemoOptions.timeout,
    progress: Annotated[bool, typer.Option(help="Live progress (on a terminal).")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    import anyio
    from rich.console import Console

    from ._demo_report import print_report, report_json

    if hot_users > users:
        raise typer.BadParameter("cannot exceed --users", param_hint="--hot-users")
    options = DemoOptions(
        users, ops, hot_users, seed, eps_threshold, throttle_hold, profiles, progress, timeout
    )
    err = Console(stderr=True, highlight=False)
    result = anyio.run(run_demo, options, err)
    if json_output:
        import json

        sys.stdout.write(json.dumps(report_json(result)) + "\n")
    else:
        print_report(result, Console(highlight=False))
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(help=_HELP)(demo)
