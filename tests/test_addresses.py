"""Addresses: own only, at most 20, exactly one default once any exists."""
from __future__ import annotations

import asyncio

import pytest

from flashsale import db
from flashsale.services import addresses

from tests.support.auth import login

BODY = {
    "receiver_name": "Li Lei", "phone": "138 0013 8000", "province": "Zhejiang", "city": "Hangzhou",
    "district": "Xihu", "detail_address": "18 Wensan Road",
}


@pytest.fixture
async def client(aiohttp_client, make_app):
    """The app without its background work, which these tests do not need."""
    return await aiohttp_client(make_app(background_tasks=False))


def without_times(address: dict) -> dict:
    return {k: v for k, v in address.items() if k not in ("created_at", "updated_at")}


async def add(client, headers, **changes):
    r = await client.post("/api/addresses", json={**BODY, **changes}, headers=headers)
    assert r.status == 201, await r.text()
    return (await r.json())["data"]["address"]


async def defaults_of(ctx, user_id: int) -> list[int]:
    rows = await db.fetch_all(ctx.db, "SELECT id FROM addresses WHERE user_id = %s AND is_default = 1", (user_id,))
    return [r["id"] for r in rows]


async def test_first_address_becomes_default(user_client):
    client, user, headers = user_client
    r = await client.post("/api/addresses", json=BODY, headers=headers)
    assert r.status == 201, await r.text()
    body = await r.json()
    address = body["data"]["address"]
    assert body["code"] == 201
    assert without_times(address) == {**BODY, "id": address["id"], "phone": "13800138000", "is_default": True}
    assert address["created_at"].endswith("Z")


async def test_list_shows_default_first_then_newest(user_client):
    client, user, headers = user_client
    first = await add(client, headers)
    second = await add(client, headers, receiver_name="Han Meimei")
    third = await add(client, headers, receiver_name="Wang Wu")
    r = await client.get("/api/addresses")
    assert r.status == 200
    items = (await r.json())["data"]["items"]
    assert [a["id"] for a in items] == [first["id"], third["id"], second["id"]]
    assert [a["is_default"] for a in items] == [True, False, False]


async def test_adding_with_is_default_moves_the_default(user_client, ctx):
    client, user, headers = user_client
    first = await add(client, headers)
    second = await add(client, headers, is_default=True)
    assert second["is_default"] is True
    assert await defaults_of(ctx, user["id"]) == [second["id"]]
    assert first["id"] != second["id"]


async def test_set_default_unsets_the_old_one(user_client, ctx):
    client, user, headers = user_client
    first = await add(client, headers)
    second = await add(client, headers)
    r = await client.post(f"/api/addresses/{second['id']}/default", headers=headers)
    assert r.status == 200, await r.text()
    assert (await r.json())["data"]["address"]["is_default"] is True
    assert await defaults_of(ctx, user["id"]) == [second["id"]]
    # setting the current default again is fine and changes nothing
    r = await client.post(f"/api/addresses/{second['id']}/default", headers=headers)
    assert r.status == 200
    assert await defaults_of(ctx, user["id"]) == [second["id"]]
    assert first["id"] not in await defaults_of(ctx, user["id"])


async def test_concurrent_set_default_leaves_exactly_one(user_client, ctx):
    client, user, headers = user_client
    ids = [(await add(client, headers))["id"] for _ in range(6)]
    results = await asyncio.gather(*(client.post(f"/api/addresses/{i}/default", headers=headers) for i in ids))
    assert [r.status for r in results] == [200] * 6
    assert len(await defaults_of(ctx, user["id"])) == 1


async def test_deleting_the_default_promotes_the_newest_remaining(user_client, ctx):
    client, user, headers = user_client
    first = await add(client, headers)
    second = await add(client, headers)
    third = await add(client, headers)
    r = await client.delete(f"/api/addresses/{first['id']}", headers=headers)
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "address deleted", "data": None}
    assert await defaults_of(ctx, user["id"]) == [third["id"]]
    r = await client.delete(f"/api/addresses/{second['id']}", headers=headers)
    assert r.status == 200
    assert await defaults_of(ctx, user["id"]) == [third["id"]]
    r = await client.delete(f"/api/addresses/{third['id']}", headers=headers)
    assert r.status == 200
    assert (await (await client.get("/api/addresses")).json())["data"]["items"] == []


