"""A FastAPI service that keeps Amplitude user properties in sync.

One :class:`AmplitudeClient` and one :class:`ProfileClient` live as long as the app: the
lifespan opens them and closes them (closing delivers what is still queued, within
``shutdown_timeout``). Handlers get them through dependencies.

- ``POST /users/{user_id}/plan`` queues an identify and answers 202 at once: delivery
  happens in the background, batched with everyone else's.
- ``POST /users/{user_id}/signup`` waits for the outcome, for callers that need to know
  the properties reached Amplitude (200 delivered, 502 refused, 504 not yet).
- ``GET /users/{user_id}/profile`` reads the user back from the User Profile API.
- ``GET /healthz`` shows the client's counters.
- ``GET /metrics`` serves both clients' OpenTelemetry metrics in Prometheus' text format,
  through the OpenTelemetry Prometheus exporter (docs/observability.md has dashboards).

Run it (``pip install uvicorn opentelemetry-sdk opentelemetry-exporter-prometheus``)
against the local emulator::

    amplitude-async emulator --port 8787 --api-key dev-key --secret-key dev-secret &
    AMPLITUDE_API_KEY=dev-key AMPLITUDE_SECRET_KEY=dev-secret \\
    AMPLITUDE_SERVER_URL=http://127.0.0.1:8787/identify \\
    AMPLITUDE_PROFILE_URL=http://127.0.0.1:8787/v1/userprofile \\
    uvicorn examples.fastapi_app:app
    curl -X POST localhost:8000/users/user-000001/plan -H 'content-type: application/json' -d '{"plan": "pro"}'
    curl localhost:8000/metrics
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel

from amplitude_async import (
    AmplitudeClient,
    AuthenticationError,
    ClientConfig,
    Delivered,
    Identify,
    ProfileClient,
    QueueFull,
    TransportError,
    UserNotFound,
    ValidationError,
)

#: How long the confirming handler waits for an outcome before answering 504.
CONFIRM_TIMEOUT = 10.0


@dataclass(frozen=True)
class Settings:
    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    server_url: str | None = None
    profile_url: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        """Read at startup, in one place: nothing deeper reads the environment."""
        return cls(
            api_key=os.environ["AMPLITUDE_API_KEY"],
            secret_key=os.environ["AMPLITUDE_SECRET_KEY"],
            server_url=os.environ.get("AMPLITUDE_SERVER_URL"),
            profile_url=os.environ.get("AMPLITUDE_PROFILE_URL"),
        )


class PlanChange(BaseModel):
    plan: Literal["free", "pro", "team"]


class Signup(BaseModel):
    email_domain: str
    referrer: str | None = None
    device_id: str | None = None


def get_amplitude(request: Request) -> AmplitudeClient:
    client: AmplitudeClient = request.app.state.amplitude
    return client


def get_profiles(request: Request) -> ProfileClient:
    client: ProfileClient = request.app.state.profiles
    return client


Amplitude = Annotated[AmplitudeClient, Depends(get_amplitude)]
Profiles = Annotated[ProfileClient, Depends(get_profiles)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; ``settings`` default to the environment, read when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or Settings.from_env()
        config = ClientConfig(
            # A web handler should not wait for queue room: answer 503 instead and let
            # the caller retry (see plan()).
            on_full="raise",
            shutdown_timeout=10.0,
        )
        # The metrics of both clients, read by Prometheus through GET /metrics. An app that
        # already has an OpenTelemetry setup sets its MeterProvider globally instead
        # (opentelemetry.metrics.set_meter_provider) and passes nothing: the clients use
        # the global one.
        meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
        try:
            async with (
                AmplitudeClient(
                    s.api_key, server_url=s.server_url, config=config, meter_provider=meter_provider
                ) as amplitude,
                ProfileClient(
                    s.secret_key, server_url=s.profile_url, meter_provider=meter_provider
                ) as profiles,
            ):
                app.state.amplitude = amplitude
                app.state.profiles = profiles
                yield
            # Leaving the block closed both: queued identifies were delivered first.
        finally:
            # Also takes the exporter's collector out of prometheus_client's registry.
            meter_provider.shutdown()

    app = FastAPI(title="amplitude-async example", lifespan=lifespan)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
        # Raised by Identify and identify() before anything is queued.
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, exc: QueueFull) -> JSONResponse:
        # on_full="raise": shed load instead of letting requests pile up behind the queue.
        return JSONResponse({"detail": "busy; retry shortly"}, 503, {"Retry-After": "1"})

    @app.post("/users/{user_id}/plan", status_code=202)
    async def plan(user_id: str, body: PlanChange, amp: Amplitude) -> dict[str, Any]:
        """Queue the change and answer at once; delivery happens in the background."""
        await amp.identify(Identify(user_id=user_id).set("plan", body.plan))
        return {"queued": True}

    @app.post("/users/{user_id}/signup")
    async def signup(
        user_id: str, body: Signup, amp: Amplitude, response: Response
    ) -> dict[str, Any]:
        """Wait for the outcome: the answer says whether Amplitude has the properties."""
        op = Identify(user_id=user_id, device_id=body.device_id).set("plan", "free")
        op.set("email_domain", body.email_domain)
        if body.referrer is not None:
            op.set_once("referrer", body.referrer)
        receipt = await amp.identify(op)
        with anyio.move_on_after(CONFIRM_TIMEOUT):
            outcome = await receipt
            if isinstance(outcome, Delivered):
                return {"delivered": True, "attempts": outcome.attempts}
            response.status_code = 502
            return {"delivered": False, "reason": outcome.reason.value, "message": outcome.message}
        # Not cancelled: the operation stays queued and is still delivered later.
        response.status_code = 504
        return {
            "delivered": False,
            "reason": "pending",
            "message": "still queued; not yet confirmed",
        }

    @app.get("/users/{user_id}/profile")
    async def profile(user_id: str, profiles: Profiles) -> dict[str, Any]:
        try:
            found = await profiles.get(user_id, amp_props=True, cohort_ids=True)
        except UserNotFound:
            raise HTTPException(404, "unknown user") from None
        except (AuthenticationError, TransportError) as exc:
            # Messages never contain the secret key.
            raise HTTPException(503, f"profile lookup failed: {exc}") from None
        return {
            "user_id": found.user_id,
            "properties": found.amp_props,
            "cohorts": found.cohort_ids,
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus' text format: collected now, from memory (no I/O)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz(amp: Amplitude) -> dict[str, Any]:
        stats = amp.stats()
        return {"queued": stats.queued, "delivered": stats.delivered, "failed": stats.failed}

    return app


#: For ``uvicorn examples.fastapi_app:app``; settings are read when it starts.
app = create_app()
