"""The User Profile API client: ``GET https://profile-api.amplitude.com/v1/userprofile``.

:class:`ProfileClient` is an async context manager over one pooled aiohttp session::

    async with ProfileClient(secret_key) as profiles:
        profile = await profiles.get("user-1", amp_props=True, cohort_ids=True)
        async for result in profiles.get_many(user_ids, concurrency=8, amp_props=True):
            ...

States: unopened -> open (``async with`` / ``__aenter__``) -> closed (``aclose``). A call
before opening raises :class:`ClientNotStarted`, after closing :class:`ClientClosed`.

This module is the client: its lifecycle, the lookups, the cache, the pacer and the
retries. Its parts: ``_profile_config`` checks the settings and holds the secret key;
``_profile_query`` builds and checks the query string (bad parameters: BadRequest with
``status=None``, raised before any request); ``_profile_answer`` maps an answer to a
profile or an error (UserNotFound, 401 AuthenticationError, 429 RateLimited, 400
BadRequest, 5xx ServerError); ``_as_completed`` runs ``get_many``'s lookups. 5xx and
TransportError are retried with full-jitter backoff until ``retry_deadline``; a 429 is
not retried by ``get`` (the caller's hot path decides), while ``get_many`` pauses its
pacer for it.

The secret key's holder (``Secret``) hides it from reprs; it goes out only in the
``Authorization`` header to ``server_url``, and redirects are never followed (so it
cannot be forwarded to another host).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, Unpack

import aiohttp

from ._as_completed import bounded_as_completed
from ._backoff import backoff_delay
from ._clock import Clock, SystemClock
from ._errors import (
    AmplitudeError,
    BadRequest,
    ClientClosed,
    ClientNotStarted,
    ClientStateError,
    ConfigurationError,
    RateLimited,
    ServerError,
    TransportError,
)
from ._http import caller_session, new_session, send
from ._logfields import fields
from ._profile_answer import PROFILE_ANSWER_MAX_BYTES, answer
from ._profile_config import ProfileConfig, Secret
from ._profile_models import UserProfile
from ._profile_query import (
    IdKind,
    Params,
    ProfileOptions,
    PropensityType,
    RecType,
    id_param,
    lookup_id,
    options_params,
)
from ._ratelimit import RateLimiter
from ._telemetry import Telemetry
from ._ttlcache import TTLCache

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["ProfileClient", "ProfileResult", "ProfileStatistics"]

# Pause for get_many's pacer after a 429 that did not say how long to wait.
_DEFAULT_429_HOLD = 1.0

log = logging.getLogger("amplitude_async.profile")


_State = Literal["unopened", "open", "closed"]


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """One id's answer from :meth:`ProfileClient.get_many`: a profile or an error."""

    id: str
    profile: UserProfile | None
    error: AmplitudeError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> UserProfile:
        """The profile, or raise this id's error."""
        if self.error is not None:
            raise self.error
        assert self.profile is not None
        return self.profile


@dataclass(frozen=True, slots=True)
class ProfileStatistics:
    """Counters since the client was created."""

    requests: int
    retries: int
    cache_hits: int
    cache_misses: int


#: The least time, seconds, worth starting a retry with (or ``timeout``, if shorter).
_MIN_ATTEMPT = 0.05


