"""``Emulator``: the aiohttp server and the Python API to inspect and steer it.

The HTTP layer only reads bodies, applies faults and pauses, and turns
:class:`~._ingest.Reply` objects into responses; validation, throttling and semantics
live in their own modules. All state is touched on the server's event loop only; use
:class:`~._thread.EmulatorThread` to drive an emulator from another thread.
"""

from __future__ import annotations

import asyncio
import copy
import email.errors
import email.parser
import email.policy
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from .._rules import DEFAULT_MIN_ID_LENGTH, MAX_BODY_BYTES, MAX_ITEMS_PER_REQUEST
from ._control import add_control_routes
from ._decode import DecodeError, decode_json, parse_form
from ._faults import Fault, FaultPlan, Faults
from ._ingest import (
    MISSING_EVENT,
    THROTTLED_TEXT,
    TOO_LARGE,
    Ingestor,
    Limits,
    Reply,
    error_reply,
    json_reply,
)
from ._profile import (
    PROFILE_RATE_LIMIT,
    PROFILE_THROTTLED,
    Cohort,
    Computation,
    Compute,
    Predicate,
    Prediction,
    ProfileLimiter,
    ProfileModels,
    Recommendation,
    handle_profile,
)
from ._state import AppliedIdentification, EmulatorStats, State
from ._throttle import Holds, Throttle, TimeSource, UpdateLimit

if TYPE_CHECKING:
    from ._thread import EmulatorThread


logger = logging.getLogger("amplitude_async.emulator")
__all__ = ["Emulator"]

