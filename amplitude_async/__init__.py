"""amplitude_async: keep Amplitude user properties in sync from asyncio, at volume.

One public namespace; the implementation lives in underscore modules. ``__all__`` is
sorted and checked by a test.

Names are imported on first use (a module ``__getattr__``), so ``import amplitude_async``
alone does not import aiohttp: the command line's ``--help``, the pytest plugin and the
emulator's pure semantics start without it. ``from amplitude_async import X`` and
``amplitude_async.X`` work as usual; type checkers see the imports below.
"""

from __future__ import annotations

import importlib
import typing

# Only public names start with a capital letter here (a test checks dir()), hence
# ``typing.X`` instead of importing typing's names.
if typing.TYPE_CHECKING:
    from ._client import AmplitudeClient
    from ._clock import Clock, ManualClock, SystemClock
    from ._config import ClientConfig
    from ._errors import (
        AmplitudeError,
        APIStatusError,
        AuthenticationError,
        BadRequest,
        ClientClosed,
        ClientNotStarted,
        ClientStateError,
        ConfigurationError,
        ConnectError,
        PayloadTooLarge,
        QueueFull,
        RateLimited,
        RequestTimeout,
        ServerError,
        TransportError,
        UserNotFound,
        ValidationError,
    )
    from ._identify import Identify
    from ._outcome import Delivered, Failed, FailureReason, Outcome, Receipt
    from ._profile import ProfileClient, ProfileResult, ProfileStatistics
    from ._profile_models import Propensity, Recommendation, UserProfile
    from ._profile_query import ProfileOptions
    from ._stats import ClientStats
    from ._transport import AiohttpTransport, AsyncTransport, HttpRequest, HttpResponse

from ._version import __version__

__all__ = [
    "APIStatusError",
    "AiohttpTransport",
    "AmplitudeClient",
    "AmplitudeError",
    "AsyncTransport",
    "AuthenticationError",
    "BadRequest",
    "ClientClosed",
    "ClientConfig",
    "ClientNotStarted",
    "ClientStateError",
    "ClientStats",
    "Clock",
    "ConfigurationError",
    "ConnectError",
    "Delivered",
    "Failed",
    "FailureReason",
    "HttpRequest",
    "HttpResponse",
    "Identify",
    "ManualClock",
    "Outcome",
    "PayloadTooLarge",
    "ProfileClient",
    "ProfileOptions",
    "ProfileResult",
    "ProfileStatistics",
    "Propensity",
    "QueueFull",
    "RateLimited",
    "Receipt",
    "Recommendation",
    "RequestTimeout",
    "ServerError",
    "SystemClock",
    "TransportError",
    "UserNotFound",
    "UserProfile",
    "ValidationError",
    "__version__",
]

# Where each public name lives. A test checks that this and __all__ agree.
_HOMES = {
    "AmplitudeClient": "._client",
    "Clock": "._clock",
    "ManualClock": "._clock",
    "SystemClock": "._clock",
    "ClientConfig": "._config",
    **dict.fromkeys(
        (
            "APIStatusError",
            "AmplitudeError",
            "AuthenticationError",
            "BadRequest",
            "ClientClosed",
            "ClientNotStarted",
            "ClientStateError",
            "ConfigurationError",
            "ConnectError",
            "PayloadTooLarge",
            "QueueFull",
            "RateLimited",
            "RequestTimeout",
            "ServerError",
            "TransportError",
            "UserNotFound",
            "ValidationError",
        ),
        "._errors",
    ),
    "Identify": "._identify",
    **dict.fromkeys(("Delivered", "Failed", "FailureReason", "Outcome", "Receipt"), "._outcome"),
    **dict.fromkeys(("ProfileClient", "ProfileResult", "ProfileStatistics"), "._profile"),
    **dict.fromkeys(("Propensity", "Recommendation", "UserProfile"), "._profile_models"),
    "ProfileOptions": "._profile_query",
    "ClientStats": "._stats",
    **dict.fromkeys(
        ("AiohttpTransport", "AsyncTransport", "HttpRequest", "HttpResponse"), "._transport"
    ),
}


def __getattr__(name: str) -> typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    # Cached as a module global: the next lookup does not come here.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
