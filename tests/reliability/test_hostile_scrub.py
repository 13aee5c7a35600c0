"""Issue 13, item 4: no secret leaves the package in any spelling, also not in part.

Before the fix: aiohttp's parse errors quote what the server sent (an echoed request,
key included) and reached the retry WARNING and ``Failed.message``; lowercase-escaped
spellings of the key (``%2b``) were not scrubbed; the profile client cut an error to
500 characters before scrubbing it, so the start of the secret survived.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
import urllib.parse
from collections.abc import Callable

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Failed, Identify

from ..conftest import fast_config
from .hostile import HostileServer

#: Characters that every escaping changes: "+", "/", "=" and a non-ASCII letter.
KEY = "hk+Y/z=9é-identify-key"
SECRET = "sk+Q/w=7é-profile-secret"


def spellings(secret: str) -> list[str]:
    """The secret as a server may send it back: raw, form-escaped (both cases, once and
    twice), JSON-escaped, and the first 5 characters of each (a cut-off secret)."""
    form = urllib.parse.quote_plus(secret, safe="")
    twice = urllib.parse.quote(form, safe="")
    json_ascii = json.dumps(secret)[1:-1]
    json_slash = json_ascii.replace("/", "\\/")
    full = [
        secret,
        form,
        _lower_hex(form),
        twice,
        _lower_hex(twice),
        json_ascii,
        re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), json_ascii),
        json_slash,
    ]
    return full + [s[:5] for s in full]


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def assert_clean(texts: list[str], secret: str) -> None:
    joined = "\n".join(texts)
    for spelling in spellings(secret):
        assert spelling not in joined, f"{spelling!r} leaked"


async def _raw_echo_server(
    reply: Callable[[bytes, bytes], bytes],
) -> tuple[asyncio.Server, str]:
    """A raw stream server: reads one request, answers ``reply(head, body)`` and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
            writer.write(reply(head, body))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _lowercase_escapes(data: bytes) -> bytes:
    return re.sub(rb"%[0-9A-F]{2}", lambda m: m.group(0).lower(), data)


async def test_aiohttp_parse_errors_quoting_the_request_do_not_leak_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server answers with the echoed form body as a header line: aiohttp's
    "Invalid header token" error quotes it, key and all, lowercase-escaped."""
    caplog.set_level(logging.DEBUG)

    def reply(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\n" + _lowercase_escapes(body) + b"\r\nContent-Length: 0\r\n\r\n"

    server, base = await _raw_echo_server(reply)
    async with server:
        cfg = fast_config(retry_deadline=0.2)
        async with AmplitudeClient(KEY, server_url=f"{base}/identify", config=cfg) as amp:
            receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
            outcome = await asyncio.wait_for(_await(receipt), 10)
    assert isinstance(outcome, Failed)
    texts = [outcome.message, repr(outcome)] + [r.getMessage() for r in caplog.records]
    assert "Invalid header" in outcome.message  # it did happen
    assert any("[redacted]" in t for t in texts)
    assert_clean(texts, KEY)


@pytest.mark.parametrize("status", [400, 503])
@pytest.mark.parametrize("spelling", range(8))
async def test_every_spelling_of_the_key_echoed_in_an_error_body_is_scrubbed(
    caplog: pytest.LogCaptureFixture, spelling: int, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = spellings(KEY)[spelling]

    def answer(number: int, request: web.Request) -> web.Response:
        # The key straddles the 300-character cut of a message: a scrub after the cut
        # would see only its start.
        return web.Response(status=status, text=f"{'p' * 290}echo {echoed} end")

    async with HostileServer(answer) as server:
        cfg = fast_config(retry_deadline=0.3)
        async with AmplitudeClient(KEY, server_url=server.identify_url, config=cfg) as amp:
            receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
            outcome = await asyncio.wait_for(_await(receipt), 10)
    assert isinstance(outcome, Failed)
    assert "echo [red" in outcome.message
    texts = [outcome.message] + [r.getMessage() for r in caplog.records]
    assert_clean(texts, KEY)


async def test_the_profile_client_scrubs_before_it_cuts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def answer(number: int, request: web.Request) -> web.Response:
        # The secret straddles the 500-character cut: "x" * 495 + secret.
        text = "x" * 495 + request.headers["Authorization"].removeprefix("Api-Key ")
        form = _lower_hex(urllib.parse.quote_plus(SECRET, safe=""))
        if number == 0:
            return web.Response(status=400, text=text)
        return web.Response(status=400, text=json.dumps({"error": f"bad key {form}"}))

    texts: list[str] = []
    async with (
        HostileServer(answer) as server,
        aa.ProfileClient(SECRET, server_url=server.profile_url) as prof,
    ):
        for user in ("user-00001", "user-00002"):
            with pytest.raises(aa.BadRequest) as info:
                await prof.get(user)
            texts += [str(info.value), repr(info.value)]
    assert "[red" in texts[0]
    texts += [r.getMessage() for r in caplog.records]
    assert_clean(texts, SECRET)


async def test_the_profile_client_transport_errors_do_not_carry_the_secret() -> None:
    """A status line echoing the Authorization header: aiohttp's "Bad status line"
    quotes it; neither the error nor its traceback may show the secret."""

    def reply(head: bytes, body: bytes) -> bytes:
        auth = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"auth"))
        return b"HTTZ/1.1 " + auth + b"\r\n\r\n"

    server, base = await _raw_echo_server(reply)
    async with (
        server,
        aa.ProfileClient(SECRET, server_url=f"{base}/v1/userprofile", retry_deadline=0.3) as prof,
    ):
        with pytest.raises(aa.TransportError) as info:
            await prof.get("user-00001")
    shown = "".join(traceback.format_exception(info.value))
    assert "status line" in shown.lower()  # it did happen
    assert_clean([str(info.value), repr(info.value), shown], SECRET)


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt
