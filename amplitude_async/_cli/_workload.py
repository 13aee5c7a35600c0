"""The demo's workload: a product's users signing up and using it, some of them a lot.

Deterministic for a seed. Alongside the operations it computes what every user's
properties must be once all of them are applied in order, with the emulator's reference
semantics, so the demo can check the result user by user.

Hot users only get operations that coalesce with each other (counters with whole
numbers, ``$set``): however many pile up while they are held by a 429, they leave as one
identification. Operations that cannot merge (a float ``$add``, ``$postInsert``) would
pile up into more identifications than the per-user limit allows in one request.

Except once, on purpose: right after signing up, each hot user's app syncs what it
recorded offline, ``burst`` list updates that cannot merge (an ``$append`` and a
``$prepend`` of one list, in turn), all near the start of the workload. With ``burst``
above the emulator's per-second limit, those identifications reach the emulator within
a second whatever the timing (in one request, or in several: its window adds them up),
so each hot user is answered 429 and held at least once in every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .. import Identify

__all__ = ["Workload", "generate"]

_PLANS: Final = ("free", "free", "free", "pro", "pro", "team")
_COUNTRIES: Final = ("US", "DE", "FR", "GB", "JP", "BR", "IN", "CA")
_PLATFORMS: Final = (("iOS", "Apple"), ("Android", "Google"), ("Web", None))
_REFERRERS: Final = ("search", "ads", "friend", "newsletter", "direct")
_FEATURES: Final = ("export", "dashboards", "alerts", "sso", "api", "mobile", "sharing")
_TAGS: Final = ("beta", "early-adopter", "enterprise-lead", "churn-risk", "advocate")
_PAGES: Final = ("/home", "/pricing", "/docs", "/settings", "/reports", "/billing")
#: Share of all operations that go to the hot users together.
_HOT_SHARE: Final = 0.2


@dataclass
class Workload:
    ops: list[Identify]
    #: user id -> the properties it must end with.
    expected: dict[str, dict[str, Any]]
    users: list[str]
    hot_users: list[str]
    #: Operations per kind ("signup", "session", ...), for the summary.
    kinds: dict[str, int] = field(default_factory=dict)


def generate(*, users: int, ops: int, hot_users: int, seed: int, burst: int = 0) -> Workload:
    """``ops`` operations over ``users`` users, ``hot_users`` of them very busy; each hot
    user signs up first, followed at once by ``burst`` operations that cannot merge."""
    from ..emulator import apply_user_properties

    rng = random.Random(seed)
    ids = [f"user-{n:06d}" for n in range(users)]
    hot = ids[:hot_users]
    expected: dict[str, dict[str, Any]] = {}
    kinds: dict[str, int] = {}
    out: list[Identify] = []
    clock = 1_700_000_000  # seconds; moves forward so timestamps look like traffic

    def add(kind: str, op: Identify, props: dict[str, Any]) -> None:
        apply_user_properties(props, op.user_properties())
        kinds[kind] = kinds.get(kind, 0) + 1
        out.append(op)

    # The hot users first: signed up, then their offline sync (see the module's doc).
    for user in hot:
        if len(out) + burst + 1 > ops:
            break
        hot_props: dict[str, Any] = {}
        expected[user] = hot_props
        add("signup", _signup(rng, user, len(out), clock), hot_props)
        for step in range(burst):
            add("offline_sync", _offline(user, step, clock), hot_props)
    while len(out) < ops:
        n = len(out)
        clock += rng.randint(0, 2)
        is_hot = bool(hot) and rng.random() < _HOT_SHARE
        user = rng.choice(hot) if is_hot else rng.choice(ids)
        props = expected.get(user)
        if props is None:
            kind, op = "signup", _signup(rng, user, n, clock)
            props = expected[user] = {}
        elif is_hot:
            kind, op = _hot(rng, user, clock)
        else:
            kind, op = _regular(rng, user, clock)
        add(kind, op, props)
    return Workload(out, expected, ids, hot, kinds)


def _offline(user: str, step: int, clock: int) -> Identify:
    """One entry of a hot user's offline sync; consecutive entries never merge (an
    ``$append`` followed by a ``$prepend`` of the same list are two identifications)."""
    from .. import Identify

    op = Identify(user_id=user)
    entry = f"offline-{step}@{clock - 3600 + step}"
    return op.append("recent", entry) if step % 2 == 0 else op.prepend("recent", entry)


def _signup(rng: random.Random, user: str, n: int, clock: int) -> Identify:
    from .. import Identify

    platform, brand = rng.choice(_PLATFORMS)
    op = Identify(
        user_id=user,
        device_id=f"device-{n:07d}",
        platform=platform,
        device_brand=brand,
        country=rng.choice(_COUNTRIES),
        app_version=f"3.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
    )
    return (
        op.set_once("signup_at", clock)
        .set_once("referrer", rng.choice(_REFERRERS))
        .set("plan", "free")
        .set("trial_ends", clock + 14 * 86_400)
    )


def _hot(rng: random.Random, user: str, clock: int) -> tuple[str, Identify]:
    from .. import Identify

    op = Identify(user_id=user)
    if rng.random() < 0.5:
        return "session", op.add("sessions", 1).set("last_seen", clock)
    return "page_view", op.add("page_views", 1).set("last_page", rng.choice(_PAGES))


def _regular(rng: random.Random, user: str, clock: int) -> tuple[str, Identify]:
    from .. import Identify

    op = Identify(user_id=user)
    roll = rng.random()
    if roll < 0.45:
        return "session", op.add("sessions", 1).set("last_seen", clock)
    if roll < 0.55:
        plan = rng.choice(_PLANS)
        op.set("plan", plan)
        if plan != "free":
            op.unset("trial_ends")
        return "plan_change", op
    if roll < 0.67:
        return "tag", op.post_insert("tags", rng.choice(_TAGS))
    if roll < 0.80:
        return "purchase", op.add("purchases", 1).add("revenue_cents", rng.randint(500, 50_000))
    if roll < 0.93:
        return "feature", op.append("features_used", rng.choice(_FEATURES))
    return "settings", op.set("theme", rng.choice(("light", "dark"))).set(
        "notifications", rng.random() < 0.7
    )
