"""The emulator's data: users, devices and their links, the applied log and counters.

One :class:`Record` is one Amplitude user (one ``amplitude_id``). ``user_id`` and
``device_id`` both point at records: an identification with both links the device to
the user; an identification with only a device id updates whatever user that device
belongs to (an anonymous record if none). A device first seen anonymously is adopted by
the first user id it is identified with, as Amplitude merges the anonymous user.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._semantics import apply_fields, apply_user_properties
from ._throttle import UpdateLimit

__all__ = ["AppliedIdentification", "EmulatorStats", "Record", "State"]

# Amplitude ids are large integers; start high so they look like the real ones.
_FIRST_AMPLITUDE_ID = 100_000_000_001


@dataclass(slots=True)
class AppliedIdentification:
    """One identification, as applied: request number (1-based), index in that request."""

    request: int
    index: int
    user_id: str | None
    device_id: str | None
    identification: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "index": self.index,
            "user_id": self.user_id,
            "device_id": self.device_id,
            "identification": self.identification,
        }


class Record:
    """One user: properties, device/location/app fields, groups and linked devices."""

    __slots__ = ("amplitude_id", "device_ids", "fields", "groups", "props", "user_id")

    def __init__(self, amplitude_id: int, user_id: str | None) -> None:
        self.amplitude_id = amplitude_id
        self.user_id = user_id
        self.props: dict[str, Any] = {}
        # Created on first use: most users never get fields, groups or devices, and every
        # container less per user is less work for the garbage collector at scale.
        self.device_ids: list[str] | None = None
        self.fields: dict[str, Any] | None = None
        self.groups: dict[str, Any] | None = None

    def add_device(self, device_id: str) -> None:
        if self.device_ids is None:
            self.device_ids = []
        self.device_ids.append(device_id)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of everything about this user, for inspection."""
        return {
            "amplitude_id": self.amplitude_id,
            "user_id": self.user_id,
            "device_ids": list(self.device_ids or ()),
            "user_properties": copy.deepcopy(self.props),
            "fields": dict(self.fields or {}),
            "groups": copy.deepcopy(self.groups or {}),
        }


@dataclass(frozen=True)
class EmulatorStats:
    """A snapshot of the emulator's counters."""

    #: Requests answered (or dropped) on the ingestion endpoints.
    requests: int = 0
    #: Answers by HTTP status code, all endpoints except the control API.
    by_status: dict[int, int] = field(default_factory=dict)
    #: Requests by endpoint name (identify, httpapi, batch, userprofile).
    by_endpoint: dict[str, int] = field(default_factory=dict)
    #: Identifications and events applied to users ($groupidentify events are not).
    applied: int = 0
    #: Non-identify events accepted by /2/httpapi and /batch (their user properties are
    #: applied, and logged in ``applied``, like an identification's).
    events_ingested: int = 0
    #: Requests answered 429, and the identifications they carried.
    throttled_requests: int = 0
    throttled_items: int = 0
    #: Items refused as invalid (400 with per-item indices).
    rejected_items: int = 0
    #: User-property updates dropped past ``property_updates_per_hour`` (silently, as
    #: Amplitude may do past 1,800 a user an hour).
    dropped_updates: int = 0
    #: Faults injected, by :attr:`Fault.label`.
    faults: dict[str, int] = field(default_factory=dict)
    users: int = 0
    devices: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_endpoint": dict(sorted(self.by_endpoint.items())),
            "applied": self.applied,
            "events_ingested": self.events_ingested,
            "throttled_requests": self.throttled_requests,
            "throttled_items": self.throttled_items,
            "rejected_items": self.rejected_items,
            "dropped_updates": self.dropped_updates,
            "faults": dict(sorted(self.faults.items())),
            "users": self.users,
            "devices": self.devices,
        }


