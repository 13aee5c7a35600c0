"""Helpers shared by the emulator's tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from amplitude_async.emulator import Emulator

KEY = "test-api-key"
SECRET = "test-secret-key"


async def identify(
    http: aiohttp.ClientSession, emu: Any, identification: Any, api_key: str = KEY
) -> tuple[int, str]:
    """POST a form-urlencoded /identify (like curl --data-urlencode); (status, body)."""
    data = {"api_key": api_key, "identification": json.dumps(identification)}
    async with http.post(emu.identify_url, data=data) as response:
        return response.status, await response.text()


async def profile(
    http: aiohttp.ClientSession, emu: Any, headers: dict[str, str] | None = None, **params: str
) -> tuple[int, Any]:
    """GET /v1/userprofile (with the test secret unless ``headers``); (status, JSON or text)."""
    auth = {"Authorization": f"Api-Key {SECRET}"} if headers is None else headers
    async with http.get(emu.profile_url, params=params, headers=auth) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


__all__ = ["KEY", "SECRET", "Emulator", "identify", "profile"]
