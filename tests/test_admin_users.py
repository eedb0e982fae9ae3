"""The admin users API: search, view, edit, ban, delete, and the guards around the last admin."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from flashsale import db
from flashsale.errors import LastAdmin
from flashsale.jsonio import iso
from flashsale.services import accounts

from tests.support.auth import login
from tests.support.factory import unique
from tests.support.waiting import wait_until


def admin_view(user: dict, **changes) -> dict:
    """The admin API's user object for a factory-made user."""
    base = {k: v for k, v in user.items() if k != "password"}
    return {**base, "created_at": iso(user["created_at"]), "is_active": True, **changes}


INSERT_ORDER = (
    "INSERT INTO orders (order_number, user_id, goods_id, quantity, unit_price, total_amount, "
    "payment_method, receiver_name, phone, province, city, detail_address) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
# -> how many statements on this run's database wait for a row lock
LOCK_WAITS = (
    "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
    "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
    "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()")


def order_row(user_id: int, goods_id: int) -> tuple:
    return (unique("T"), user_id, goods_id, 1, Decimal("19.90"), Decimal("19.90"), "alipay",
            "Test Receiver", "13800000000", "Zhejiang", "Hangzhou", "1 Test Road")


async def insert_order(ctx, factory, user_id: int) -> int:
    goods_id = await factory.goods()
    async with db.transaction(ctx.db) as cur:
        await cur.execute(INSERT_ORDER, order_row(user_id, goods_id))
        return cur.lastrowid


@pytest.fixture
async def only_admins(ctx):
    """Deactivate every admin but the ones a test names; reactivate them afterwards."""
    parked: list[int] = []

    async def keep(*ids: int) -> None:
        marks = ", ".join(["%s"] * len(ids))
        rows = await db.fetch_all(
            ctx.db, f"SELECT id FROM users WHERE role = 'admin' AND is_active = 1 AND id NOT IN ({marks})", ids)
        parked.extend(r["id"] for r in rows)
        if parked:
            marks = ", ".join(["%s"] * len(parked))
            await db.execute(ctx.db, f"UPDATE users SET is_active = 0 WHERE id IN ({marks})", parked)

    yield keep
    if parked:
        marks = ", ".join(["%s"] * len(parked))
        await db.execute(ctx.db, f"UPDATE users SET is_active = 1 WHERE id IN ({marks})", parked)


# --- list and view ----------------------------------------------------------------------------

async def test_list_searches_by_username_prefix_and_paginates(admin_client, factory):
    client, admin, headers = admin_client
    stem = unique("srch")
    users = [await factory.user(username=f"{stem}_{i}") for i in range(3)]
    r = await client.get("/api/admin/users", params={"q": stem, "per_page": "2"})
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "ok", "data": {
        "items": [admin_view(users[2]), admin_view(users[1])],
        "page": 1, "per_page": 2, "total": 3, "pages": 2,
    }}
    r = await client.get("/api/admin/users", params={"q": stem, "per_page": "2", "page": "2"})
    assert (await r.json())["data"] == {"items": [admin_view(users[0])], "page": 2, "per_page": 2,
                                        "total": 3, "pages": 2}


async def test_list_searches_email_and_phone(admin_client, factory):
    client, admin, headers = admin_client
    user = await factory.user(email=unique("mail") + "@shop.example", phone="+4470" + unique("")[-8:].replace("_", "0"))
    for q in (user["email"][:12], user["phone"]):
        r = await client.get("/api/admin/users", params={"q": q})
        assert [u["id"] for u in (await r.json())["data"]["items"]] == [user["id"]], q


async def test_list_treats_like_wildcards_as_text(admin_client):
    client, admin, headers = admin_client
    for q in ("%", "_"):
        r = await client.get("/api/admin/users", params={"q": q})
        assert (await r.json())["data"]["total"] == 0


