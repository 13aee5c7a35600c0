"""``GET /v1/userprofile``: the User Profile API over the emulator's users.

Cohorts, recommendation models, computations and predictions are defined on the
emulator (Python API or ``/_emulator/`` control API). Everything a user gets back is a
function of its properties and ids, so results are deterministic per user: model
recommendations are the catalogue shuffled by a hash of (rec_id, user), propensities
are a hash of (prediction_id, user) unless defined otherwise.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._ingest import Reply, json_reply
from ._state import Record, State

__all__ = [
    "Cohort",
    "Computation",
    "Prediction",
    "ProfileModels",
    "Recommendation",
    "handle_profile",
]

Predicate = Callable[[Mapping[str, Any]], bool]
Compute = Callable[[Mapping[str, Any]], Any]

_TRUE: Final = frozenset(("true", "1", "yes"))
_UNKNOWN_USER: Final = {"error": "User id and device id not seen before"}
_DEFAULT_LIMIT: Final = 10
_MAX_LIMIT: Final = 100


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
    """A recommendation model: a catalogue of item ids ranked per user."""

    rec_id: str
    items: tuple[str, ...]
    title: str = ""
    is_control: bool = False


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
    if not authorization:
        return Reply(401, b"Missing Api-Key in Authorization header", "text/plain")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme != "Api-Key" or not key or (secret_key is not None and key != secret_key):
        return Reply(401, b"Invalid Api-Key", "text/plain")
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
    data: dict[str, Any] = {
        "user_id": record.user_id if user_id is None else user_id,
        "device_id": device_id
        if device_id is not None
        else (record.device_ids[-1] if record.device_ids else None),
        "amplitude_id": record.amplitude_id,
        "amp_props": None,
        "cohort_ids": None,
        "recommendations": None,
        "computations": None,
        "propensity": None,
    }
    if _flag(query, "get_amp_props"):
        data["amp_props"] = dict(props)
    if _flag(query, "get_cohort_ids"):
        data["cohort_ids"] = models.cohort_ids(props)
    if _flag(query, "get_computations"):
        wanted = _ids(query, "comp_id") or list(models.computations)
        computed: dict[str, Any] = {}
        for comp_id in wanted:
            computation = models.computations.get(comp_id)
            if computation is None:
                raise _BadParameter(f"Unknown comp_id {comp_id!r}")
            computed[comp_id] = computation.compute(props)
        data["computations"] = computed
        # Amplitude returns computations inside amp_props as computed-prop-<id>.
        amp_props = data["amp_props"] if data["amp_props"] is not None else {}
        amp_props.update({f"computed-prop-{cid}": value for cid, value in computed.items()})
        data["amp_props"] = amp_props
    if _flag(query, "get_recs"):
        data["recommendations"] = _recommendations(models, query, who)
    if _flag(query, "get_propensity"):
        data.update(_propensity(models, query, props, who))
    return data


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
                "child_ids": _ranked(model.items, f"{kind}:{rec_id}:{who}")[:limit],
                "is_control": model.is_control,
                "recommendation_type": kind,
                "title": model.title,
            }
        )
    return out


def _propensity(
    models: ProfileModels, query: Mapping[str, str], props: Mapping[str, Any], who: str
) -> dict[str, Any]:
    prediction_id = query.get("prediction_id")
    propensity_type = query.get("propensity_type")
    if not prediction_id:
        raise _BadParameter("prediction_id is required when get_propensity is true")
    if propensity_type not in ("score", "pct"):
        raise _BadParameter("propensity_type must be 'score' or 'pct'")
    prediction = models.predictions.get(prediction_id)
    if prediction is None:
        raise _BadParameter(f"Unknown prediction_id {prediction_id!r}")
    if prediction.score is not None:
        score = float(prediction.score(props))
    else:
        score = _unit(f"{prediction_id}:{who}")
    value: float | int = round(score, 4) if propensity_type == "score" else int(score * 100)
    return {
        "propensity": value,
        "propensity_type": propensity_type,
        "prediction_id": prediction_id,
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