async def test_update_changes_given_fields_and_keeps_the_rest(user_client):
    client, user, headers = user_client
    address = await add(client, headers)
    r = await client.put(f"/api/addresses/{address['id']}", json={"city": "Ningbo", "district": ""},
                         headers=headers)
    assert r.status == 200, await r.text()
    updated = (await r.json())["data"]["address"]
    assert without_times(updated) == {**without_times(address), "city": "Ningbo", "district": ""}


async def test_update_with_is_default_false_keeps_the_only_default(user_client, ctx):
    client, user, headers = user_client
    address = await add(client, headers)
    r = await client.put(f"/api/addresses/{address['id']}", json={"is_default": False}, headers=headers)
    assert r.status == 200, await r.text()
    assert await defaults_of(ctx, user["id"]) == [address["id"]]


async def test_update_with_is_default_true_moves_the_default(user_client, ctx):
    client, user, headers = user_client
    await add(client, headers)
    second = await add(client, headers)
    r = await client.put(f"/api/addresses/{second['id']}", json={"is_default": True}, headers=headers)
    assert r.status == 200, await r.text()
    assert await defaults_of(ctx, user["id"]) == [second["id"]]


async def test_invalid_fields_are_400_with_every_error(user_client, ctx):
    client, user, headers = user_client
    r = await client.post("/api/addresses", json={"receiver_name": "", "phone": "call me", "province": 5,
                                                  "city": "x" * 65, "detail_address": None},
                          headers=headers)
    assert r.status == 400
    assert await r.json() == {"code": 400, "msg": "Some fields are not valid.", "data": {
        "reason": "validation",
        "errors": {
            "receiver_name": "This field is required.",
            "phone": "Not a valid phone number.",
            "province": "Must be text.",
            "city": "Must be 1 to 64 characters.",
            "detail_address": "This field is required.",
        },
    }}
    assert await addresses.list_addresses(ctx, user["id"]) == []


async def test_invalid_update_changes_nothing(user_client):
    client, user, headers = user_client
    address = await add(client, headers)
    r = await client.put(f"/api/addresses/{address['id']}", json={"phone": "no", "city": "Ningbo"},
                         headers=headers)
    assert r.status == 400
    assert (await r.json())["data"]["errors"] == {"phone": "Not a valid phone number."}
    r = await client.get(f"/api/addresses/{address['id']}")
    assert (await r.json())["data"]["address"] == address


async def test_twenty_is_the_limit(user_client):
    client, user, headers = user_client
    for _ in range(addresses.MAX_PER_USER):
        await add(client, headers)
    r = await client.post("/api/addresses", json=BODY, headers=headers)
    assert r.status == 409
    body = await r.json()
    assert body["data"] == {"reason": "limit_reached"}


async def test_concurrent_adds_never_pass_the_limit(user_client, ctx):
    client, user, headers = user_client
    for _ in range(addresses.MAX_PER_USER - 3):
        await add(client, headers)
    results = await asyncio.gather(*(client.post("/api/addresses", json=BODY, headers=headers)
                                     for _ in range(10)))
    assert sorted(r.status for r in results) == [201] * 3 + [409] * 7
    count = await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM addresses WHERE user_id = %s", (user["id"],))
    assert count == addresses.MAX_PER_USER
    assert len(await defaults_of(ctx, user["id"])) == 1


async def test_another_users_address_is_404_for_read_and_write(user_client, factory, ctx):
    client, user, headers = user_client
    other = await factory.user()
    theirs = await factory.address(other["id"])
    for method, path, body in (
        ("GET", f"/api/addresses/{theirs}", None),
        ("PUT", f"/api/addresses/{theirs}", {"city": "Mine now"}),
        ("DELETE", f"/api/addresses/{theirs}", None),
        ("POST", f"/api/addresses/{theirs}/default", None),
    ):
        r = await client.request(method, path, json=body, headers=headers)
        assert r.status == 404, (method, await r.text())
        assert (await r.json())["data"] == {"reason": "not_found"}
    row = await db.fetch_one(ctx.db, "SELECT city, is_default FROM addresses WHERE id = %s", (theirs,))
    assert row == {"city": "Hangzhou", "is_default": 1}
    assert (await (await client.get("/api/addresses")).json())["data"]["items"] == []


