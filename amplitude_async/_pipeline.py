"""The client's arguments, checked, and its stages, built and wired (docs/architecture.md).

``AmplitudeClient`` keeps the lifecycle and the state machine; what it is made of is
decided here, once, so each stage gets exactly the others it calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ._batcher import Batcher
from ._clock import Clock
from ._config import ClientConfig
from ._encode import BatchEncoder
from ._errors import ConfigurationError
from ._intake import Intake
from ._lanes import Lanes
from ._ledger import Ledger
from ._limits import RequestLimits
from ._request import RequestHandler
from ._scrub import Scrubber
from ._sender import Sender
from ._shutdown import Leftovers
from ._telemetry import Telemetry
from ._throttle import ThrottleMap
from ._transport import AiohttpTransport, AsyncTransport

if TYPE_CHECKING:
    import aiohttp

__all__ = ["SERVER_URLS", "Pipeline", "checked_arguments"]

SERVER_URLS: Final = {
    "US": "https://api2.amplitude.com/identify",
    "EU": "https://api.eu.amplitude.com/identify",
}


def checked_arguments(
    api_key: object,
    server_zone: object,
    server_url: object,
    config: object,
    transport: object,
    session: object = None,
) -> tuple[str, ClientConfig]:
    """The URL to send to and the config, or a :class:`ConfigurationError` (whose
    message never echoes the key)."""
    if not isinstance(api_key, str) or not api_key.strip():
        raise ConfigurationError("api_key must be a non-empty string")
    if any(c.isspace() for c in api_key):
        raise ConfigurationError(
            "api_key must not contain whitespace (a newline read from a file?)"
        )
    if not api_key.isascii() and not _utf8_encodable(api_key):
        raise ConfigurationError("api_key must be text UTF-8 can encode")
    if server_zone not in SERVER_URLS:
        raise ConfigurationError(f"server_zone must be 'US' or 'EU', got {server_zone!r}")
    url = server_url if server_url is not None else SERVER_URLS[server_zone]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"server_url must be an http(s) URL, got {url!r}")
    if config is not None and not isinstance(config, ClientConfig):
        raise ConfigurationError(f"config must be a ClientConfig, got {type(config).__name__}")
    if transport is not None and not isinstance(transport, AsyncTransport):
        raise ConfigurationError(
            f"transport must be an AsyncTransport, got {type(transport).__name__}"
        )
    if transport is not None and session is not None:
        raise ConfigurationError(
            "pass session= or transport=, not both (AiohttpTransport(session=...) takes one)"
        )
    assert isinstance(url, str)
    return url, config or ClientConfig()


class Pipeline:
    """Every stage of one client, wired."""

    __slots__ = (
        "intake",
        "lanes",
        "ledger",
        "leftovers",
        "sender",
        "telemetry",
        "throttle",
        "transport",
    )

    def __init__(
        self,
        api_key: str,
        url: str,
        cfg: ClientConfig,
        clock: Clock,
        transport: AsyncTransport | None,
        *,
        on_auth_failed: Callable[[int | None], None],
        session: aiohttp.ClientSession | None = None,
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        # Cuts the key, in any spelling an echo may use, out of every server text.
        scrub = Scrubber(api_key)
        self.transport: AsyncTransport = transport or AiohttpTransport(
            max_connections=cfg.max_in_flight,
            timeout=cfg.request_timeout,
            session=session,
            url=url,
            scrub=scrub,
        )
        # Metrics and spans (docs/observability.md): per request and in bulk, never per
        # operation; a no-op without opentelemetry-api.
        self.telemetry = Telemetry.create(
            "identify", url, meter_provider=meter_provider, tracer_provider=tracer_provider
        )
        encoder = BatchEncoder(api_key, cfg.encoding, cfg.min_id_length)
        self.ledger = ledger = Ledger(cfg.on_outcome)
        self.throttle = throttle = ThrottleMap(cfg.throttle_map_max)
        limits = RequestLimits(cfg.batch_max_items, cfg.batch_max_bytes)
        self.lanes = lanes = Lanes(
            flush_interval=cfg.flush_interval,
            coalesce=cfg.coalesce,
            limits=limits,
            throttle=throttle,
        )
        handler = RequestHandler(
            config=cfg,
            clock=clock,
            transport=self.transport,
            url=url,
            host=urlsplit(url).netloc,
            encoder=encoder,
            scrub=scrub,
            ledger=ledger,
            limits=limits,
            throttle=throttle,
            telemetry=self.telemetry,
            on_auth_failed=on_auth_failed,
        )
        self.sender = Sender(
            clock=clock,
            lanes=lanes,
            batcher=Batcher(lanes, limits, encoder, ledger),
            handler=handler,
            max_in_flight=cfg.max_in_flight,
            max_items=cfg.batch_max_items,
            flush_interval=cfg.flush_interval,
            on_retried=self._count_retried,
            on_turn=self.sync_outcomes,
        )
        self.intake = Intake(cfg, clock.now, ledger, lanes, self.sender)
        self.leftovers = Leftovers(cfg, lanes, ledger)

    def _count_retried(self, count: int) -> None:
        self.ledger.counters.retried += count

    def sync_outcomes(self) -> None:
        """The outcomes so far, in one bulk update of the operations counter."""
        counters = self.ledger.counters
        self.telemetry.sync_outcomes(counters.delivered, counters.failed)


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