_log = logging.getLogger("amplitude_async.emulator")
_LOOPBACK_NAMES: Final = frozenset(("localhost",))
#: Batch Event Upload API docs: 1,000 events per second per user or device, averaged over
#: 30 s ("EPDS and EPUS"); 500,000 per rolling 24 h ("Daily limit"); under 20 MB.
BATCH_EPS_THRESHOLD: Final = 1000
BATCH_WINDOW: Final = 30.0
BATCH_DAILY_QUOTA: Final = 500_000
BATCH_MAX_BODY_BYTES: Final = 20_000_000
_DEFAULT_FAULT_BODIES: Final[dict[int, str]] = {
    400: "missing_event",
    413: "Payload too large",
    414: "URI Too Long",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class _MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


class Emulator:
    """A local Amplitude on 127.0.0.1. Use as ``async with Emulator(...) as emu:``.

    ``api_keys=None`` accepts any non-empty key; ``secret_key=None`` lets the profile
    API accept any key. ``clock`` is anything with ``now() -> float`` seconds (e.g.
    ``ManualClock``). Limits follow Amplitude's documentation per API (docs/emulator.md,
    "Fidelity"); every one can be changed (None: no limit):

    - ``/identify`` and ``/2/httpapi``: ``eps_threshold`` events per second per user and
      per device (over 1 s), ``daily_quota`` per identity per rolling 24 h, at most
      ``max_items`` items and ``max_body_bytes`` per request;
    - ``/batch``: ``batch_eps_threshold`` averaged over ``batch_window`` seconds,
      ``batch_daily_quota``, ``batch_max_items`` and ``batch_max_body_bytes``;
    - ``/v1/userprofile``: ``profile_rate_limit`` requests per minute (all users).

    ``identify_json_body=True`` accepts a JSON body on ``/identify``, which Amplitude
    documents as form-only (a warning is logged for each); ``groups_as_user_properties``
    also sets each group type as a user property when an identification carries groups;
    ``silenced_devices`` start silenced, as after :meth:`silence`;
    ``property_updates_per_hour`` (Amplitude: "more than 1,800 times per hour ... may
    drop") drops a user's property updates past that many in an hour, silently.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        secret_key: str | None = None,
        eps_threshold: int | None = 30,
        daily_quota: int | None = None,
        max_items: int = MAX_ITEMS_PER_REQUEST,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_url_length: int = 8192,
        faults: Faults | None = None,
        seed: int = 0,
        clock: TimeSource | None = None,
        min_id_length: int = DEFAULT_MIN_ID_LENGTH,
        allow_remote: bool = False,
        batch_eps_threshold: int | None = BATCH_EPS_THRESHOLD,
        batch_window: float = BATCH_WINDOW,
        batch_daily_quota: int | None = BATCH_DAILY_QUOTA,
        batch_max_items: int = MAX_ITEMS_PER_REQUEST,
        batch_max_body_bytes: int = BATCH_MAX_BODY_BYTES,
        profile_rate_limit: int | None = PROFILE_RATE_LIMIT,
        identify_json_body: bool = False,
        groups_as_user_properties: bool = False,
        silenced_devices: Iterable[str] = (),
        property_updates_per_hour: int | None = None,
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"refusing to bind {host!r}: the emulator accepts any request without "
                "authentication; pass allow_remote=True to bind a non-loopback address"
            )
        self.host = host
        self.port = port
        self.secret_key = secret_key
        self.max_body_bytes = max_body_bytes
        self.batch_max_body_bytes = batch_max_body_bytes
        self.max_url_length = max_url_length
        self.identify_json_body = identify_json_body
        self.state = State(groups_as_user_properties=groups_as_user_properties)
        source = clock or _MonotonicClock()
        #: Forced throttling (:meth:`throttle`), shared by every endpoint.
        self.holds = Holds()
        self.throttles = {
            "identify": Throttle(source, eps_threshold, daily_quota, holds=self.holds),
            "httpapi": Throttle(source, eps_threshold, daily_quota, holds=self.holds),
            "batch": Throttle(
                source, batch_eps_threshold, batch_daily_quota, batch_window, self.holds
            ),
        }
        self.ingestor = Ingestor(
            self.state,
            self.throttles,
            api_keys=list(api_keys) if api_keys is not None else None,
            limits={
                "identify": Limits(max_items, max_body_bytes),
                "httpapi": Limits(max_items, max_body_bytes),
                "batch": Limits(batch_max_items, batch_max_body_bytes),
            },
            min_id_length=min_id_length,
        )
        self.ingestor.silenced_devices.update(silenced_devices)
        if property_updates_per_hour is not None:
            self.state.update_limit = UpdateLimit(source, property_updates_per_hour)
        self.plan = FaultPlan(faults, seed)
        self.models = ProfileModels()
        self.profile_limiter = ProfileLimiter(source, profile_rate_limit)
        self._runner: web.AppRunner | None = None
        self._running: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; ``self.port`` is the bound port afterwards."""
        if self._runner is not None:
            raise RuntimeError("this Emulator is already started")
        self._running = asyncio.Event()
        self._running.set()
        self._closing = asyncio.Event()
        app = web.Application(
            # Read up to 4x the limit so slightly-too-large bodies are answered with
            # Amplitude's JSON 413 after a full read, not cut off mid-upload.
            client_max_size=max(
                4 * self.max_body_bytes, self.batch_max_body_bytes + (1 << 20), 1 << 20
            ),
            # Let URLs through the parser up to well past max_url_length, so that we
            # answer 414 ourselves instead of aiohttp's generic 400.
            handler_args={"max_line_size": max(2 * self.max_url_length, 16384)},
        )
        app.router.add_route("POST", "/identify", self._identify)
        app.router.add_route("GET", "/identify", self._identify)
        app.router.add_route("POST", "/2/httpapi", self._httpapi)
        app.router.add_route("POST", "/batch", self._batch)
        app.router.add_route("POST", "/groupidentify", self._group_identify)
        app.router.add_route("GET", "/groupidentify", self._group_identify)
        app.router.add_route("GET", "/v1/userprofile", self._profile)
        add_control_routes(app, self)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        # runner.addresses gives the bound port when port=0 asked the OS to pick one.
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving; hanging and paused requests are dropped."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        assert self._closing is not None
        self._closing.set()
        await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @classmethod
    def in_thread(cls, **kwargs: Any) -> EmulatorThread:
        """An :class:`EmulatorThread` running ``Emulator(**kwargs)`` on its own loop."""
        from ._thread import EmulatorThread

        return EmulatorThread(**kwargs)

    # -- urls ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def identify_url(self) -> str:
        return f"{self.base_url}/identify"

    @property
    def httpapi_url(self) -> str:
        return f"{self.base_url}/2/httpapi"

    @property
    def batch_url(self) -> str:
        return f"{self.base_url}/batch"

    @property
    def groupidentify_url(self) -> str:
        return f"{self.base_url}/groupidentify"

    @property
    def profile_url(self) -> str:
        return f"{self.base_url}/v1/userprofile"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_emulator"

    # -- inspection ----------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user's current properties (a deep copy), or None if never seen."""
        record = self.state.users.get(user_id)
        return record.snapshot()["user_properties"] if record is not None else None

    def device(self, device_id: str) -> dict[str, Any] | None:
        """The properties of the user this device belongs to, or None if never seen."""
        record = self.state.devices.get(device_id)
        return record.snapshot()["user_properties"] if record is not None else None

    def group(self, group_type: str, group_name: str) -> dict[str, Any] | None:
        """A group's properties (a deep copy), or None if never identified."""
        props = self.state.groups.get((group_type, group_name))
        return copy.deepcopy(props) if props is not None else None

    def users(self) -> dict[str, dict[str, Any]]:
        """Every identified user's properties, by user id."""
        return {
            uid: record.snapshot()["user_properties"] for uid, record in self.state.users.items()
        }

    def record(
        self, user_id: str | None = None, device_id: str | None = None
    ) -> dict[str, Any] | None:
        """Everything about a user: ids, amplitude_id, properties, fields, groups, cohorts."""
        record = self.state.record_for(user_id, device_id)
        if record is None:
            return None
        snapshot = record.snapshot()
        snapshot["cohort_ids"] = self.models.cohort_ids(record.props)
        return snapshot

    @property
    def applied(self) -> list[AppliedIdentification]:
        """Every applied identification, in the order applied (the live list)."""
        return self.state.applied

    def stats(self) -> EmulatorStats:
        return self.state.stats()

    def reset(self) -> None:
        """Forget users, devices, the log, counters, holds, scripts and models."""
        self.state.reset()
        for throttle in self.throttles.values():
            throttle.reset()
        self.ingestor.silenced_devices.clear()
        self.plan.reset()
        self.models.reset()
        self.profile_limiter.reset()

    # -- control ---------------------------------------------------------------------------

    def throttle(self, users: Iterable[str] = (), devices: Iterable[str] = ()) -> None:
        """Answer 429 (naming exactly these) to any request containing these identities."""
        self.holds.hold(users, devices)

    def unthrottle(
        self, users: Iterable[str] | None = None, devices: Iterable[str] | None = None
    ) -> None:
        """Lift :meth:`throttle` holds; with no arguments, all of them."""
        self.holds.release(users, devices)

    def silence(self, devices: Iterable[str]) -> None:
        """Refuse events of these devices with Amplitude's "silenced" 400, which names
        them in ``silenced_devices`` and their indices in ``silenced_events``."""
        self.ingestor.silenced_devices.update(devices)

    def unsilence(self, devices: Iterable[str] | None = None) -> None:
        """Lift :meth:`silence`; with no argument, for every device."""
        if devices is None:
            self.ingestor.silenced_devices.clear()
        else:
            self.ingestor.silenced_devices.difference_update(devices)

    @property
    def throttle_state(self) -> Throttle:
        """The ``/identify`` throttle (kept for callers from before per-endpoint limits)."""
        return self.throttles["identify"]

    def script(self, *faults: Fault, endpoint: str = "identify") -> None:
        """Queue one-shot behaviours for the next requests to ``endpoint``, in order."""
        if endpoint not in ("identify", "httpapi", "batch"):
            raise ValueError("endpoint must be 'identify', 'httpapi' or 'batch'")
        self.plan.script(endpoint, faults)

    def set_faults(self, faults: Faults | None) -> None:
        """Replace the random fault rates (None: no random faults)."""
        self.plan.faults = faults or Faults()

    @property
    def faults(self) -> Faults:
        return self.plan.faults

    def pause(self) -> None:
        """Stop answering: requests are read, then wait until :meth:`resume`."""
        if self._running is not None:
            self._running.clear()

    def resume(self) -> None:
        if self._running is not None:
            self._running.set()

    @property
    def paused(self) -> bool:
        return self._running is not None and not self._running.is_set()

    def set_eps_threshold(self, eps_threshold: int | None, *, endpoint: str | None = None) -> None:
        """Change the per-identity rate of ``endpoint``; by default of ``/identify`` and
        ``/2/httpapi`` (``/batch`` keeps its own, documented, limit)."""
        names = ("identify", "httpapi") if endpoint is None else (endpoint,)
        for name in names:
            if name not in self.throttles:
                raise ValueError("endpoint must be 'identify', 'httpapi' or 'batch'")
            self.throttles[name].eps_threshold = eps_threshold

    # -- profile models --------------------------------------------------------------------

    def define_cohort(self, cohort_id: str, where: Mapping[str, Any] | Predicate) -> None:
        """A cohort: users whose properties equal ``where``'s, or match a predicate."""
        self.models.cohorts[cohort_id] = Cohort(cohort_id, where)

    def define_recommendation(
        self,
        rec_id: str,
        items: Sequence[str],
        *,
        title: str = "",
        is_control: bool = False,
        source: str = "model",
    ) -> None:
        """A recommendation model over ``items``, ranked deterministically per user;
        ``source`` is the answer's ``recommendation_source``."""
        self.models.recommendations[rec_id] = Recommendation(
            rec_id, tuple(items), title, is_control, source
        )

    def define_computation(
        self,
        comp_id: str,
        compute: Compute | None = None,
        *,
        property: str | None = None,
        default: Any = None,
    ) -> None:
        """A computed property: ``compute(props)``, or the value of ``property``."""
        if compute is None:
            if property is None:
                raise ValueError("define_computation needs compute or property")
            name = property

            def compute(props: Mapping[str, Any]) -> Any:
                return props.get(name, default)

        self.models.computations[comp_id] = Computation(comp_id, compute)

    def define_prediction(
        self, prediction_id: str, score: Callable[[Mapping[str, Any]], float] | None = None
    ) -> None:
        """A prediction; its score is ``score(props)`` or a stable hash of the user."""
        self.models.predictions[prediction_id] = Prediction(prediction_id, score)

    # -- handlers ----------------------------------------------------------------------------

    async def _identify(self, request: web.Request) -> web.StreamResponse:
        return await self._ingest(request, "identify", self._identify_reply)

    async def _httpapi(self, request: web.Request) -> web.StreamResponse:
        return await self._ingest(request, "httpapi", self._http_v2_reply)

    async def _batch(self, request: web.Request) -> web.StreamResponse:
        return await self._ingest(request, "batch", self._http_v2_reply)

    async def _group_identify(self, request: web.Request) -> web.StreamResponse:
        return await self._ingest(request, "groupidentify", self._group_identify_reply)

    async def _profile(self, request: web.Request) -> web.StreamResponse:
        self.state.by_endpoint["userprofile"] += 1
        if not self.profile_limiter.admit():
            return self._respond(PROFILE_THROTTLED)
        try:
            query = parse_form(request.rel_url.raw_query_string)
        except DecodeError:
            reply = json_reply(400, {"error": "query string is not valid UTF-8"})
        else:
            reply = handle_profile(
                self.state,
                self.models,
                self.secret_key,
                request.headers.get("Authorization"),
                query,
            )
        return self._respond(reply)

    async def _ingest(
        self,
        request: web.Request,
        endpoint: str,
        handle: Callable[[web.Request, bytes, int], Awaitable[Reply]],
    ) -> web.StreamResponse:
        number = self.state.next_request()
        self.state.by_endpoint[endpoint] += 1
        if len(request.raw_path) > self.max_url_length:
            return self._respond(error_reply(414, "URI Too Long"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._respond(TOO_LARGE)
        limit = self.batch_max_body_bytes if endpoint == "batch" else self.max_body_bytes
        if len(body) > limit:
            return self._respond(TOO_LARGE)
        if not await self._wait_running():
            return self._drop(request)
        fault, latency = self.plan.next(endpoint)
        if latency and not await self._sleep(latency):
            return self._drop(request)
        if fault is not None:
            self.state.faults[fault.label] += 1
            if fault.kind == "delay" and not await self._sleep(fault.seconds):
                return self._drop(request)
            if fault.kind == "hang":
                await self._sleep(fault.seconds)
                return self._drop(request)
            if not fault.apply and fault.kind == "reset":
                return self._drop(request)
            if not fault.apply and fault.kind == "http":
                return self._respond(self._fault_reply(fault))
        try:
            reply = await handle(request, body, number)
        except Exception:
            # A bug of the emulator's, not bad input (that is a 4xx): still one answer,
            # counted like every other, and in the log.
            logger.exception("emulator: request %d failed", number)
            reply = error_reply(500, "internal error")
        if fault is not None and fault.apply:
            if fault.kind == "reset":
                return self._drop(request)
            reply = self._fault_reply(fault)
        return self._respond(reply)

    async def _identify_reply(self, request: web.Request, body: bytes, number: int) -> Reply:
        try:
            fields = await self._identify_fields(request, body)
        except DecodeError:
            return MISSING_EVENT
        return self.ingestor.identify_form(fields, number)

    async def _group_identify_reply(self, request: web.Request, body: bytes, number: int) -> Reply:
        try:
            fields = await self._identify_fields(request, body)
        except DecodeError:
            return MISSING_EVENT
        return self.ingestor.group_identify_form(fields)

    async def _identify_fields(self, request: web.Request, body: bytes) -> Mapping[str, Any]:
        if request.method == "GET":
            return parse_form(request.rel_url.raw_query_string)
        content_type = request.content_type
        if content_type == "application/json":
            # Identify API docs: "The body must be form-data or x-www-form-urlencoded".
            # What Amplitude answers to JSON is not documented; refusing it like a
            # missing identification keeps a test from passing here and failing there.
            if not self.identify_json_body:
                _log.warning(
                    "refused a JSON body on %s: Amplitude documents form bodies only "
                    "(Emulator(identify_json_body=True) accepts it)",
                    request.path,
                )
                raise DecodeError("a JSON body on /identify")
            _log.warning(
                "accepted a JSON body on %s, which Amplitude documents as form-only", request.path
            )
            data = decode_json(body)
            if not isinstance(data, dict):
                raise DecodeError("a JSON body must be an object")
            return data
        if content_type == "multipart/form-data":
            return _parse_multipart(request.headers.get("Content-Type", ""), body)
        # curl --data-urlencode sends form bodies, also when the type is missing.
        return parse_form(body)

    async def _http_v2_reply(self, request: web.Request, body: bytes, number: int) -> Reply:
        try:
            payload = decode_json(body)
        except DecodeError:
            return error_reply(400, "Invalid JSON request body")
        endpoint = "batch" if request.path == "/batch" else "httpapi"
        return self.ingestor.http_v2(endpoint, payload, number, len(body))

    def _fault_reply(self, fault: Fault) -> Reply:
        status = fault.status
        headers_retry = fault.retry_after
        body = fault.body
        if body is None:
            if status == 429:
                body = {
                    "code": 429,
                    "error": THROTTLED_TEXT,
                    "eps_threshold": self.throttle_state.eps_threshold,
                    "throttled_devices": {},
                    "throttled_users": {},
                    "throttled_events": [],
                }
            else:
                body = {"code": status, "error": _DEFAULT_FAULT_BODIES.get(status, "fault")}
        if isinstance(body, str):
            return Reply(status, body.encode(), "text/plain", headers_retry)
        return Reply(status, json_reply(status, body).body, "application/json", headers_retry)

    def _respond(self, reply: Reply) -> web.Response:
        self.state.by_status[reply.status] += 1
        response = web.Response(
            status=reply.status, body=reply.body, content_type=reply.content_type
        )
        if reply.retry_after is not None:
            response.headers["Retry-After"] = f"{reply.retry_after:g}"
        return response

    def _drop(self, request: web.Request) -> web.Response:
        """Close the connection without an answer (a reset, a hang's end, a shutdown)."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        # aiohttp writes nothing to an aborted transport; this response is discarded.
        return web.Response(status=499)

    async def _wait_running(self) -> bool:
        """Wait while paused; False if the emulator closes meanwhile."""
        running, closing = self._running, self._closing
        assert running is not None and closing is not None
        if running.is_set():
            return True
        return await _first(running.wait(), closing.wait()) == 0

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False if the emulator closes meanwhile."""
        closing = self._closing
        assert closing is not None
        try:
            await asyncio.wait_for(closing.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def __repr__(self) -> str:
        state = "running" if self._runner is not None else "stopped"
        return f"Emulator({self.base_url}, {state})"


async def _first(*waits: Awaitable[Any]) -> int:
    """Index of the first awaitable to finish; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(i for i, task in enumerate(tasks) if task in done)
    finally:
        for task in tasks:
            task.cancel()


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body."""
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    try:
        message = parser.parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise DecodeError("not a multipart body")
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, payload.decode("utf-8"))
        return fields
    except (ValueError, TypeError, LookupError, AttributeError, email.errors.MessageError) as exc:
        raise DecodeError(f"malformed multipart body: {exc}") from exc


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