class State:
    """Users, devices, the applied log and the counters."""

    def __init__(self, *, groups_as_user_properties: bool = False) -> None:
        #: Also $set each group type to its group name on the user when an identification
        #: carries ``groups``. Off by default: the official SDKs send that $set themselves
        #: (Amplitude-Python ``Amplitude.set_group``; Amplitude-TypeScript
        #: ``createGroupEvent``), which suggests the server does not derive it.
        self.groups_as_user_properties = groups_as_user_properties
        #: Drops user-property updates past a per-user hourly rate (None: never).
        self.update_limit: UpdateLimit | None = None
        #: User-property updates dropped by :attr:`update_limit`.
        self.dropped_updates = 0
        self.users: dict[str, Record] = {}
        self.devices: dict[str, Record] = {}
        self.applied: list[AppliedIdentification] = []
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.events_ingested = 0
        self.throttled_requests = 0
        self.throttled_items = 0
        self.rejected_items = 0
        self.faults: Counter[str] = Counter()
        #: Group properties by (group type, group name).
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self._next_id = _FIRST_AMPLITUDE_ID

    def reset(self) -> None:
        mirror, limit = self.groups_as_user_properties, self.update_limit
        self.__init__(groups_as_user_properties=mirror)  # type: ignore[misc]
        if limit is not None:
            limit.reset()
        self.update_limit = limit

    def next_request(self) -> int:
        self.requests += 1
        return self.requests

    def apply(self, request: int, items: list[dict[str, Any]]) -> None:
        """Apply validated identifications in array order."""
        self.apply_indexed(request, enumerate(items))

    def apply_indexed(self, request: int, items: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Apply validated identifications (or events), each with its index in the request."""
        log = self.applied.append
        mirror_groups = self.groups_as_user_properties
        limit = self.update_limit
        for index, item in items:
            user_id = item.get("user_id")
            device_id = item.get("device_id")
            record = self._resolve(user_id, device_id)
            user_properties = item.get("user_properties")
            if user_properties:
                if limit is None or limit.admit(record.amplitude_id):
                    apply_user_properties(record.props, user_properties)
                else:
                    self.dropped_updates += 1
            # Any key beyond ids and properties is a field or groups; most items have none.
            present = (
                (user_id is not None) + (device_id is not None) + (user_properties is not None)
            )
            if len(item) > present:
                if record.fields is None:
                    record.fields = {}
                apply_fields(record.fields, item)
                groups = item.get("groups")
                if groups:
                    if record.groups is None:
                        record.groups = {}
                    record.groups.update(groups)
                    if mirror_groups:
                        record.props.update(groups)
            log(AppliedIdentification(request, index, user_id, device_id, item))

    def apply_group(self, group_type: str, group_value: str, properties: Any) -> None:
        """Apply group properties to one group (Group Identify API semantics: the same
        operations as user properties)."""
        key = (group_type, group_value)
        props = self.groups.get(key)
        if props is None:
            props = self.groups[key] = {}
        if isinstance(properties, dict) and properties:
            apply_user_properties(props, properties)

    def apply_group_event(self, event: dict[str, Any]) -> None:
        """A ``$groupidentify`` event: its ``group_properties`` go to every group named in
        ``groups`` (a value may be a list of group names)."""
        properties = event.get("group_properties")
        for group_type, value in event.get("groups", {}).items():
            for name in value if isinstance(value, list) else (value,):
                self.apply_group(str(group_type), str(name), properties)

    def record_for(self, user_id: str | None, device_id: str | None) -> Record | None:
        """The record a profile lookup finds (user id first, then device id)."""
        if user_id is not None:
            return self.users.get(user_id)
        if device_id is not None:
            return self.devices.get(device_id)
        return None

    def stats(self) -> EmulatorStats:
        return EmulatorStats(
            requests=sum(self.by_endpoint.values()),
            by_status=dict(self.by_status),
            by_endpoint=dict(self.by_endpoint),
            applied=len(self.applied),
            events_ingested=self.events_ingested,
            throttled_requests=self.throttled_requests,
            throttled_items=self.throttled_items,
            rejected_items=self.rejected_items,
            dropped_updates=self.dropped_updates,
            faults=dict(self.faults),
            users=len(self.users),
            devices=len(self.devices),
        )

    def _resolve(self, user_id: str | None, device_id: str | None) -> Record:
        if user_id is not None:
            record = self.users.get(user_id)
            if record is None:
                anonymous = self.devices.get(device_id) if device_id is not None else None
                if anonymous is not None and anonymous.user_id is None:
                    record = anonymous
                    record.user_id = user_id
                else:
                    record = self._new(user_id)
                self.users[user_id] = record
            if device_id is not None and self.devices.get(device_id) is not record:
                self.devices[device_id] = record
                record.add_device(device_id)
            return record
        assert device_id is not None  # validation guarantees one id
        record = self.devices.get(device_id)
        if record is None:
            record = self._new(None)
            self.devices[device_id] = record
            record.add_device(device_id)
        return record

    def _new(self, user_id: str | None) -> Record:
        record = Record(self._next_id, user_id)
        self._next_id += 1
        return record
