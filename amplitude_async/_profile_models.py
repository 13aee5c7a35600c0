"""Typed answers of the User Profile API (``GET /v1/userprofile``).

The body is decoded by msgspec straight into the private ``_Wire*`` structs below, in one
pass and without an intermediate ``dict``. Two shapes are read, and folded by
:func:`decode_envelope` into one public :class:`UserProfile`, so callers read one name
whatever the server sent:

- the documented one (User Profile API docs, amplitude-dev-center
  docs/analytics/apis/user-profile-api.md): recommendations with ``items``,
  ``child_rec_id``, ``recommendation_source`` and ``last_updated``; computations inside
  ``amp_props`` as ``computed-prop-<id>`` keys; ``propensity`` (one value) and
  ``propensities`` (``[{prop, pred_id, prop_type}]``, also for several prediction ids);
- the seed OpenAPI file's, which some integrations still produce: ``child_ids``,
  ``recommendation_type``, ``title``, ``computed_properties``, ``amplitude_id``,
  ``user_properties``, and a propensity as an object or with ``prediction_id`` /
  ``propensity_type`` siblings.

Parts the server left out or sent as ``null`` are ``None``. Unknown keys are ignored, so
a new field on Amplitude's side does not break decoding.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "Propensity",
    "Recommendation",
    "UserProfile",
    "decode_envelope",
]


class Recommendation(msgspec.Struct, frozen=True, kw_only=True):
    """One recommendation set of a user.

    ``items`` are the recommended ids. Amplitude's documentation calls them ``items``
    (with ``child_rec_id``, ``recommendation_source``, ``last_updated``); the seed OpenAPI
    file calls them ``child_ids`` (with ``recommendation_type`` and ``title``). Both are
    read; ``items`` holds whichever was sent.
    """

    rec_id: str | None = None
    items: list[str] | None = None
    child_rec_id: str | None = None
    is_control: bool | None = None
    recommendation_source: str | None = None
    recommendation_type: str | None = None
    title: str | None = None
    last_updated: float | None = None


class Propensity(msgspec.Struct, frozen=True, kw_only=True):
    """A prediction for the user: ``prop`` is the raw score (``prop_type="score"``) or the
    percentile, 0-100 (``"pct"``); ``pred_id`` is the prediction id."""

    prop: float | None = None
    pred_id: str | None = None
    prop_type: str | None = None


class UserProfile(msgspec.Struct, frozen=True, kw_only=True):
    """What the User Profile API returned for one user or device; absent parts are None."""

    user_id: str | None = None
    device_id: str | None = None
    amplitude_id: int | None = None
    #: User properties (``get_amp_props``); Amplitude also calls them ``user_properties``.
    amp_props: dict[str, Any] | None = None
    #: Ids of the cohorts the user is in (``get_cohort_ids``).
    cohort_ids: list[str] | None = None
    #: Computed properties (``get_computations`` / ``comp_id``), by id. Read from a
    #: ``computations``/``computed_properties`` object when the server sends one, else
    #: from the ``computed-prop-<id>`` keys of ``amp_props`` (the documented place; the
    #: key is the id after the prefix, and an unknown ``comp_id`` is ``None``). Those
    #: keys also stay in :attr:`amp_props`, as sent.
    computations: dict[str, Any] | None = None
    recommendations: list[Recommendation] | None = None
    propensities: list[Propensity] | None = None

    @property
    def user_properties(self) -> dict[str, Any] | None:
        """The other name of :attr:`amp_props`."""
        return self.amp_props


# --- wire shapes -------------------------------------------------------------------


class _WireRecommendation(msgspec.Struct, kw_only=True):
    rec_id: str | None = None
    items: list[str] | None = None
    child_ids: list[str] | None = None
    child_rec_id: str | None = None
    is_control: bool | None = None
    recommendation_source: str | None = None
    recommendation_type: str | None = None
    title: str | None = None
    last_updated: float | None = None


class _WireUserData(msgspec.Struct, kw_only=True):
    user_id: str | None = None
    device_id: str | None = None
    amplitude_id: int | None = None
    amp_props: dict[str, Any] | None = None
    user_properties: dict[str, Any] | None = None
    cohort_ids: list[str] | None = None
    computations: dict[str, Any] | None = None
    computed_properties: dict[str, Any] | None = None
    recommendations: list[_WireRecommendation] | None = None
    propensities: list[Propensity] | None = None
    # A single prediction: a bare number (with prediction_id and propensity_type as
    # siblings), one object, or (in some examples) a list.
    propensity: float | Propensity | list[Propensity] | None = None
    prediction_id: str | None = None
    propensity_type: str | None = None


class _WireEnvelope(msgspec.Struct, kw_only=True, rename={"user_data": "userData"}):
    user_data: _WireUserData | None = None
    error: str | None = None


_envelope_decoder = msgspec.json.Decoder(_WireEnvelope)


def decode_envelope(body: bytes) -> tuple[UserProfile | None, str | None]:
    """``(profile, error)`` from a body; raises ``msgspec.DecodeError`` if it does not fit."""
    envelope = _envelope_decoder.decode(body)
    if envelope.user_data is None:
        return None, envelope.error
    return _fold(envelope.user_data), envelope.error


#: Where the documented answer puts a computation: ``amp_props["computed-prop-<id>"]``.
COMPUTED_PREFIX = "computed-prop-"


def _fold(data: _WireUserData) -> UserProfile:
    amp_props = data.amp_props if data.amp_props is not None else data.user_properties
    computations = data.computations if data.computations is not None else data.computed_properties
    if computations is None and amp_props:
        computations = _computed_props(amp_props)
    return UserProfile(
        user_id=data.user_id,
        device_id=data.device_id,
        amplitude_id=data.amplitude_id,
        amp_props=amp_props,
        cohort_ids=data.cohort_ids,
        computations=computations,
        recommendations=(
            None
            if data.recommendations is None
            else [_fold_recommendation(r) for r in data.recommendations]
        ),
        propensities=_fold_propensities(data),
    )


def _computed_props(amp_props: dict[str, Any]) -> dict[str, Any] | None:
    prefix = COMPUTED_PREFIX
    found = {
        name[len(prefix) :]: value
        for name, value in amp_props.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }
    return found or None


def _fold_recommendation(rec: _WireRecommendation) -> Recommendation:
    return Recommendation(
        rec_id=rec.rec_id,
        items=rec.items if rec.items is not None else rec.child_ids,
        child_rec_id=rec.child_rec_id,
        is_control=rec.is_control,
        recommendation_source=rec.recommendation_source,
        recommendation_type=rec.recommendation_type,
        title=rec.title,
        last_updated=rec.last_updated,
    )


def _fold_propensities(data: _WireUserData) -> list[Propensity] | None:
    if data.propensities is not None:
        return data.propensities
    single = data.propensity
    if single is None or isinstance(single, list):
        return single
    if isinstance(single, Propensity):
        return [single]
    return [Propensity(prop=single, pred_id=data.prediction_id, prop_type=data.propensity_type)]
