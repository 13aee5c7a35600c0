"""The clients follow Amplitude's documentation (issue 14, item 8).

Sources are named per test; docs/emulator.md, "Fidelity", lists them all.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from amplitude_async import (
    AmplitudeClient,
    Delivered,
    Identify,
)
from amplitude_async.emulator import Emulator

from .conftest import Request, ScriptedServer, fast_config

KEY = "test-api-key-0123456789"


# -- 8. min_id_length travels as the Identify API's options field ---------------------------


def _options(request: Request) -> dict[str, object] | None:
    if request.content_type.startswith("multipart/"):
        marker = b'name="options"\r\n\r\n'
        if marker not in request.body:
            return None
        raw = request.body.split(marker, 1)[1].split(b"\r\n", 1)[0]
        return json.loads(raw)  # type: ignore[no-any-return]
    fields = urllib.parse.parse_qs(request.body.decode("ascii"))
    return json.loads(fields["options"][0]) if "options" in fields else None


@pytest.mark.parametrize("encoding", ["form", "multipart"])
async def test_min_id_length_is_sent_as_options_when_not_the_default(
    server: ScriptedServer, encoding: str
) -> None:
    # HTTP V2 / Batch API docs, "Options": min_id_length "Overrides the default minimum
    # length of 5"; the Identify API takes the same options field.
    cfg = fast_config(min_id_length=3, encoding=encoding)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        outcome = await (await amp.identify(Identify(user_id="abc").set("plan", "pro")))
    assert outcome.ok
    (request,) = server.requests
    assert _options(request) == {"min_id_length": 3}
    assert request.identifications == [
        {"user_id": "abc", "user_properties": {"$set": {"plan": "pro"}}}
    ]


async def test_the_default_min_id_length_sends_no_options(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        assert (await (await amp.identify(Identify(user_id="user-1").set("a", 1)))).ok
    (request,) = server.requests
    assert _options(request) is None


async def test_min_id_length_3_delivers_a_3_character_user_end_to_end() -> None:
    # Before the fix the emulator (as Amplitude) applied its default of 5: the short id
    # was refused and the operation ended as Failed(invalid).
    async with Emulator(api_keys=[KEY]) as emu:
        cfg = fast_config(min_id_length=3)
        async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
            outcome = await (await amp.identify(Identify(user_id="abc").set("plan", "pro")))
        assert isinstance(outcome, Delivered)
        assert emu.user("abc") == {"plan": "pro"}
