"""session=: the caller's aiohttp session is used and never closed; the clients' own
sessions honour proxy variables and send amplitude-async's User-Agent."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import amplitude_async
from amplitude_async import AmplitudeClient, ConfigurationError, Delivered, ProfileClient

from .conftest import ScriptedServer, fast_config, local_app, op

KEY = "session-api-key-0123456789"
SECRET = "session-secret-key"
USER_AGENT = f"amplitude-async/{amplitude_async.__version__}"


async def test_a_callers_session_is_used_and_left_open(server: ScriptedServer) -> None:
    async with aiohttp.ClientSession(headers={"X-Caller": "mine"}) as session:
        async with AmplitudeClient(
            KEY, server_url=server.url, config=fast_config(), session=session
        ) as amp:
            outcome = await (await amp.identify(op("user-00001", 1)))
        assert isinstance(outcome, Delivered)
        assert not session.closed  # the client closed, the caller's session did not
        (request,) = server.requests
        assert request.raw.headers["X-Caller"] == "mine"
        assert not request.raw.headers.get("User-Agent", "").startswith("amplitude-async")
        # Still usable by its owner.
        async with session.post(server.url, data=b"api_key=x&identification=[]") as answer:
            assert answer.status == 200


async def test_a_callers_session_that_raises_for_status_still_gets_classified(
    server: ScriptedServer,
) -> None:
    server.responder = lambda request: web.Response(status=400, text="bad user_id")
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        AmplitudeClient(
            KEY, server_url=server.url, config=fast_config(retry_deadline=1.0), session=session
        ) as amp,
    ):
        outcome = await (await amp.identify(op("user-00001", 1)))
    assert outcome.reason.value == "invalid"  # type: ignore[union-attr]


async def test_a_callers_decompressing_session_still_reads_a_gzip_answer_bounded(
    server: ScriptedServer,
) -> None:
    # A caller's session inflates answers by default (auto_decompress=True); the client
    # reads through its own bounded inflater instead, so the message survives intact and
    # a bomb could not be inflated whole through someone else's session.
    import gzip

    body = gzip.compress(b"bad user_id: " + b"x" * 2_000_000)
    server.responder = lambda request: web.Response(
        status=400, body=body, headers={"Content-Encoding": "gzip"}
    )
    async with (
        aiohttp.ClientSession() as session,
        AmplitudeClient(
            KEY, server_url=server.url, config=fast_config(retry_deadline=1.0), session=session
        ) as amp,
    ):
        outcome = await (await amp.identify(op("user-00001", 1)))
    assert outcome.reason.value == "invalid"  # type: ignore[union-attr]
    assert "bad user_id" in outcome.message  # type: ignore[union-attr]


async def test_the_clients_own_session_sends_the_user_agent(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        await (await amp.identify(op("user-00001", 1)))
    assert server.requests[0].raw.headers["User-Agent"] == USER_AGENT


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A forward proxy on 127.0.0.1 that answers every request itself; yields its URL and
    the request targets it saw (absolute URLs, as clients send them to a proxy)."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        if request.path == "/v1/userprofile":
            return web.json_response({"userData": {"user_id": request.query["user_id"]}})
        return web.Response(text="success")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_app(app) as url:
        yield url, seen


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_default_sessions_go_through_the_proxy_the_environment_names(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_url, seen = proxy
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    # Nothing listens on the target port: only the proxy can have answered.
    target = f"http://127.0.0.1:{unused_port()}"
    config = fast_config(retry_deadline=1.0)  # without the proxy: fail, do not hang
    async with AmplitudeClient(KEY, server_url=f"{target}/identify", config=config) as amp:
        outcome = await (await amp.identify(op("user-00001", 1)))
    assert isinstance(outcome, Delivered)
    async with ProfileClient(SECRET, server_url=f"{target}/v1/userprofile") as profiles:
        assert (await profiles.get("user-00001")).user_id == "user-00001"
    assert [url.split("?")[0] for url in seen] == [f"{target}/identify", f"{target}/v1/userprofile"]


async def test_profile_client_uses_a_callers_session_and_leaves_it_open(
    proxy: tuple[str, list[str]],
) -> None:
    proxy_url, seen = proxy  # here simply a server that answers profiles
    async with aiohttp.ClientSession() as session:
        async with ProfileClient(
            SECRET, server_url=f"{proxy_url}/v1/userprofile", session=session
        ) as profiles:
            assert (await profiles.get("user-00002")).user_id == "user-00002"
        assert not session.closed
    assert len(seen) == 1


async def test_the_profile_clients_own_session_sends_the_user_agent() -> None:
    agents: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        agents.append(request.headers.get("User-Agent", ""))
        return web.json_response({"userData": {"user_id": "user-00003"}})

    app = web.Application()
    app.router.add_get("/v1/userprofile", handle)
    async with (
        local_app(app) as url,
        ProfileClient(SECRET, server_url=f"{url}/v1/userprofile") as profiles,
    ):
        await profiles.get("user-00003")
    assert agents == [USER_AGENT]


async def test_a_bad_or_closed_session_is_refused_before_anything_opens() -> None:
    with pytest.raises(ConfigurationError, match=r"aiohttp\.ClientSession"):
        AmplitudeClient(KEY, session="not a session")  # type: ignore[arg-type]
    closed = aiohttp.ClientSession()
    await closed.close()
    with pytest.raises(ConfigurationError, match="closed"):
        ProfileClient(SECRET, session=closed)


async def test_no_proxy_exempts_the_server(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    agents: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        agents.append(request.headers.get("User-Agent", ""))
        return web.json_response({"userData": {"user_id": "user-00004"}})

    app = web.Application()
    app.router.add_get("/v1/userprofile", handle)
    async with (
        local_app(app) as url,
        ProfileClient(SECRET, server_url=f"{url}/v1/userprofile") as profiles,
    ):
        await profiles.get("user-00004")
    assert agents == [USER_AGENT] and seen == []  # straight to the server


async def test_netrc_credentials_for_the_server_do_not_clash_with_the_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp's trust_env would add these as an Authorization header next to the
    # profile client's own, and refuse the request (ValueError).
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    headers: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        headers.append(request.headers.get("Authorization", ""))
        return web.json_response({"userData": {"user_id": "user-00005"}})

    app = web.Application()
    app.router.add_get("/v1/userprofile", handle)
    async with (
        local_app(app) as url,
        ProfileClient(SECRET, server_url=f"{url}/v1/userprofile") as profiles,
    ):
        assert (await profiles.get("user-00005")).user_id == "user-00005"
    assert headers == [f"Api-Key {SECRET}"]


async def test_a_callers_session_closed_while_in_use_fails_operations_not_the_client(
    server: ScriptedServer,
) -> None:
    session = aiohttp.ClientSession()
    config = fast_config(retry_deadline=0.2)
    async with AmplitudeClient(KEY, server_url=server.url, config=config, session=session) as amp:
        await session.close()  # the owner closed it too early
        outcome = await (await amp.identify(op("user-00006", 1)))
        assert outcome.reason.value == "retries_exhausted"  # type: ignore[union-attr]
        assert "session" in outcome.message and "closed" in outcome.message  # type: ignore[union-attr]
        # The client is still open and working; only what it could not send failed.
        assert not amp.closed
    assert server.requests == []
