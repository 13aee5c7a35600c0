"""``GET /v1/userprofile``: the User Profile API over the emulator's users.

Answers follow Amplitude's User Profile API documentation (amplitude-dev-center
docs/analytics/apis/user-profile-api.md and the current amplitude.com page), not the
seed OpenAPI file:

- ``userData`` holds ``user_id``, ``device_id``, ``amp_props``, ``cohort_ids`` and
  ``recommendations`` (null unless asked for), plus ``propensity`` and ``propensities``
  when a propensity is asked for;
- a recommendation is ``{rec_id, child_rec_id, items, is_control,
  recommendation_source, last_updated}``;
- computations come back inside ``amp_props`` as ``computed-prop-<comp_id>``; an unknown
  ``comp_id`` gives a null value ("It returns a null value if it doesn't exist");
- ``prediction_id`` may name several predictions (comma separated): each is one
  ``{prop, pred_id, prop_type}`` in ``propensities``; ``propensity`` is the single
  value, or null for several;
- 401 "Missing Api-Key in Authorization header" for a missing *or malformed* header,
  "Invalid Api-Key" for a wrong key; unknown users are a 400
  ``{"error": "User id and device id not seen before"}``;
- at most ``profile_rate_limit`` requests a minute ("Amplitude orgs have a limit of 600
  API requests per minute across all endpoints"), answered with the documented error
  body. Its status is not documented; the emulator uses 429.

Cohorts, recommendation models, computations and predictions are defined on the
emulator (Python API or ``/_emulator/`` control API). Everything a user gets back is a
function of its properties and ids, so results are deterministic per user: model
recommendations are the catalogue shuffled by a hash of (rec_id, user), propensities
are a hash of (prediction_id, user) unless defined otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ._ingest import Reply, json_reply
from ._state import Record, State
from ._throttle import TimeSource

__all__ = [
    "PROFILE_RATE_LIMIT",
    "PROFILE_THROTTLED",
    "Cohort",
    "Computation",
    "Prediction",
    "ProfileLimiter",
    "ProfileModels",
    "Recommendation",
    "handle_profile",
]

Predicate = Callable[[Mapping[str, Any]], bool]
Compute = Callable[[Mapping[str, Any]], Any]

_TRUE: Final = frozenset(("true", "1", "yes"))
_UNKNOWN_USER: Final = {"error": "User id and device id not seen before"}
_MISSING_KEY: Final = Reply(401, b"Missing Api-Key in Authorization header", "text/plain")
_INVALID_KEY: Final = Reply(401, b"Invalid Api-Key", "text/plain")
_DEFAULT_LIMIT: Final = 10
_MAX_LIMIT: Final = 100
#: The computed property's key inside ``amp_props`` (User Profile API docs examples).
COMPUTED_PREFIX: Final = "computed-prop-"
#: Requests a minute, per organisation (User Profile API docs, "Throttling errors").
PROFILE_RATE_LIMIT: Final = 600
PROFILE_THROTTLED: Final = json_reply(
    429,
    {
        "error": "Number of requests per minute exceeds system limit. "
        "Contact Support if you need this limit raised"
    },
)
_MINUTE: Final = 60.0


class ProfileLimiter:
    """At most ``limit`` profile requests in any 60 s (None: no limit)."""

    def __init__(self, clock: TimeSource, limit: int | None) -> None:
        self.clock = clock
        self.limit = limit
        self._times: deque[float] = deque()

    def admit(self) -> bool:
        if self.limit is None:
            return True
        now = self.clock.now()
        times = self._times
        while times and times[0] <= now - _MINUTE:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def reset(self) -> None:
        self._times.clear()


@dataclass(frozen=True)
class Cohort:
    """Users whose properties match ``where`` (equality on every key) or a predicate."""

    cohort_id: str
    where: Mapping[str, Any] | Predicate

    def contains(self, props: Mapping[str, Any]) -> bool:
        if callable(self.where):
            return bool(self.where(props))
        return all(props.get(name, _ABSENT) == value for name, value in self.where.items())


@dataclass(frozen=True)
class Recommendation:
    """A recommendation model: a catalogue of item ids ranked per user.

    ``source`` is the answer's ``recommendation_source`` ("Name of the model used to
    generate this recommendation"); ``title`` is kept for callers of the old API and is
    not part of Amplitude's documented answer.
    """

    rec_id: str
    items: tuple[str, ...]
    title: str = ""
    is_control: bool = False
    source: str = "model"
    #: ``last_updated``: seconds since epoch when the model was defined.
    last_updated: int = field(default_factory=lambda: int(time.time()))


@dataclass(frozen=True)
class Computation:
    """A computed property: a function of the user's properties, or one property's value."""

    comp_id: str
    compute: Compute


@dataclass(frozen=True)
class Prediction:
    """A predictive cohort's propensity: a score in [0, 1] per user (pct is 0..100)."""

    prediction_id: str
    score: Callable[[Mapping[str, Any]], float] | None = None


