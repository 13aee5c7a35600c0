"""amplitude_async: keep Amplitude user properties in sync from asyncio, at volume.

One public namespace; the implementation lives in underscore modules. ``__all__`` is
sorted and checked by a test.
"""

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
from ._profile import ProfileClient, ProfileOptions, ProfileResult, ProfileStatistics
from ._profile_models import Propensity, Recommendation, UserProfile
from ._stats import ClientStats
from ._transport import AiohttpTransport, AsyncTransport, HttpRequest, HttpResponse

__version__ = "0.1.0"

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
