"""/identify over HTTP: body kinds, the docs example, every error status with its body."""

from __future__ import annotations

import json
import urllib.parse

import aiohttp
from emulator_helpers import KEY, identify

from amplitude_async.emulator import Emulator


async def test_docs_example_sent_as_is(emu: Emulator, http: aiohttp.ClientSession) -> None:
    # Amplitude's example, byte for byte what `curl --data-urlencode` sends.
    identification = (
        '[{"user_id":"datamonster@gmail.com", "user_properties":'
        '{"Cohort":"Test A", "gender":"male", "interests":["chess","football","music"]}}]'
    )
    body = (
        "api_key="
        + urllib.parse.quote_plus(KEY)
        + "&identification="
        + urllib.parse.quote_plus(identification)
    )
    async with http.post(
        emu.identify_url,
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert (response.status, await response.text()) == (200, "success")
    assert emu.user("datamonster@gmail.com") == {
        "Cohort": "Test A",
        "gender": "male",
        "interests": ["chess", "football", "music"],
    }


async def test_operations_over_the_wire(emu: Emulator, http: aiohttp.ClientSession) -> None:
    await identify(
        http,
        emu,
        {"user_id": "user-1", "user_properties": {"$set": {"plan": "free"}, "$add": {"logins": 1}}},
    )
    status, text = await identify(
        http,
        emu,
        [
            {
                "user_id": "user-1",
                "user_properties": {"$set": {"plan": "pro"}, "$append": {"tags": "a"}},
            },
            {
                "user_id": "user-1",
                "user_properties": {"$add": {"logins": 2}, "$prepend": {"tags": "z"}},
            },
        ],
    )
    assert (status, text) == (200, "success")
    assert emu.user("user-1") == {"plan": "pro", "logins": 3, "tags": ["z", "a"]}
    assert [(a.request, a.index, a.user_id) for a in emu.applied] == [
        (1, 0, "user-1"),
        (2, 0, "user-1"),
        (2, 1, "user-1"),
    ]


async def test_json_body_is_refused_unless_allowed(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # Identify API docs: "The body must be form-data or x-www-form-urlencoded."
    one = {"user_id": "user-json", "user_properties": {"$set": {"via": "json"}}}
    async with http.post(emu.identify_url, json={"api_key": KEY, "identification": [one]}) as r:
        assert (r.status, await r.json()) == (400, {"code": 400, "error": "missing_event"})
    assert emu.users() == {}
    async with Emulator(api_keys=[KEY], identify_json_body=True) as lenient:
        body = {"api_key": KEY, "identification": [one]}
        async with http.post(lenient.identify_url, json=body) as r:
            assert (r.status, await r.text()) == (200, "success")
        # identification may also be a JSON string inside the JSON body.
        body = {"api_key": KEY, "identification": json.dumps(one)}
        async with http.post(lenient.identify_url, json=body) as r:
            assert r.status == 200
        assert lenient.users() == {"user-json": {"via": "json"}}


async def test_multipart_and_get_bodies(emu: Emulator, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("api_key", KEY)
    form.add_field(
        "identification",
        json.dumps({"user_id": "user-multi", "user_properties": {"via": "multipart"}}),
        content_type="application/json",
    )
    form.add_field("pad", b"\x00\x01", filename="x.bin")  # forces multipart/form-data
    async with http.post(emu.identify_url, data=form) as r:
        assert (r.status, await r.text()) == (200, "success")
    params = {
        "api_key": KEY,
        "identification": json.dumps({"user_id": "user-get", "user_properties": {"via": "get"}}),
    }
    async with http.get(emu.identify_url, params=params) as r:
        assert (r.status, await r.text()) == (200, "success")
    assert emu.users() == {
        "user-multi": {"via": "multipart"},
        "user-get": {"via": "get"},
    }


#: The official SDKs recognise a wrong key by this prefix (Amplitude-Python processor.py).
INVALID_KEY = {"code": 400, "error": "Invalid API key: the key is not known to this emulator"}


async def test_unknown_and_missing_api_key(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, text = await identify(http, emu, {"user_id": "user-1"}, api_key="wrong")
    assert (status, json.loads(text)) == (400, INVALID_KEY)
    assert "wrong" not in text  # the key is a secret: never echoed
    async with http.post(emu.identify_url, data={"identification": "[]"}) as r:
        assert (r.status, await r.json()) == (400, INVALID_KEY)
    assert emu.users() == {}


async def test_any_key_is_accepted_when_none_configured(http: aiohttp.ClientSession) -> None:
    async with Emulator() as emu:
        assert await identify(http, emu, {"user_id": "user-1"}, api_key="anything") == (
            200,
            "success",
        )
        status, text = await identify(http, emu, {"user_id": "user-1"}, api_key="")
        assert (status, json.loads(text)) == (400, INVALID_KEY)


async def test_missing_or_malformed_identification(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    expected = {"code": 400, "error": "missing_event"}
    for data in (
        {"api_key": KEY},
        {"api_key": KEY, "identification": "not json"},
        {"api_key": KEY, "identification": "[]"},
        {"api_key": KEY, "identification": "42"},
        {"api_key": KEY, "identification": '"text"'},
    ):
        async with http.post(emu.identify_url, data=data) as r:
            assert (r.status, await r.json()) == (400, expected), data


async def test_invalid_items_name_their_indices_and_nothing_is_applied(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    items = [
        {"user_id": "user-ok", "user_properties": {"$set": {"a": 1}}},
        {"user_properties": {"$set": {"a": 1}}},  # no id
        {"user_id": "null"},  # placeholder
        {"user_id": "abc"},  # shorter than 5, and no other id
        {"device_id": "undefined"},  # placeholder device
        {"user_id": "user-mix", "user_properties": {"$set": {"a": 1}, "plain": 2}},  # mixed
        {"user_id": "user-deep", "user_properties": {"$set": {"d": _nested(40)}}},  # too deep
        {"user_id": "user-op", "user_properties": {"$bogus": {"a": 1}}},  # unknown op
        {"user_id": "user-add", "user_properties": {"$add": {"n": "many"}}},  # $add NaN
        "not an object",
        {"user_id": "user-plat", "platform": 7},
        {"user_id": 12345},
    ]
    async with http.post(
        emu.identify_url, data={"api_key": KEY, "identification": json.dumps(items)}
    ) as r:
        status, body = r.status, await r.json()
    assert status == 400
    assert body["code"] == 400
    assert body["events_with_missing_fields"] == {"user_id": [1]}
    assert body["events_with_invalid_id_lengths"] == {"user_id": [3]}
    assert body["events_with_invalid_fields"] == {
        "user_id": [2, 11],
        "device_id": [4],
        "user_properties": [5, 6, 7, 8],
        "event": [9],
        "platform": [10],
    }
    assert body["problems"]["2"] == "user_id 'null' is a placeholder id that Amplitude rejects"
    assert (
        body["problems"]["5"]
        == "operations cannot be mixed with plain properties; put them inside $set"
    )
    assert body["problems"]["6"] == "$set: property 'd': nesting deeper than 40 levels"
    # "Invalid field values on some events" is one of the 400 texts the HTTP V2 docs list.
    assert body["error"] == "Invalid field values on some events"
    assert body["problems"]["1"].startswith("an identification needs")
    assert emu.users() == {}
    assert emu.applied == []
    assert emu.stats().rejected_items == 11


async def test_nesting_up_to_40_is_accepted(emu: Emulator, http: aiohttp.ClientSession) -> None:
    item = {"user_id": "user-deep", "user_properties": {"$set": {"d": _nested(39)}}}
    assert await identify(http, emu, [item]) == (200, "success")
    assert emu.user("user-deep") == {"d": _nested(39)}


async def test_min_id_length_option(emu: Emulator, http: aiohttp.ClientSession) -> None:
    data = {
        "api_key": KEY,
        "identification": '[{"user_id": "abc"}]',
        "options": '{"min_id_length": 3}',
    }
    async with http.post(emu.identify_url, data=data) as r:
        assert (r.status, await r.text()) == (200, "success")
    assert emu.user("abc") == {}


async def test_too_many_items_and_too_large_body(http: aiohttp.ClientSession) -> None:
    async with Emulator(max_items=3, max_body_bytes=2_000) as emu:
        items = [{"user_id": f"user-{i}"} for i in range(4)]
        assert await identify(http, emu, items) == (413, '{"code":413,"error":"Payload too large"}')
        big = [{"user_id": "user-1", "user_properties": {"$set": {"x": "y" * 3000}}}]
        assert await identify(http, emu, big) == (413, '{"code":413,"error":"Payload too large"}')
        assert emu.users() == {}
        assert emu.stats().by_status == {413: 2}


async def test_url_too_long(emu: Emulator, http: aiohttp.ClientSession) -> None:
    params = {
        "api_key": KEY,
        "identification": json.dumps({"user_id": "user-1", "user_properties": {"x": "y" * 9000}}),
    }
    async with http.get(emu.identify_url, params=params) as r:
        assert (r.status, await r.json()) == (414, {"code": 414, "error": "URI Too Long"})
    assert emu.user("user-1") is None


async def test_user_and_device_are_linked(emu: Emulator, http: aiohttp.ClientSession) -> None:
    # A device first seen anonymously is adopted by the user it is later identified with.
    await identify(
        http, emu, {"device_id": "device-1", "user_properties": {"$set": {"anon": True}}}
    )
    await identify(
        http,
        emu,
        {
            "user_id": "user-1",
            "device_id": "device-1",
            "user_properties": {"$set": {"plan": "pro"}},
        },
    )
    await identify(http, emu, {"device_id": "device-1", "user_properties": {"$add": {"visits": 1}}})
    assert emu.user("user-1") == {"anon": True, "plan": "pro", "visits": 1}
    assert emu.device("device-1") == emu.user("user-1")
    record = emu.record(user_id="user-1")
    assert record is not None
    assert record["device_ids"] == ["device-1"]
    assert emu.device("device-unknown") is None
    assert emu.stats().users == 1
    assert emu.stats().devices == 1


async def test_fields_and_groups_are_kept(emu: Emulator, http: aiohttp.ClientSession) -> None:
    await identify(
        http,
        emu,
        {
            "user_id": "user-1",
            "platform": "iOS",
            "country": "NO",
            "paying": True,
            "groups": {"org": "acme"},
        },
    )
    record = emu.record(user_id="user-1")
    assert record is not None
    assert record["fields"] == {"platform": "iOS", "country": "NO", "paying": True}
    assert record["groups"] == {"org": "acme"}


async def test_reset_forgets_everything(emu: Emulator, http: aiohttp.ClientSession) -> None:
    await identify(http, emu, {"user_id": "user-1", "user_properties": {"a": 1}})
    emu.reset()
    assert (emu.users(), emu.applied, emu.stats().requests) == ({}, [], 0)


def _nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value