class _Absent:
    pass


_ABSENT: Final = _Absent()


class ProfileModels:
    """The cohorts, recommendation models, computations and predictions defined."""

    def __init__(self) -> None:
        self.cohorts: dict[str, Cohort] = {}
        self.recommendations: dict[str, Recommendation] = {}
        self.computations: dict[str, Computation] = {}
        self.predictions: dict[str, Prediction] = {}

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def cohort_ids(self, props: Mapping[str, Any]) -> list[str]:
        return [cid for cid, cohort in self.cohorts.items() if cohort.contains(props)]


def handle_profile(
    state: State,
    models: ProfileModels,
    secret_key: str | None,
    authorization: str | None,
    query: Mapping[str, str],
) -> Reply:
    """Answer one User Profile API request."""
    key = _secret_from(authorization)
    if key is None:
        return _MISSING_KEY
    if secret_key is not None and key != secret_key:
        return _INVALID_KEY
    user_id = query.get("user_id") or None
    device_id = query.get("device_id") or None
    if user_id is None and device_id is None:
        return json_reply(400, {"error": "Either user_id or device_id is required"})
    record = state.record_for(user_id, device_id)
    if record is None:
        return json_reply(400, _UNKNOWN_USER)
    try:
        data = _user_data(record, models, query, user_id, device_id)
    except _BadParameter as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(200, {"userData": data})


def _secret_from(authorization: str | None) -> str | None:
    """The secret key in an Authorization header, or None when missing or malformed.

    ``Api-Key <secret>`` is the documented form; the newest page also describes Basic
    authentication with ``base64(api_key:secret_key)``, so that is read too.
    """
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme == "Api-Key":
        return value
    if scheme == "Basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        api_key, colon, secret = decoded.partition(":")
        return secret if colon and api_key and secret else None
    return None


class _BadParameter(ValueError):
    pass


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").strip().lower() in _TRUE


def _ids(query: Mapping[str, str], name: str) -> list[str]:
    return [part.strip() for part in query.get(name, "").split(",") if part.strip()]


def _user_data(
    record: Record,
    models: ProfileModels,
    query: Mapping[str, str],
    user_id: str | None,
    device_id: str | None,
) -> dict[str, Any]:
    props = record.props
    who = record.user_id or (record.device_ids[0] if record.device_ids else "")
    # The documented keys, in the documented order; absent parts are null.
    data: dict[str, Any] = {
        "recommendations": None,
        "user_id": record.user_id if user_id is None else user_id,
        "device_id": device_id
        if device_id is not None
        else (record.device_ids[-1] if record.device_ids else None),
        "amp_props": None,
        "cohort_ids": None,
    }
    if _flag(query, "get_amp_props"):
        data["amp_props"] = dict(props)
    if _flag(query, "get_cohort_ids"):
        data["cohort_ids"] = models.cohort_ids(props)
    computed = _computations(models, query, props)
    if computed is not None:
        amp_props = data["amp_props"] if data["amp_props"] is not None else {}
        amp_props.update(computed)
        data["amp_props"] = amp_props
    if _flag(query, "get_recs"):
        data["recommendations"] = _recommendations(models, query, who)
    if _flag(query, "get_propensity"):
        data.update(_propensity(models, query, props, who))
    return data


