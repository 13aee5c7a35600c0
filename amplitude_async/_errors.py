"""The exception tree of amplitude_async.

Every error the package raises derives from :class:`AmplitudeError`::

    AmplitudeError
    ├── ValidationError            bad input, raised at the call before anything is queued or sent
    │   └── ConfigurationError     a ClientConfig / client argument that cannot work
    ├── ClientStateError           the client is used in a state that does not allow it
    │   ├── ClientNotStarted       used before ``async with`` / ``__aenter__``
    │   └── ClientClosed           used after ``aclose()``
    ├── QueueFull                  intake is full and the policy is ``on_full="raise"``
    ├── TransportError             could not send: no HTTP answer was received   (retriable)
    │   ├── ConnectError           the connection could not be made or was reset
    │   └── RequestTimeout         no answer within ``request_timeout``
    └── APIStatusError             the server answered and refused              (``status``)
        ├── BadRequest             400, or request parameters rejected before sending
        ├── AuthenticationError    invalid or missing API key / secret key
        ├── UserNotFound           profile API: "User id and device id not seen before"
        ├── PayloadTooLarge        413
        ├── RateLimited            429 (``retry_after`` seconds, when known)    (retriable)
        └── ServerError            5xx                                          (retriable)

"Could not send" (:class:`TransportError`) is kept apart from "the server refused"
(:class:`APIStatusError`): after a transport error the request may or may not have been
applied; after a status error the server's answer is known.

The identify pipeline never raises these for delivery problems: each operation ends in
an outcome (``Delivered`` or ``Failed``) on its receipt. They are raised by calls that
cannot start (bad input, wrong state, full queue) and by the User Profile client.

Messages never contain an API key or secret key.
"""

from __future__ import annotations

__all__ = [
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
]


class AmplitudeError(Exception):
    """Root of every error raised by amplitude_async."""

    #: Whether trying the same thing again later can succeed.
    retriable: bool = False


class ValidationError(AmplitudeError, ValueError):
    """Input that Amplitude would reject; raised at the call, before anything is queued."""


class ConfigurationError(ValidationError):
    """A configuration value that cannot work."""


class ClientStateError(AmplitudeError, RuntimeError):
    """The client is not in a state that allows this call."""


class ClientNotStarted(ClientStateError):
    """The client was used before ``async with client`` (or ``await client.__aenter__()``)."""


class ClientClosed(ClientStateError):
    """The client was used after it was closed."""


class QueueFull(AmplitudeError):
    """Intake is full and the client's policy is ``on_full="raise"``."""


class TransportError(AmplitudeError):
    """No HTTP answer was received: the request may or may not have been applied."""

    retriable = True

    def __init__(self, message: str, *, maybe_applied: bool = True) -> None:
        super().__init__(message)
        #: False only when the request certainly never reached the server
        #: (the connection could not be opened).
        self.maybe_applied = maybe_applied


class ConnectError(TransportError):
    """The connection could not be made, or broke before the answer arrived."""


class RequestTimeout(TransportError):
    """No answer arrived within the request timeout."""


class APIStatusError(AmplitudeError):
    """The server answered with a status that refuses the request."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class BadRequest(APIStatusError):
    """The request was malformed (HTTP 400), or its parameters were rejected before sending."""


class AuthenticationError(APIStatusError):
    """The API key or secret key was missing or not accepted."""


class UserNotFound(APIStatusError):
    """The User Profile API has never seen this user id or device id."""


class PayloadTooLarge(APIStatusError):
    """The request body was too large (HTTP 413)."""


class RateLimited(APIStatusError):
    """The server throttled the request (HTTP 429)."""

    retriable = True

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        #: Seconds the server asked us to wait, when it said.
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """The server failed (HTTP 5xx)."""

    retriable = True