class ProfileClient:
    """Typed client of Amplitude's User Profile API (see the module docstring).

    Times are seconds. ``timeout`` bounds one HTTP attempt; ``retry_deadline`` bounds a
    lookup with all its retries. ``rate_limit_per_minute`` paces :meth:`get_many` across
    all its calls on this client (None: no pacing); :meth:`get` is not paced, because a
    hot path should fail fast rather than queue. ``cache_ttl`` turns on an in-process
    cache of successful lookups (``cache_max`` entries at most); errors are not cached.

    With opentelemetry-api installed (extra ``otel``), every HTTP attempt is a client span
    and counts in ``amplitude.profile.requests`` / ``amplitude.profile.request.duration``,
    on the global providers or on ``meter_provider`` / ``tracer_provider`` when given
    (docs/observability.md).

    ``session``: an :class:`aiohttp.ClientSession` of the caller's to send through; the
    caller owns it and closes it (``aclose`` leaves it open). Without one the client makes
    its own (``max_connections``, proxy variables honoured, ``User-Agent:
    amplitude-async/<version>``).
    """

    def __init__(
        self,
        secret_key: str,
        *,
        server_url: str | None = None,
        timeout: float = 5.0,
        retry_base: float = 0.1,
        retry_cap: float = 2.0,
        retry_deadline: float = 10.0,
        max_connections: int = 64,
        rate_limit_per_minute: float | None = 600,
        cache_ttl: float | None = None,
        cache_max: int = 10_000,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._secret = Secret(secret_key)
        self._config = config = ProfileConfig.checked(
            server_url=server_url,
            timeout=timeout,
            retry_base=retry_base,
            retry_cap=retry_cap,
            retry_deadline=retry_deadline,
            max_connections=max_connections,
        )
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._pacer = (
            None
            if rate_limit_per_minute is None
            else RateLimiter(rate_limit_per_minute, 60.0, clock=self._clock)
        )
        self._cache: TTLCache[tuple[tuple[str, str], Params], UserProfile] | None = (
            None
            if cache_ttl is None
            else TTLCache(ttl=cache_ttl, max_size=cache_max, clock=self._clock)
        )
        self._state: _State = "unopened"
        # A caller's session is used as it is and never closed here.
        self._caller_session = caller_session(session)
        self._session: aiohttp.ClientSession | None = None
        # Set by aclose(): wakes lookups waiting on a backoff or the pacer.
        self._closing = asyncio.Event()
        self._requests = 0
        self._retries = 0
        self._telemetry = Telemetry.create(
            "profile", config.url, meter_provider=meter_provider, tracer_provider=tracer_provider
        )

    # -- state ----------------------------------------------------------------------

    @property
    def state(self) -> _State:
        return self._state

    @property
    def server_url(self) -> str:
        return self._config.url

    async def __aenter__(self) -> Self:
        if self._state == "open":
            raise ClientStateError("ProfileClient is already open")
        if self._state == "closed":
            raise ClientClosed("ProfileClient was closed; create a new one")
        config = self._config
        self._session = self._caller_session or new_session(
            max_connections=config.max_connections, timeout=config.timeout, url=config.url
        )
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session; lookups still waiting end with :class:`ClientClosed`."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._closing.set()
        session, self._session = self._session, None
        if session is not None and session is not self._caller_session:
            await session.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._state == "unopened":
            raise ClientNotStarted("use `async with ProfileClient(...)` before looking up profiles")
        if self._state == "closed" or self._session is None:
            raise ClientClosed("ProfileClient is closed")
        return self._session

    def statistics(self) -> ProfileStatistics:
        cache = self._cache
        return ProfileStatistics(
            requests=self._requests,
            retries=self._retries,
            cache_hits=cache.hits if cache is not None else 0,
            cache_misses=cache.misses if cache is not None else 0,
        )

    def __repr__(self) -> str:
        return f"ProfileClient(server_url={self._config.url!r}, state={self._state!r})"

    # -- lookups --------------------------------------------------------------------

    async def get(
        self,
        user_id: str | None = None,
        *,
        device_id: str | None = None,
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
    ) -> UserProfile:
        """Look up one user (``user_id``) or device (``device_id``): exactly one of them.

        The flags ask for parts of the profile (None: not sent, so Amplitude's default);
        see :class:`ProfileOptions`. Raises BadRequest before sending if the arguments
        cannot work, else the mapped error of the answer (module docstring).
        """
        ident = lookup_id(user_id, device_id)
        options = options_params(
            amp_props=amp_props,
            cohort_ids=cohort_ids,
            computations=computations,
            comp_id=comp_id,
            recommendations=recommendations,
            rec_id=rec_id,
            rec_type=rec_type,
            limit=limit,
            propensity=propensity,
            prediction_id=prediction_id,
            propensity_type=propensity_type,
        )
        self._open_session()
        return await self._lookup(ident, options, pacer=None)

    def get_many(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        by: IdKind = "user_id",
        concurrency: int = 8,
        **options: Unpack[ProfileOptions],
    ) -> AsyncIterator[ProfileResult]:
        """Look up many ids; yields one :class:`ProfileResult` per id as each completes.

        At most ``concurrency`` lookups run at once, and request starts (retries too)
        are paced to ``rate_limit_per_minute``. ``ids`` is consumed lazily, so a long
        generator or async cursor is fine. Options are checked now (BadRequest); a bad
        id only fails its own result. Stopping early: wrap in ``contextlib.aclosing`` so
        the lookups still running are cancelled at once.
        """
        if by not in ("user_id", "device_id"):
            raise BadRequest(f"by must be 'user_id' or 'device_id', got {by!r}")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive int, got {concurrency!r}")
        params = options_params(**options)
        self._open_session()
        return bounded_as_completed(ids, partial(self._one, by=by, options=params), concurrency)

    async def _one(self, value: str, *, by: IdKind, options: Params) -> ProfileResult:
        try:
            profile = await self._lookup(id_param(by, value), options, pacer=self._pacer)
        except ClientStateError:
            raise  # the whole run is over, not this id
        except RateLimited as exc:
            if self._pacer is not None:
                # Amplitude's limit is per organisation: everyone waits, not just this id.
                self._pacer.hold(
                    exc.retry_after if exc.retry_after is not None else _DEFAULT_429_HOLD
                )
            return ProfileResult(str(value), None, exc)
        except AmplitudeError as exc:
            return ProfileResult(str(value), None, exc)
        return ProfileResult(value, profile, None)

    async def _lookup(
        self, ident: tuple[str, str], options: Params, *, pacer: RateLimiter | None
    ) -> UserProfile:
        params = dict((ident, *options))
        cache = self._cache
        if cache is None:
            return await self._fetch(params, pacer)
        # Same id and same options: same answer (within the TTL).
        key = (ident, options)
        cached = cache.get(key)
        if cached is not None:
            return cached
        profile = await self._fetch(params, pacer)
        cache.put(key, profile)
        return profile

    async def _fetch(self, params: dict[str, str], pacer: RateLimiter | None) -> UserProfile:
        """One lookup with its retries, under one deadline."""
        clock, config = self._clock, self._config
        deadline: float | None = None
        attempt = 0
        while True:
            if pacer is not None and not await pacer.acquire(self._closing):
                raise ClientClosed("ProfileClient closed while waiting for the rate limit")
            session = self._open_session()
            now = clock.now()
            if deadline is None:
                deadline = now + config.retry_deadline
            self._requests += 1
            try:
                with self._telemetry.request(resend_count=attempt) as request:
                    response = await send(
                        session,
                        "GET",
                        config.url,
                        params=params,
                        headers=self._secret.headers(),
                        timeout=min(config.timeout, max(deadline - now, 0.001)),
                        max_body=PROFILE_ANSWER_MAX_BYTES,
                        scrub=self._secret.scrub,
                    )
                    request.status = response.status
                return answer(response, self._secret.scrub)
            except (ServerError, TransportError) as exc:
                error: AmplitudeError = exc
            if self._state != "open":
                raise ClientClosed("ProfileClient closed during a lookup") from error
            attempt += 1
            delay = backoff_delay(attempt, base=config.retry_base, cap=config.retry_cap)
            # A retry needs time for an answer: one squeezed into the last milliseconds
            # would only time out and hide the real error behind a RequestTimeout.
            if clock.now() + delay + min(config.timeout, _MIN_ATTEMPT) >= deadline:
                raise error
            self._retries += 1
            log.debug(
                "profile lookup: %s; retry %d in %.3fs",
                error,
                attempt,
                delay,
                extra=fields(
                    "profile.retry",
                    reason=type(error).__name__,
                    status=getattr(error, "status", None),
                    attempt=attempt,
                    delay=delay,
                ),
            )
            await clock.wait(self._closing, clock.now() + delay)
            if self._closing.is_set():
                raise ClientClosed("ProfileClient closed while waiting to retry") from error