async def test_list_without_query_shows_everyone_and_caps_per_page(admin_client, factory):
    client, admin, headers = admin_client
    await factory.user()
    r = await client.get("/api/admin/users", params={"per_page": "1000", "page": "-3"})
    data = (await r.json())["data"]
    assert (data["page"], data["per_page"]) == (1, 100)
    assert data["total"] >= 2
    assert data["pages"] == -(-data["total"] // 100)
    assert admin["id"] in [u["id"] for u in data["items"]]


async def test_get_one_user(admin_client, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    r = await client.get(f"/api/admin/users/{user['id']}")
    assert r.status == 200
    assert await r.json() == {"code": 200, "msg": "ok", "data": {"user": admin_view(user)}}


async def test_unknown_user_is_404(admin_client):
    client, admin, headers = admin_client
    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(method, "/api/admin/users/999999999", json={}, headers=headers)
        assert r.status == 404, method
        assert await r.json() == {"code": 404, "msg": "Not found.", "data": {"reason": "not_found"}}


# --- edit -------------------------------------------------------------------------------------

async def test_ban_ends_the_users_session_and_login(admin_client, aiohttp_client, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    shopper = await aiohttp_client(client.server)
    await login(shopper, user["username"])
    r = await client.put(f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=headers)
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "user updated", "data": {"user": admin_view(user, is_active=False)}}
    assert (await shopper.get("/api/me")).status == 401
    r = await shopper.post("/api/auth/login", json={"username": user["username"], "password": user["password"]})
    assert r.status == 403
    assert (await r.json())["data"] == {"reason": "banned"}


async def test_role_change_makes_an_admin(admin_client, aiohttp_client, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    r = await client.put(f"/api/admin/users/{user['id']}", json={"role": "admin"}, headers=headers)
    assert r.status == 200, await r.text()
    assert (await r.json())["data"]["user"] == admin_view(user, role="admin")
    promoted = await aiohttp_client(client.server)
    await login(promoted, user["username"])
    assert (await promoted.get("/api/admin/users")).status == 200


async def test_edit_contact_details(admin_client, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    email = unique("new") + "@Example.com"
    r = await client.put(f"/api/admin/users/{user['id']}", json={"email": email, "phone": None}, headers=headers)
    assert r.status == 200, await r.text()
    assert (await r.json())["data"]["user"] == admin_view(user, email=email.lower(), phone=None)
    r = await client.put(f"/api/admin/users/{user['id']}", json={"phone": "+1 555 0100"}, headers=headers)
    assert (await r.json())["data"]["user"] == admin_view(user, email=email.lower(), phone="+15550100")


async def test_edit_refuses_a_taken_email_and_bad_fields(admin_client, factory):
    client, admin, headers = admin_client
    user, other = await factory.user(), await factory.user()
    r = await client.put(f"/api/admin/users/{user['id']}", json={"email": other["email"]}, headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "email_taken"}
    r = await client.put(f"/api/admin/users/{user['id']}",
                         json={"role": "root", "is_active": "maybe", "email": "nope"}, headers=headers)
    assert r.status == 400
    assert set((await r.json())["data"]["errors"]) == {"role", "is_active", "email"}


async def test_admin_cannot_ban_or_demote_self(admin_client):
    client, admin, headers = admin_client
    for change in ({"is_active": False}, {"role": "user"}):
        r = await client.put(f"/api/admin/users/{admin['id']}", json=change, headers=headers)
        assert r.status == 409, change
        assert await r.json() == {"code": 409, "msg": "You cannot do that to your own account.",
                                  "data": {"reason": "self"}}
    r = await client.delete(f"/api/admin/users/{admin['id']}", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "self"}
    # editing one's own contact details is fine
    r = await client.put(f"/api/admin/users/{admin['id']}", json={"phone": "+15550199"}, headers=headers)
    assert r.status == 200, await r.text()
    assert (await client.get("/api/me")).status == 200


async def test_the_last_admin_cannot_be_demoted_banned_or_deleted(ctx, factory, only_admins):
    last = await factory.user(role="admin")
    actor = await factory.user()
    await only_admins(last["id"])
    for change in ({"role": "user"}, {"is_active": False}):
        with pytest.raises(LastAdmin):
            await accounts.update_user(ctx, actor["id"], last["id"], change)
    with pytest.raises(LastAdmin):
        await accounts.delete_user(ctx, actor["id"], last["id"])
    assert (await accounts.get_user(ctx, last["id"]))["role"] == "admin"


async def test_two_admins_demoting_each_other_leave_one_admin(client, aiohttp_client, ctx, factory, only_admins):
    first, second = await factory.user(role="admin"), await factory.user(role="admin")
    await only_admins(first["id"], second["id"])
    other = await aiohttp_client(client.server)
    h1 = {"X-CSRF-Token": await login(client, first["username"])}
    h2 = {"X-CSRF-Token": await login(other, second["username"])}
    results = await asyncio.gather(
        client.put(f"/api/admin/users/{second['id']}", json={"role": "user"}, headers=h1),
        other.put(f"/api/admin/users/{first['id']}", json={"role": "user"}, headers=h2),
    )
    statuses = sorted(r.status for r in results)
    # the loser either lost the count (409) or was demoted before its request was authorised (401/403)
    assert statuses[0] == 200 and statuses[1] in (401, 403, 409), statuses
    loser = max(results, key=lambda r: r.status)
    if loser.status == 409:
        assert (await loser.json())["data"] == {"reason": "last_admin"}
    admins = await db.fetch_value(
        ctx.db, "SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = 1")
    assert admins == 1


# --- delete -----------------------------------------------------------------------------------

async def test_delete_a_user_without_orders(admin_client, aiohttp_client, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    shopper = await aiohttp_client(client.server)
    await login(shopper, user["username"])
    r = await client.delete(f"/api/admin/users/{user['id']}", headers=headers)
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "user deleted", "data": None}
    assert (await client.get(f"/api/admin/users/{user['id']}")).status == 404
    assert (await shopper.get("/api/me")).status == 401


async def test_delete_a_user_with_orders_is_refused(admin_client, ctx, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    await insert_order(ctx, factory, user["id"])
    r = await client.delete(f"/api/admin/users/{user['id']}", headers=headers)
    assert r.status == 409
    assert await r.json() == {"code": 409, "msg": "The user has orders; ban the account instead.",
                              "data": {"reason": "has_orders"}}
    assert (await client.get(f"/api/admin/users/{user['id']}")).status == 200


async def _waiting_on_a_lock(ctx) -> bool:
    """A statement against this run's database is blocked on a row lock (InnoDB's view of it)."""
    return bool(await db.fetch_value(ctx.db, LOCK_WAITS))


async def test_delete_racing_a_new_order_is_refused(admin_client, ctx, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    goods_id = await factory.goods()
    # an order placed while the delete runs: written, not yet committed when the delete counts
    async with db.transaction(ctx.db) as cur:
        await cur.execute(INSERT_ORDER, order_row(user["id"], goods_id))
        delete = asyncio.create_task(client.delete(f"/api/admin/users/{user['id']}", headers=headers))
        await wait_until(lambda: _waiting_on_a_lock(ctx), what="the delete waiting on a row lock")
        assert not delete.done()  # waiting on the new order's lock on the user row
    r = await delete
    assert r.status == 409, await r.text()
    assert (await r.json())["data"] == {"reason": "has_orders"}
    assert (await client.get(f"/api/admin/users/{user['id']}")).status == 200


# --- who may -----------------------------------------------------------------------------------

ROUTES = [("GET", "/api/admin/users"), ("GET", "/api/admin/users/1"),
          ("PUT", "/api/admin/users/1"), ("DELETE", "/api/admin/users/1")]


@pytest.mark.parametrize("method, path", ROUTES)
async def test_a_shopper_is_forbidden(user_client, method, path):
    client, user, headers = user_client
    r = await client.request(method, path, json={"role": "admin"}, headers=headers)
    assert r.status == 403
    assert await r.json() == {"code": 403, "msg": "You may not do that.", "data": {"reason": "forbidden"}}


@pytest.mark.parametrize("method, path", ROUTES)
async def test_anonymous_is_unauthenticated(client, method, path):
    r = await client.request(method, path, json={"role": "admin"})
    assert r.status == 401
    assert await r.json() == {"code": 401, "msg": "Please log in.", "data": {"reason": "unauthenticated"}}


async def test_admin_writes_need_the_csrf_token(admin_client, factory):
    client, admin, headers = admin_client
    user = await factory.user()
    r = await client.put(f"/api/admin/users/{user['id']}", json={"is_active": False})
    assert r.status == 403
    assert (await r.json())["data"] == {"reason": "csrf"}
    r = await client.get(f"/api/admin/users/{user['id']}")
    assert (await r.json())["data"]["user"]["is_active"] is True
