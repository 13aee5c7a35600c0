"""Issue 13, item 9: the emulator applies a request all or nothing, answers bad input
with a 4xx (never a 500), and counts every answer in its stats.

Before the fix: an int above 1e308 ``$add``-ed to a float raised OverflowError half way
through a request (the identifications before it were applied, the answer was aiohttp's
own 500, not counted), and a body nested thousands deep answered 500 at every entry
point (msgspec's RecursionError escaped the decoder).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator

import aiohttp
import pytest

from amplitude_async.emulator import Emulator

KEY = "hostile-key-000999"
HUGE = "1" + "0" * 400  # a JSON integer no double can hold
DEEP = "[" * 5000 + "]" * 5000
#: Deep enough for msgspec's recursion limit, short enough for aiohttp's request line.
DEEP_QUERY = "[" * 1200 + "]" * 1200


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY]) as emulator:
        yield emulator


def _form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode()


async def test_a_request_with_an_overflowing_add_applies_nothing_and_is_a_400(
    emu: Emulator,
) -> None:
    async with aiohttp.ClientSession() as http:
        first = json.dumps({"user_id": "user-00002", "user_properties": {"$set": {"f": 1.5}}})
        async with http.post(
            emu.identify_url, data=_form(api_key=KEY, identification=first)
        ) as response:
            assert response.status == 200
        # A good identification first, then the overflow: neither may be applied.
        items = (
            '[{"user_id":"user-00001","user_properties":{"$set":{"a":1}}},'
            '{"user_id":"user-00002","user_properties":{"$add":{"f":' + HUGE + "}}}]"
        )
        async with http.post(
            emu.identify_url, data=_form(api_key=KEY, identification=items)
        ) as response:
            status = response.status
            body = await response.text()
        # And a $set of such a number, which a later float $add would overflow on.
        bad_set = '{"user_id":"user-00003","user_properties":{"$set":{"n":' + HUGE + "}}}"
        async with http.post(
            emu.identify_url, data=_form(api_key=KEY, identification=bad_set)
        ) as response:
            assert response.status == 400
    assert status == 400, body
    assert emu.user("user-00001") is None  # all or nothing
    assert emu.user("user-00002") == {"f": 1.5}
    assert emu.user("user-00003") is None
    stats = emu.stats()
    assert stats.by_status == {200: 1, 400: 2}
    assert sum(stats.by_status.values()) == stats.requests == 3


async def test_deep_nesting_is_a_4xx_at_every_entry_point(emu: Emulator) -> None:
    wrapped = '{"user_id":"user-00001","user_properties":{"$set":{"x":' + DEEP + "}}}"
    boundary = "hostileboundary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n{KEY}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="identification"\r\n\r\n'
        f"{DEEP}\r\n--{boundary}--\r\n"
    )
    base = emu.identify_url.rsplit("/", 1)[0]
    calls = [
        ("POST", emu.identify_url, _form(api_key=KEY, identification=DEEP), None),
        ("POST", emu.identify_url, _form(api_key=KEY, identification=wrapped), None),
        (
            "POST",
            emu.identify_url,
            _form(api_key=KEY, identification=wrapped[:-1] + "}", options=DEEP),
            None,
        ),
        (
            "POST",
            emu.identify_url,
            json.dumps({"api_key": KEY}).encode()[:-1]
            + b',"identification":'
            + DEEP.encode()
            + b"}",
            "application/json",
        ),
        (
            "GET",
            emu.identify_url + "?" + _form(api_key=KEY, identification=DEEP_QUERY).decode(),
            None,
            None,
        ),
        ("POST", emu.identify_url, multipart.encode(), f"multipart/form-data; boundary={boundary}"),
        (
            "POST",
            f"{base}/2/httpapi",
            b'{"api_key":"' + KEY.encode() + b'","events":' + DEEP.encode() + b"}",
            "application/json",
        ),
        ("POST", f"{base}/batch", DEEP.encode(), "application/json"),
    ]
    statuses = []
    async with aiohttp.ClientSession() as http:
        for method, url, data, ctype in calls:
            headers = {"Content-Type": ctype} if ctype else {}
            async with http.request(method, url, data=data, headers=headers) as response:
                statuses.append(response.status)
    assert all(400 <= s < 500 for s in statuses), statuses
    stats = emu.stats()
    assert sum(stats.by_status.values()) == stats.requests == len(calls)
    assert stats.applied == 0