def _computations(
    models: ProfileModels, query: Mapping[str, str], props: Mapping[str, Any]
) -> dict[str, Any] | None:
    """``computed-prop-<id>: value`` for what was asked, or None if nothing was.

    ``comp_id`` alone returns that computation (the parameter table); with
    ``get_computations`` the docs' own example also returns only that one, which the
    emulator follows. An unknown ``comp_id`` is null.
    """
    wanted = _ids(query, "comp_id")
    if not wanted:
        if not _flag(query, "get_computations"):
            return None
        wanted = list(models.computations)
    out: dict[str, Any] = {}
    for comp_id in wanted:
        computation = models.computations.get(comp_id)
        out[COMPUTED_PREFIX + comp_id] = (
            computation.compute(props) if computation is not None else None
        )
    return out


def _recommendations(
    models: ProfileModels, query: Mapping[str, str], who: str
) -> list[dict[str, Any]]:
    rec_ids = _ids(query, "rec_id")
    if not rec_ids:
        raise _BadParameter("rec_id is required when get_recs is true")
    rec_type = query.get("rec_type", "model") or "model"
    if rec_type not in ("model", "random"):
        raise _BadParameter("rec_type must be 'model' or 'random'")
    limit = _limit(query.get("limit"))
    out = []
    for rec_id in rec_ids:
        model = models.recommendations.get(rec_id)
        if model is None:
            raise _BadParameter(f"Unknown rec_id {rec_id!r}")
        # Control users get random recommendations, as in an Amplitude A/B holdout.
        kind = "random" if model.is_control else rec_type
        out.append(
            {
                "rec_id": rec_id,
                "child_rec_id": rec_id,
                "items": _ranked(model.items, f"{kind}:{rec_id}:{who}")[:limit],
                "is_control": model.is_control,
                "recommendation_source": "random" if kind == "random" else model.source,
                "last_updated": model.last_updated,
            }
        )
    return out


def _propensity(
    models: ProfileModels, query: Mapping[str, str], props: Mapping[str, Any], who: str
) -> dict[str, Any]:
    prediction_ids = _ids(query, "prediction_id")
    propensity_type = query.get("propensity_type")
    if not prediction_ids:
        raise _BadParameter("prediction_id is required when get_propensity is true")
    if propensity_type not in ("score", "pct"):
        raise _BadParameter("propensity_type must be 'score' or 'pct'")
    propensities = []
    for prediction_id in prediction_ids:
        prediction = models.predictions.get(prediction_id)
        if prediction is None:
            raise _BadParameter(f"Unknown prediction_id {prediction_id!r}")
        if prediction.score is not None:
            score = float(prediction.score(props))
        else:
            score = _unit(f"{prediction_id}:{who}")
        value: float | int = round(score, 6) if propensity_type == "score" else int(score * 100)
        propensities.append({"prop": value, "pred_id": prediction_id, "prop_type": propensity_type})
    return {
        "propensity": propensities[0]["prop"] if len(propensities) == 1 else None,
        "propensities": propensities,
    }


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return _DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise _BadParameter("limit must be an integer") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise _BadParameter(f"limit must be between 1 and {_MAX_LIMIT}")
    return limit


def _seed(text: str) -> int:
    # hashlib, not hash(): str hashes are salted per process and would not repeat.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _ranked(items: Sequence[str], key: str) -> list[str]:
    ranked = list(items)
    random.Random(_seed(key)).shuffle(ranked)
    return ranked


def _unit(key: str) -> float:
    return _seed(key) / 2**64
