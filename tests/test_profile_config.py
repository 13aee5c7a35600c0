"""A ProfileClient's settings and secret key, checked without a client."""

from __future__ import annotations

from typing import Any

import pytest

from amplitude_async import ConfigurationError
from amplitude_async._profile_config import DEFAULT_PROFILE_URL, ProfileConfig, Secret

SECRET = "sk-live-7f3a9c2e11d04b5e"
GOOD: dict[str, Any] = {
    "server_url": None,
    "timeout": 5,
    "retry_base": 0.1,
    "retry_cap": 2,
    "retry_deadline": 10,
    "max_connections": 64,
}


def test_checked_settings_are_floats_with_the_default_url() -> None:
    config = ProfileConfig.checked(**GOOD)
    assert config == ProfileConfig(
        url=DEFAULT_PROFILE_URL,
        timeout=5.0,
        retry_base=0.1,
        retry_cap=2.0,
        retry_deadline=10.0,
        max_connections=64,
    )
    assert type(config.timeout) is float


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"server_url": "ftp://x/y"}, "server_url must be an http(s) URL with a host"),
        ({"server_url": "https://u:p@h/x"}, "server_url must not carry credentials, a query or a fragment"),
        ({"server_url": "https://h/x?k=v"}, "server_url must not carry credentials, a query or a fragment"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"retry_cap": True}, "retry_cap must be a positive number of seconds, got True"),
        ({"retry_deadline": float("nan")}, "retry_deadline must be a positive number of seconds, got nan"),
        ({"max_connections": 0}, "max_connections must be a positive int, got 0"),
        # Several bad: the first in the constructor's order is reported.
        ({"retry_base": -1, "timeout": "5", "max_connections": 0}, "timeout must be a positive number of seconds, got '5'"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_first_bad_one(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ProfileConfig.checked(**{**GOOD, **change})
    assert str(info.value) == message


def test_the_secret_is_hidden_and_sent_only_as_its_header() -> None:
    secret = Secret(SECRET)
    assert repr(secret) == str(secret) == "<secret>"
    assert secret.headers() == {"Authorization": f"Api-Key {SECRET}", "Accept": "application/json"}
    assert SECRET not in secret.scrub(f"echo: {SECRET}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "secret_key must be a non-empty string"),
        (None, "secret_key must be a non-empty string"),
        (f"{SECRET}\r\nX-Evil: 1", "secret_key must not contain whitespace"),
    ],
)
def test_a_bad_secret_key_is_refused_without_echoing_it(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Secret(value)
    assert str(info.value) == message