async def test_anonymous_is_401(client):
    r = await client.get("/api/addresses")
    assert r.status == 401
    r = await client.post("/api/addresses", json=BODY)
    assert r.status == 401


async def test_write_without_csrf_token_is_403(user_client):
    client, user, headers = user_client
    r = await client.post("/api/addresses", json=BODY)
    assert r.status == 403
    assert (await r.json())["data"] == {"reason": "csrf"}


async def test_address_pages_add_edit_default_delete(client, factory, ctx):
    user = await factory.user()
    token = await login(client, user["username"])
    r = await client.get("/addresses")
    assert r.status == 200
    assert 'data-testid="no-addresses"' in await r.text()

    form = {**BODY, "csrf_token": token}
    r = await client.post("/addresses", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    assert r.headers["Location"] == "/addresses"
    r = await client.post("/addresses", data={**form, "receiver_name": "Han Meimei"}, allow_redirects=False)
    assert r.status == 303
    first, second = sorted(a["id"] for a in await addresses.list_addresses(ctx, user["id"]))
    html = await (await client.get("/addresses")).text()
    assert "Address added." in html and "Han Meimei" in html and "Li Lei" in html

    r = await client.get(f"/addresses/{second}/edit")
    assert r.status == 200 and "Han Meimei" in await r.text()
    r = await client.post(f"/addresses/{second}", data={**form, "receiver_name": "Han Meimei",
                                                        "city": "Suzhou"}, allow_redirects=False)
    assert r.status == 303
    assert (await addresses.get_address(ctx, user["id"], second))["city"] == "Suzhou"

    r = await client.post(f"/addresses/{second}/default", data={"csrf_token": token}, allow_redirects=False)
    assert r.status == 303
    assert await defaults_of(ctx, user["id"]) == [second]

    r = await client.post(f"/addresses/{second}/delete", data={"csrf_token": token}, allow_redirects=False)
    assert r.status == 303
    assert await defaults_of(ctx, user["id"]) == [first]


async def test_address_page_form_errors_rerender_with_messages(client, factory, ctx):
    user = await factory.user()
    token = await login(client, user["username"])
    r = await client.post("/addresses", data={**BODY, "phone": "nope", "city": "", "csrf_token": token})
    assert r.status == 400
    html = await r.text()
    assert "Not a valid phone number." in html and "This field is required." in html
    assert 'value="Li Lei"' in html  # what was typed stays
    assert await addresses.list_addresses(ctx, user["id"]) == []


async def test_address_page_redirects_to_a_same_site_next(client, factory):
    user = await factory.user()
    token = await login(client, user["username"])
    r = await client.post("/addresses", data={**BODY, "next": "/checkout/1?quantity=2", "csrf_token": token},
                          allow_redirects=False)
    assert r.headers["Location"] == "/checkout/1?quantity=2"
    r = await client.post("/addresses", data={**BODY, "next": "https://evil.example/", "csrf_token": token},
                          allow_redirects=False)
    assert r.headers["Location"] == "/"


async def test_address_pages_of_another_user_are_404(client, factory, ctx):
    user = await factory.user()
    other = await factory.user()
    theirs = await factory.address(other["id"])
    token = await login(client, user["username"])
    assert (await client.get(f"/addresses/{theirs}/edit")).status == 404
    for path in (f"/addresses/{theirs}", f"/addresses/{theirs}/delete", f"/addresses/{theirs}/default"):
        r = await client.post(path, data={**BODY, "city": "Mine", "csrf_token": token}, allow_redirects=False)
        assert r.status == 404, path
    assert (await db.fetch_one(ctx.db, "SELECT city FROM addresses WHERE id = %s", (theirs,)))["city"] == "Hangzhou"


async def test_anonymous_address_page_redirects_to_login(client):
    r = await client.get("/addresses", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/login?next=/addresses"
