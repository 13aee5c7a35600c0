"""Cohorts, recommendation models, computations and predictions from the command line.

``python -m amplitude_async.emulator`` (and ``amplitude-async emulator``) take them as a
JSON file (``--definitions FILE``) or as flags, and define them through the emulator's
Python API before it serves, so that User Profile lookups such as
``profile user-1 --recs rec-model-1`` answer from the first request on. The file holds
the bodies the control API's ``POST /_emulator/cohorts`` (and ``recommendations``,
``computations``, ``predictions``) take::

    {
      "cohorts": [{"cohort_id": "pro-users", "where": {"plan": "pro"}}],
      "recommendations": [{"rec_id": "rec-model-1", "items": ["sku-1", "sku-2"],
                           "title": "For you", "is_control": false}],
      "computations": [{"comp_id": "seats", "property": "seats", "default": 0},
                       {"comp_id": "tier", "value": "gold"}],
      "predictions": [{"prediction_id": "churn"}]
    }

Every problem is a ValueError whose message names the entry and the field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = [
    "ProfileDefinitions",
    "definitions_from",
    "parse_cohort_flag",
    "parse_computation_flag",
    "parse_recommendation_flag",
]

_SECTIONS: Final = ("cohorts", "recommendations", "computations", "predictions")
#: A definitions file is small; anything bigger is a mistake (a data file, say).
_MAX_FILE_BYTES: Final = 10 * 1024 * 1024


@dataclass
class ProfileDefinitions:
    """What to define on an emulator before it serves."""

    cohorts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    recommendations: list[tuple[str, list[str], str, bool]] = field(default_factory=list)
    #: (comp_id, property, default) or (comp_id, None, constant value)
    computations: list[tuple[str, str | None, Any]] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cohorts or self.recommendations or self.computations or self.predictions)

    @classmethod
    def from_file(cls, path: str) -> ProfileDefinitions:
        try:
            with open(path, "rb") as file:
                raw = file.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"--definitions {path}: {exc.strerror}") from None
        if len(raw) > _MAX_FILE_BYTES:
            raise ValueError(f"--definitions {path}: larger than {_MAX_FILE_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"--definitions {path}: not valid JSON ({exc})") from None
        return cls.from_json(data, source=f"--definitions {path}")

    @classmethod
    def from_json(cls, data: Any, *, source: str = "definitions") -> ProfileDefinitions:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object with {', '.join(_SECTIONS)}")
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise ValueError(
                f"{source}: unknown section(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(_SECTIONS)}"
            )
        out = cls()
        for section in _SECTIONS:
            entries = data.get(section, [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ValueError(f"{source}: {section} must be a list of objects")
            for index, entry in enumerate(entries):
                where = f"{source}: {section}[{index}]"
                getattr(out, f"_add_{section}")(entry, where)
        return out

    def _add_cohorts(self, entry: dict[str, Any], where: str) -> None:
        rule = entry.get("where")
        if not isinstance(rule, dict):
            raise ValueError(f"{where}: where must be an object of property: value")
        self.cohorts.append((_name(entry, "cohort_id", where), rule))

    def _add_recommendations(self, entry: dict[str, Any], where: str) -> None:
        items = entry.get("items")
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"{where}: items must be a list of strings")
        title = entry.get("title", "")
        is_control = entry.get("is_control", False)
        if not isinstance(title, str) or not isinstance(is_control, bool):
            raise ValueError(f"{where}: title must be a string and is_control true or false")
        self.recommendations.append((_name(entry, "rec_id", where), items, title, is_control))

    def _add_computations(self, entry: dict[str, Any], where: str) -> None:
        comp_id = _name(entry, "comp_id", where)
        if "value" in entry:
            self.computations.append((comp_id, None, entry["value"]))
            return
        self.computations.append((comp_id, _name(entry, "property", where), entry.get("default")))

    def _add_predictions(self, entry: dict[str, Any], where: str) -> None:
        self.predictions.append(_name(entry, "prediction_id", where))

    def merge(self, other: ProfileDefinitions) -> None:
        self.cohorts += other.cohorts
        self.recommendations += other.recommendations
        self.computations += other.computations
        self.predictions += other.predictions

    def apply(self, emu: Emulator) -> None:
        """Define everything on ``emu`` (later definitions of one id win)."""
        for cohort_id, rule in self.cohorts:
            emu.define_cohort(cohort_id, rule)
        for rec_id, items, title, is_control in self.recommendations:
            emu.define_recommendation(rec_id, items, title=title, is_control=is_control)
        for comp_id, prop, value in self.computations:
            if prop is None:
                emu.define_computation(comp_id, _constant(value))
            else:
                emu.define_computation(comp_id, property=prop, default=value)
        for prediction_id in self.predictions:
            emu.define_prediction(prediction_id)


def _name(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key} must be a non-empty string")
    return value


def _constant(value: Any) -> Any:
    def compute(props: Any) -> Any:
        return value

    return compute


def _value(text: str) -> Any:
    """JSON where the text parses (``12``, ``true``), else the string, as the CLI does."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _split_id(text: str, flag: str, form: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=" if flag != "--cohort" else ":")
    if not sep or not name or not rest:
        raise ValueError(f"{flag}: expected {form}, got {text!r}")
    return name, rest


def parse_cohort_flag(text: str) -> ProfileDefinitions:
    """``--cohort ID:PROP=VALUE[,PROP=VALUE...]``: users whose properties equal those."""
    form = "ID:PROPERTY=VALUE[,PROPERTY=VALUE...], e.g. pro-users:plan=pro"
    cohort_id, rest = _split_id(text, "--cohort", form)
    rule: dict[str, Any] = {}
    for pair in rest.split(","):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--cohort: expected {form}, got {text!r}")
        rule[name] = _value(value)
    return ProfileDefinitions(cohorts=[(cohort_id, rule)])


def parse_recommendation_flag(text: str) -> ProfileDefinitions:
    """``--recommendation REC_ID=ITEM[,ITEM...]``: a model ranking those items per user."""
    form = "REC_ID=ITEM[,ITEM...], e.g. rec-model-1=sku-1,sku-2,sku-3"
    rec_id, rest = _split_id(text, "--recommendation", form)
    items = [item for item in rest.split(",") if item]
    if not items:
        raise ValueError(f"--recommendation: expected {form}, got {text!r}")
    return ProfileDefinitions(recommendations=[(rec_id, items, "", False)])


def parse_computation_flag(text: str) -> ProfileDefinitions:
    """``--computation COMP_ID=PROPERTY``: the value of a user property."""
    comp_id, prop = _split_id(text, "--computation", "COMP_ID=PROPERTY, e.g. seats=seats")
    return ProfileDefinitions(computations=[(comp_id, prop, None)])


def definitions_from(
    path: str | None,
    cohorts: Sequence[str],
    recommendations: Sequence[str],
    computations: Sequence[str],
    predictions: Sequence[str],
) -> ProfileDefinitions:
    """The file's definitions, then the flags' (a flag wins over the file for one id)."""
    out = ProfileDefinitions.from_file(path) if path is not None else ProfileDefinitions()
    for text in cohorts:
        out.merge(parse_cohort_flag(text))
    for text in recommendations:
        out.merge(parse_recommendation_flag(text))
    for text in computations:
        out.merge(parse_computation_flag(text))
    for prediction_id in predictions:
        if not prediction_id:
            raise ValueError("--prediction: expected an id")
        out.predictions.append(prediction_id)
    return out
