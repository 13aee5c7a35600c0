"""Settings of the commands: flags, or the environment. The CLI's only contact with env.

The environment variables are declared here, on the shared option types, and read by the
option parser at the edge of each command; nothing deeper reads ``os.environ``. Keys are
never shown: ``--help`` names the variable, not its value, and the settings' reprs hide
them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal

import typer

__all__ = [
    "ENV_API_KEY",
    "ENV_PROFILE_URL",
    "ENV_SECRET_KEY",
    "ENV_SERVER_URL",
    "ENV_SERVER_ZONE",
    "ApiKeyOption",
    "IdentifyTarget",
    "ProfileTarget",
    "ProfileUrlOption",
    "SecretKeyOption",
    "ServerUrlOption",
    "ServerZoneOption",
    "Zone",
    "identify_target",
    "profile_target",
]

ENV_API_KEY: Final = "AMPLITUDE_API_KEY"
ENV_SECRET_KEY: Final = "AMPLITUDE_SECRET_KEY"
ENV_SERVER_ZONE: Final = "AMPLITUDE_SERVER_ZONE"
ENV_SERVER_URL: Final = "AMPLITUDE_SERVER_URL"
ENV_PROFILE_URL: Final = "AMPLITUDE_PROFILE_URL"

_CONNECTION: Final = "Connection"


class Zone(enum.StrEnum):
    US = "US"
    EU = "EU"


ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=ENV_API_KEY,
        show_default=False,
        help="Project API key.",
        rich_help_panel=_CONNECTION,
    ),
]
ServerZoneOption = Annotated[
    Zone,
    typer.Option(
        "--server-zone",
        envvar=ENV_SERVER_ZONE,
        case_sensitive=False,
        help="Amplitude data center (ignored with --server-url).",
        rich_help_panel=_CONNECTION,
    ),
]
ServerUrlOption = Annotated[
    str | None,
    typer.Option(
        "--server-url",
        envvar=ENV_SERVER_URL,
        show_default=False,
        help="Identify API URL, e.g. an emulator's http://127.0.0.1:8787/identify.",
        rich_help_panel=_CONNECTION,
    ),
]
SecretKeyOption = Annotated[
    str | None,
    typer.Option(
        "--secret-key",
        envvar=ENV_SECRET_KEY,
        show_default=False,
        help="Project secret key for the User Profile API.",
        rich_help_panel=_CONNECTION,
    ),
]
ProfileUrlOption = Annotated[
    str | None,
    typer.Option(
        "--server-url",
        envvar=ENV_PROFILE_URL,
        show_default=False,
        help="User Profile API URL, e.g. an emulator's http://127.0.0.1:8787/v1/userprofile.",
        rich_help_panel=_CONNECTION,
    ),
]


@dataclass(frozen=True)
class IdentifyTarget:
    """Where identify requests go, and with which key (hidden from the repr)."""

    api_key: str = field(repr=False)
    server_zone: Literal["US", "EU"]
    server_url: str | None

    def describe(self) -> str:
        return self.server_url or f"Amplitude {self.server_zone}"


@dataclass(frozen=True)
class ProfileTarget:
    secret_key: str = field(repr=False)
    server_url: str | None


def identify_target(api_key: str | None, zone: Zone, server_url: str | None) -> IdentifyTarget:
    if not api_key or not api_key.strip():
        raise typer.BadParameter(
            f"an API key is needed: pass --api-key or set {ENV_API_KEY}",
            param_hint="--api-key",
        )
    return IdentifyTarget(api_key.strip(), "EU" if zone is Zone.EU else "US", server_url or None)


def profile_target(secret_key: str | None, server_url: str | None) -> ProfileTarget:
    if not secret_key or not secret_key.strip():
        raise typer.BadParameter(
            f"a secret key is needed: pass --secret-key or set {ENV_SECRET_KEY}",
            param_hint="--secret-key",
        )
    return ProfileTarget(secret_key.strip(), server_url or None)
