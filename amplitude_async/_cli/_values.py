"""Turning command-line text into property values and NAME=VALUE pairs."""

from __future__ import annotations

import json
from typing import Any

import typer

__all__ = ["parse_pair", "parse_value"]


def parse_value(text: str) -> Any:
    """JSON where the text parses as JSON (``1``, ``true``, ``["a","b"]``), else the string.

    So ``plan=pro`` sets the string "pro", ``logins=1`` the number 1, and ``zip=02139``
    (not valid JSON) the string "02139".
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pair(text: str, option: str) -> tuple[str, str]:
    """``NAME=VALUE`` split at the first '='; a usage error names the option otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint=option)
    return name, value
