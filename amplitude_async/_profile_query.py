"""The query string of a User Profile lookup: ids and options checked and turned into
parameters.

Every mistake Amplitude would answer with a 400 (or silently ignore) is raised here as
:class:`BadRequest` with ``status=None``, so a bad call costs no request and no share of
the rate limit. Pure functions, no state: the client calls them before it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypedDict

from ._errors import BadRequest

__all__ = [
    "IdKind",
    "Params",
    "ProfileOptions",
    "PropensityType",
    "RecType",
    "id_param",
    "lookup_id",
    "options_params",
]

IdKind = Literal["user_id", "device_id"]
RecType = Literal["model", "random"]
PropensityType = Literal["score", "pct"]

Params = tuple[tuple[str, str], ...]


class ProfileOptions(TypedDict, total=False):
    """What to ask for besides the ids; the keyword arguments of ``get``/``get_many``.

    Flags left at None are not sent. An option of a part asks for that part:
    ``rec_id``/``rec_type``/``limit`` send ``get_recs=true``, ``comp_id`` sends
    ``get_computations=true``, ``prediction_id``/``propensity_type`` send
    ``get_propensity=true``; giving one with its flag set to False is a BadRequest.
    Amplitude requires ``rec_id`` with recommendations, and ``prediction_id`` and
    ``propensity_type`` with propensity. ``rec_id`` may be a list (sent comma-joined).
    """

    amp_props: bool | None
    cohort_ids: bool | None
    computations: bool | None
    comp_id: str | None
    recommendations: bool | None
    rec_id: str | Sequence[str] | None
    rec_type: RecType | None
    limit: int | None
    propensity: bool | None
    prediction_id: str | None
    propensity_type: PropensityType | None


def id_param(kind: str, value: object) -> tuple[str, str]:
    """``("user_id", value)`` or ``("device_id", value)``, or :class:`BadRequest`."""
    if kind not in ("user_id", "device_id"):
        raise BadRequest(f"ids must be looked up by 'user_id' or 'device_id', not {kind!r}")
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{kind} must be a non-empty string, got {type(value).__name__}")
    return (kind, value)


def lookup_id(user_id: object, device_id: object) -> tuple[str, str]:
    """The id parameter of ``get(user_id)`` or ``get(device_id=...)``: exactly one given."""
    if (user_id is None) == (device_id is None):
        raise BadRequest("give exactly one of user_id and device_id")
    if user_id is not None:
        return id_param("user_id", user_id)
    return id_param("device_id", device_id)


def options_params(
    *,
    amp_props: bool | None = None,
    cohort_ids: bool | None = None,
    computations: bool | None = None,
    comp_id: str | None = None,
    recommendations: bool | None = None,
    rec_id: str | Sequence[str] | None = None,
    rec_type: RecType | None = None,
    limit: int | None = None,
    propensity: bool | None = None,
    prediction_id: str | None = None,
    propensity_type: PropensityType | None = None,
) -> Params:
    """The query parameters for these options, in Amplitude's documented order."""
    out: list[tuple[str, str]] = []
    _flag(out, "get_amp_props", "amp_props", amp_props)
    _flag(out, "get_cohort_ids", "cohort_ids", cohort_ids)

    computations = _implied("computations", computations, comp_id=comp_id)
    _flag(out, "get_computations", "computations", computations)
    if comp_id is not None:
        out.append(("comp_id", _text("comp_id", comp_id)))

    recommendations = _implied(
        "recommendations", recommendations, rec_id=rec_id, rec_type=rec_type, limit=limit
    )
    if recommendations and rec_id is None:
        raise BadRequest("recommendations=True needs rec_id (which recommendations to get)")
    _flag(out, "get_recs", "recommendations", recommendations)
    if rec_id is not None:
        out.append(("rec_id", _rec_ids(rec_id)))
    if rec_type is not None:
        out.append(("rec_type", _choice("rec_type", rec_type, ("model", "random"))))
    if limit is not None:
        # bool is an int subclass; limit=True is a mistake, not 1.
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BadRequest(f"limit must be a positive int, got {limit!r}")
        out.append(("limit", str(limit)))

    propensity = _implied(
        "propensity", propensity, prediction_id=prediction_id, propensity_type=propensity_type
    )
    if propensity and (prediction_id is None or propensity_type is None):
        raise BadRequest("propensity=True needs prediction_id and propensity_type")
    _flag(out, "get_propensity", "propensity", propensity)
    if prediction_id is not None:
        out.append(("prediction_id", _text("prediction_id", prediction_id)))
    if propensity_type is not None:
        out.append(
            ("propensity_type", _choice("propensity_type", propensity_type, ("score", "pct")))
        )
    return tuple(out)


def _flag(out: list[tuple[str, str]], param: str, name: str, value: bool | None) -> None:
    if value is None:
        return
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be True, False or None, got {type(value).__name__}")
    # Amplitude reads lowercase "true"/"false", not Python's "True".
    out.append((param, "true" if value else "false"))


def _implied(name: str, flag: bool | None, **options: object) -> bool | None:
    given = [key for key, value in options.items() if value is not None]
    if not given:
        return flag
    if flag is False:
        raise BadRequest(f"{', '.join(given)} given but {name}=False")
    return True


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} must be a non-empty string")
    return value


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return str(value)


def _rec_ids(rec_id: str | Sequence[str]) -> str:
    ids = [rec_id] if isinstance(rec_id, str) else list(rec_id)
    if not ids:
        raise BadRequest("rec_id must name at least one recommendation")
    for one in ids:
        _text("rec_id", one)
        if "," in one:
            # The list is sent comma-separated; a comma inside an id would split it.
            raise BadRequest(f"rec_id {one!r} contains a comma")
    return ",".join(ids)
