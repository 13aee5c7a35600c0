"""Security: no key in any log line, repr or error message (the fault matrix greps every
record it produced, see test_reliability_faults; here the cases a server can provoke);
HTTPS with certificate verification by default; the emulator binds loopback only."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Failed, FailureReason, Identify, ProfileClient
from amplitude_async.emulator import Emulator, EmulatorThread

from ..conftest import Request, ScriptedServer, fast_config
from .harness import KEY, SECRET, assert_no_secrets

# -- keys never shown ------------------------------------------------------------------------


def _echo(request: Request) -> web.Response:
    """A server (or a proxy) that echoes the request body in its errors, key included."""
    body = request.body.decode()
    if request.number % 3 == 0:
        return web.Response(status=400, text=f"bad request: {body}")
    if request.number % 3 == 1:
        return web.Response(status=500, text=json.dumps({"code": 500, "error": body}))
    return web.Response(status=503, text=body)


@pytest.mark.parametrize("encoding", ["form", "multipart"])
async def test_a_server_echoing_the_key_does_not_put_it_in_outcomes_or_logs(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    caplog.set_level(logging.DEBUG)
    server.responder = _echo
    cfg = fast_config(retry_deadline=0.3, encoding=encoding)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", i)) for i in range(6)
        ]
        await asyncio.wait_for(amp.flush(), 10)
        texts = [repr(amp), repr(amp.stats())]
    outcomes = [r.outcome for r in receipts]
    assert all(isinstance(o, Failed) for o in outcomes)
    assert any(KEY in r.body.decode() for r in server.requests)  # the echo did carry it
    texts += [repr(o) for o in outcomes] + [o.message for o in outcomes if isinstance(o, Failed)]
    texts += [record.getMessage() for record in caplog.records]
    assert assert_no_secrets(texts) > 10
    assert any("[redacted]" in text for text in texts)


async def test_errors_reprs_and_logs_never_show_the_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Wrong keys, bad input, closed clients, the profile client under errors."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with Emulator(api_keys=["another-key-entirely"], secret_key="another-secret") as emu:
        # The identify key is refused: every operation fails with auth.
        amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config())
        texts.append(repr(amp))
        async with amp:
            receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
            outcome = await asyncio.wait_for(_await(receipt), 5)
            texts += [repr(amp), repr(receipt), repr(amp.config)]
        assert isinstance(outcome, Failed) and outcome.reason is FailureReason.AUTH
        texts += [repr(outcome), outcome.message]
        for call in (
            lambda: amp.identify_nowait(Identify(user_id="user-00002")),
            lambda: AmplitudeClient(KEY, server_url="ftp://nowhere"),
            lambda: aa.ClientConfig(queue_max=-1),
            lambda: Identify(user_id="x").set("", 1),
        ):
            with pytest.raises(aa.AmplitudeError) as info:
                call()
            texts += [str(info.value), repr(info.value)]
        # The profile client: wrong secret (401), unknown user, a dead server.
        async with ProfileClient(SECRET, server_url=emu.profile_url, retry_deadline=0.2) as prof:
            texts.append(repr(prof))
            for user in ("user-00001", "nobody-known"):
                with pytest.raises(aa.AmplitudeError) as info:
                    await prof.get(user_id=user)
                texts += [str(info.value), repr(info.value)]
    async with ProfileClient(
        SECRET, server_url="http://127.0.0.1:9/v1/userprofile", retry_deadline=0.2
    ) as prof:
        with pytest.raises(aa.AmplitudeError) as info:
            await prof.get(user_id="user-00001")
        texts += [str(info.value), repr(info.value), repr(prof)]
    texts += [record.getMessage() for record in caplog.records]
    assert assert_no_secrets(texts) > 20


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt


# -- HTTPS with verification -----------------------------------------------------------------


async def test_https_is_the_default_and_certificates_are_verified() -> None:
    for zone, host in (("US", "api2.amplitude.com"), ("EU", "api.eu.amplitude.com")):
        amp = AmplitudeClient(KEY, server_zone=zone)  # type: ignore[arg-type]
        assert repr(amp).startswith(f"AmplitudeClient(server_url='https://{host}/identify'")
    assert ProfileClient(SECRET).server_url.startswith("https://profile-api.amplitude.com/")
    # The client's default transport is an AiohttpTransport: its session verifies.
    transport = aa.AiohttpTransport()
    try:
        connector = transport.session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        # aiohttp's default: verify certificates with the system's CAs (ssl=True).
        assert connector._ssl is True
    finally:
        await transport.aclose()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def tls_server(self_signed: tuple[Path, Path]) -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTPS /identify endpoint with a certificate nobody signed."""
    bodies: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="success")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed)
    app = web.Application()
    app.router.add_post("/identify", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/identify", bodies
    finally:
        await runner.cleanup()


async def test_an_untrusted_certificate_is_refused_and_nothing_is_sent(
    tls_server: tuple[str, list[bytes]],
) -> None:
    url, bodies = tls_server
    cfg = fast_config(retry_deadline=0.3)
    async with AmplitudeClient(KEY, server_url=url, config=cfg) as amp:
        receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        outcome = await asyncio.wait_for(_await(receipt), 10)
    assert isinstance(outcome, Failed) and outcome.reason is FailureReason.RETRIES_EXHAUSTED
    assert "certificate" in outcome.message.lower() or "ssl" in outcome.message.lower()
    assert bodies == []  # the key never left over an unverified connection


# -- the emulator stays on loopback ------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "example.com"])
def test_the_emulator_refuses_non_loopback_binds_unless_asked(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        Emulator(host=host)
    with pytest.raises(ValueError, match="allow_remote"):
        EmulatorThread(host=host).start()
    assert Emulator(host=host, allow_remote=True).host == host  # constructed, never started
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert Emulator(host=loopback).host == loopback


def test_the_emulator_command_refuses_a_public_bind() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "amplitude_async.emulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "allow-remote" in done.stderr or "allow_remote" in done.stderr
