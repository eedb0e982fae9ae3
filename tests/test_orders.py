"""Ordinary orders and the shared life cycle: place, list, pay, cancel, confirm, delete."""
from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest

from flashsale import db
from flashsale.errors import BadStatus, NotFound
from flashsale.services import admin_orders, orders, seckill_state

from tests.support.auth import login
from tests.support.orders import ADDRESS, flash_order, goods_row, order_count, set_status

EMPTY_TIMES = {"pay_deadline": None, "paid_at": None, "shipped_at": None, "completed_at": None,
               "cancelled_at": None, "transaction_id": None}


@pytest.fixture
async def client(aiohttp_client, make_app):
    """The app without its background work: no sweeper may cancel an order a test set up."""
    return await aiohttp_client(make_app(background_tasks=False))


@pytest.fixture
async def shopper(user_client, factory):
    """A logged-in user with a default address: (client, user, headers, address_id)."""
    client, user, headers = user_client
    return client, user, headers, await factory.address(user["id"])


async def place(client, headers, goods_id, address_id, quantity=1, payment_method="alipay"):
    return await client.post("/api/orders", headers=headers, json={
        "goods_id": goods_id, "quantity": quantity, "address_id": address_id,
        "payment_method": payment_method})


async def placed(client, headers, goods_id, address_id, quantity=1) -> dict:
    r = await place(client, headers, goods_id, address_id, quantity)
    assert r.status == 201, await r.text()
    return (await r.json())["data"]["order"]


async def log_of(ctx, order_id) -> list[tuple]:
    """The order's whole log as admins see it: its creation (read off the order row), then its rows."""
    log = (await admin_orders.get_order(ctx, order_id))["log"]
    return [(e["from"], e["to"], e["by"], e["actor_id"], e["remark"]) for e in log]


@pytest.fixture
def released(monkeypatch):
    """Stands in for the engine's Redis give-back; records each call and what MySQL said then."""
    calls = []

    async def fake_release(ctx, sale_id, user_id, units):
        status = await db.fetch_value(ctx.db, "SELECT status FROM orders WHERE flash_sale_id = %s", (sale_id,))
        calls.append((sale_id, user_id, units, status))

    monkeypatch.setattr(seckill_state, "release_units", fake_release)
    return calls


# placing

async def test_place_order_takes_stock_and_answers_the_order(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=10, price="19.90", name="Blue Kettle")
    r = await place(client, headers, goods_id, address_id, quantity=2, payment_method="wechat")
    assert r.status == 201, await r.text()
    body = await r.json()
    order = body["data"]["order"]
    assert body["code"] == 201 and body["msg"] == "order placed"
    assert re.fullmatch(r"\d{17}[0-9A-F]{4}\d{6}", order["order_number"])
    assert order["created_at"].endswith("Z")
    assert order == {
        "id": order["id"], "order_number": order["order_number"], "status": "pending",
        "goods": {"id": goods_id, "name": "Blue Kettle", "photo_url": "/static/img/placeholder.svg"},
        "flash_sale_id": None, "quantity": 2, "unit_price": "19.90", "total_amount": "39.80",
        "payment_method": "wechat", "address": ADDRESS, "created_at": order["created_at"],
        **{**EMPTY_TIMES, "pay_deadline": order["pay_deadline"]},
    }
    # every pending order has a pay deadline, ordinary ones too: the pay window after its creation
    created, deadline = (dt.datetime.fromisoformat(order[k].replace("Z", "+00:00"))
                         for k in ("created_at", "pay_deadline"))
    assert abs((deadline - created).total_seconds() - ctx.settings.pay_window_s) < 2
    assert await goods_row(ctx, goods_id) == {"stock": 8, "sales": 2}
    assert await log_of(ctx, order["id"]) == [(None, "pending", "user", user["id"], "")]


async def test_order_keeps_its_address_snapshot_when_the_address_changes(shopper, factory):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    r = await client.put(f"/api/addresses/{address_id}", json={"city": "Ningbo"}, headers=headers)
    assert r.status == 200
    r = await client.delete(f"/api/addresses/{address_id}", headers=headers)
    assert r.status == 200
    detail = (await (await client.get(f"/api/orders/{order['id']}")).json())["data"]["order"]
    assert detail["address"] == ADDRESS


async def test_photo_url_points_at_the_upload(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods()
    await db.execute(ctx.db, "UPDATE goods SET photo = %s WHERE id = %s", ("ab/cd.webp", goods_id))
    order = await placed(client, headers, goods_id, address_id)
    assert order["goods"]["photo_url"] == "/static/uploads/ab/cd.webp"


async def test_forty_concurrent_buyers_of_ten_units_get_exactly_ten_orders(client, aiohttp_client, factory, ctx):
    goods_id = await factory.goods(stock=10)
    buyers = []
    for _ in range(40):
        user = await factory.user()
        address_id = await factory.address(user["id"])
        buyer = await aiohttp_client(client.server)  # a cookie jar of its own on the same server
        buyers.append((buyer, {"X-CSRF-Token": await login(buyer, user["username"])}, address_id))
    results = await asyncio.gather(*(place(b, h, goods_id, a) for b, h, a in buyers))
    statuses = [r.status for r in results]
    assert statuses.count(201) == 10 and statuses.count(409) == 30, statuses
    for r in results:
        if r.status == 409:
            assert (await r.json())["data"] == {"reason": "out_of_stock"}
    assert await goods_row(ctx, goods_id) == {"stock": 0, "sales": 10}
    assert await order_count(ctx, goods_id) == 10


async def test_more_than_the_stock_is_409_and_changes_nothing(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=3)
    r = await place(client, headers, goods_id, address_id, quantity=4)
    assert r.status == 409
    assert await r.json() == {"code": 409, "msg": "Not enough stock.", "data": {"reason": "out_of_stock"}}
    assert await goods_row(ctx, goods_id) == {"stock": 3, "sales": 0}
    assert await order_count(ctx, goods_id) == 0


@pytest.mark.parametrize("quantity, message", [
    (0, "Must be between 1 and 99."),
    (100, "Must be between 1 and 99."),
    ("abc", "Must be a whole number."),
    (None, "This field is required."),
    (True, "Must be a whole number."),
])
async def test_bad_quantity_is_400_and_changes_nothing(shopper, factory, ctx, quantity, message):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=100)
    r = await place(client, headers, goods_id, address_id, quantity=quantity)
    assert r.status == 400
    assert await r.json() == {"code": 400, "msg": "Some fields are not valid.",
                              "data": {"reason": "validation", "errors": {"quantity": message}}}
    assert await goods_row(ctx, goods_id) == {"stock": 100, "sales": 0}
    assert await order_count(ctx, goods_id) == 0


async def test_missing_fields_are_all_reported(user_client):
    client, user, headers = user_client
    r = await client.post("/api/orders", json={}, headers=headers)
    assert r.status == 400
    assert (await r.json())["data"]["errors"] == {
        "goods_id": "This field is required.", "quantity": "This field is required.",
        "address_id": "This field is required.", "payment_method": "This field is required.",
    }


async def test_payment_method_must_be_known(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods()
    r = await place(client, headers, goods_id, address_id, payment_method="cash")
    assert r.status == 400
    assert (await r.json())["data"]["errors"] == {"payment_method": "Must be one of: alipay, card, wechat."}
    assert await order_count(ctx, goods_id) == 0


async def test_missing_or_foreign_address_is_400_and_changes_nothing(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=5)
    other = await factory.user()
    foreign = await factory.address(other["id"])
    for bad in (foreign, 999_999_999):
        r = await place(client, headers, goods_id, bad)
        assert r.status == 400
        assert (await r.json())["data"] == {"reason": "validation",
                                            "errors": {"address_id": "Choose one of your addresses."}}
    assert await goods_row(ctx, goods_id) == {"stock": 5, "sales": 0}
    assert await order_count(ctx, goods_id) == 0


async def test_unknown_goods_is_400(shopper):
    client, user, headers, address_id = shopper
    r = await place(client, headers, 999_999_999, address_id)
    assert r.status == 400
    assert (await r.json())["data"] == {"reason": "validation", "errors": {"goods_id": "No such goods."}}


async def test_anonymous_is_401_everywhere(client):
    for method, path in (("POST", "/api/orders"), ("GET", "/api/orders"), ("GET", "/api/orders/1"),
                         ("POST", "/api/orders/1/pay"), ("POST", "/api/orders/1/cancel"),
                         ("POST", "/api/orders/1/confirm"), ("DELETE", "/api/orders/1")):
        r = await client.request(method, path, json={})
        assert r.status == 401, (method, path)
        assert (await r.json())["data"] == {"reason": "unauthenticated"}


# reading

async def test_list_filters_by_status_newest_first_and_paginates(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods()
    ids = [(await placed(client, headers, goods_id, address_id))["id"] for _ in range(5)]
    await set_status(ctx, ids[1], "paid")
    await set_status(ctx, ids[3], "paid")

    r = await client.get("/api/orders?per_page=2&page=2")
    assert r.status == 200
    data = (await r.json())["data"]
    assert [o["id"] for o in data["items"]] == [ids[2], ids[1]]
    assert {k: data[k] for k in ("page", "per_page", "total", "pages")} == \
        {"page": 2, "per_page": 2, "total": 5, "pages": 3}

    data = (await (await client.get("/api/orders?status=paid")).json())["data"]
    assert [o["id"] for o in data["items"]] == [ids[3], ids[1]]
    assert data["total"] == 2
    data = (await (await client.get("/api/orders?status=all")).json())["data"]
    assert data["total"] == 5
    data = (await (await client.get("/api/orders?status=shipped")).json())["data"]
    assert data == {"items": [], "page": 1, "per_page": 20, "total": 0, "pages": 0}


async def test_list_with_unknown_status_is_400(user_client):
    client, user, headers = user_client
    r = await client.get("/api/orders?status=lost")
    assert r.status == 400
    assert (await r.json())["data"]["errors"] == {
        "status": "Must be one of: all, pending, paid, shipped, completed, cancelled."}


async def test_list_shows_only_own_orders(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods()
    other = await factory.user()
    await flash_order(ctx, other["id"], goods_id)
    mine = await placed(client, headers, goods_id, address_id)
    data = (await (await client.get("/api/orders")).json())["data"]
    assert [o["id"] for o in data["items"]] == [mine["id"]]


async def test_detail_has_the_log(shopper, factory):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    await client.post(f"/api/orders/{order['id']}/pay", headers=headers)
    r = await client.get(f"/api/orders/{order['id']}")
    assert r.status == 200
    detail = (await r.json())["data"]["order"]
    log = detail.pop("log")
    assert detail["status"] == "paid"
    assert [{k: e[k] for k in ("from", "to", "by")} for e in log] == [
        {"from": None, "to": "pending", "by": "user"}, {"from": "pending", "to": "paid", "by": "user"}]
    assert log[1]["remark"] == f"transaction {detail['transaction_id']}"
    assert all(e["at"].endswith("Z") for e in log)


async def test_another_users_order_is_404_for_read_and_write(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    other = await factory.user()
    goods_id = await factory.goods(stock=10)
    theirs, _ = await flash_order(ctx, other["id"], goods_id)
    for method, path in (("GET", f"/api/orders/{theirs}"), ("POST", f"/api/orders/{theirs}/pay"),
                         ("POST", f"/api/orders/{theirs}/cancel"), ("POST", f"/api/orders/{theirs}/confirm"),
                         ("DELETE", f"/api/orders/{theirs}")):
        r = await client.request(method, path, headers=headers)
        assert r.status == 404, (method, path, await r.text())
        assert (await r.json())["data"] == {"reason": "not_found"}
    row = await db.fetch_one(ctx.db, "SELECT status, deleted_by_user FROM orders WHERE id = %s", (theirs,))
    assert row == {"status": "pending", "deleted_by_user": 0}
    assert len(await log_of(ctx, theirs)) == 1


# paying

async def test_pay_moves_pending_to_paid_once(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    r = await client.post(f"/api/orders/{order['id']}/pay", headers=headers)
    assert r.status == 200, await r.text()
    paid = (await r.json())["data"]["order"]
    assert paid["status"] == "paid"
    assert re.fullmatch(r"SIM[0-9A-F]{24}", paid["transaction_id"])
    assert paid["paid_at"].endswith("Z")
    r = await client.post(f"/api/orders/{order['id']}/pay", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "bad_status"}
    assert (await log_of(ctx, order["id"]))[1:] == [
        ("pending", "paid", "user", user["id"], f"transaction {paid['transaction_id']}")]


async def test_concurrent_pays_succeed_once(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    results = await asyncio.gather(*(client.post(f"/api/orders/{order['id']}/pay", headers=headers)
                                     for _ in range(5)))
    assert sorted(r.status for r in results) == [200] + [409] * 4
    assert len(await log_of(ctx, order["id"])) == 2


@pytest.mark.parametrize("status", ["paid", "shipped", "completed", "cancelled"])
async def test_pay_in_other_states_is_bad_status(shopper, factory, ctx, status):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    await set_status(ctx, order["id"], status)
    r = await client.post(f"/api/orders/{order['id']}/pay", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "bad_status"}
    assert (await orders.get_order(ctx, order["id"], owner_id=None))["transaction_id"] is None


async def test_pay_flash_order_inside_its_window(user_client, factory, ctx):
    client, user, headers = user_client
    order_id, sale_id = await flash_order(ctx, user["id"], await factory.goods())
    r = await client.post(f"/api/orders/{order_id}/pay", headers=headers)
    assert r.status == 200, await r.text()
    order = (await r.json())["data"]["order"]
    assert order["status"] == "paid" and order["flash_sale_id"] == sale_id
    assert order["pay_deadline"].endswith("Z")


async def test_pay_flash_order_after_its_window_is_expired(user_client, factory, ctx):
    client, user, headers = user_client
    order_id, _ = await flash_order(ctx, user["id"], await factory.goods(), deadline_s=-1)
    r = await client.post(f"/api/orders/{order_id}/pay", headers=headers)
    assert r.status == 409
    assert await r.json() == {"code": 409, "msg": "The payment window has closed.", "data": {"reason": "expired"}}
    row = await db.fetch_one(ctx.db, "SELECT status, paid_at FROM orders WHERE id = %s", (order_id,))
    assert row == {"status": "pending", "paid_at": None}


# cancelling

@pytest.mark.parametrize("paid_first", [False, True])
async def test_cancel_returns_the_stock(shopper, factory, ctx, paid_first):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=10)
    order = await placed(client, headers, goods_id, address_id, quantity=3)
    if paid_first:
        assert (await client.post(f"/api/orders/{order['id']}/pay", headers=headers)).status == 200
    assert await goods_row(ctx, goods_id) == {"stock": 7, "sales": 3}
    r = await client.post(f"/api/orders/{order['id']}/cancel", headers=headers)
    assert r.status == 200, await r.text()
    cancelled = (await r.json())["data"]["order"]
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"].endswith("Z")
    assert await goods_row(ctx, goods_id) == {"stock": 10, "sales": 0}
    before = "paid" if paid_first else "pending"
    assert (await log_of(ctx, order["id"]))[-1] == (before, "cancelled", "user", user["id"], "")


async def test_two_concurrent_cancels_return_the_stock_once(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=10)
    order = await placed(client, headers, goods_id, address_id, quantity=4)
    results = await asyncio.gather(*(client.post(f"/api/orders/{order['id']}/cancel", headers=headers)
                                     for _ in range(2)))
    assert sorted(r.status for r in results) == [200, 409]
    loser = next(r for r in results if r.status == 409)
    assert (await loser.json())["data"] == {"reason": "bad_status"}
    assert await goods_row(ctx, goods_id) == {"stock": 10, "sales": 0}
    assert [e[1] for e in await log_of(ctx, order["id"])] == ["pending", "cancelled"]


@pytest.mark.parametrize("status", ["shipped", "completed", "cancelled"])
async def test_cancel_in_other_states_is_bad_status(shopper, factory, ctx, status):
    client, user, headers, address_id = shopper
    goods_id = await factory.goods(stock=10)
    order = await placed(client, headers, goods_id, address_id)
    await set_status(ctx, order["id"], status)
    r = await client.post(f"/api/orders/{order['id']}/cancel", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "bad_status"}
    assert await goods_row(ctx, goods_id) == {"stock": 9, "sales": 1}


async def test_cancel_flash_order_returns_units_to_the_sale_then_to_redis(user_client, factory, ctx, released):
    client, user, headers = user_client
    goods_id = await factory.goods(stock=50, sales=2)
    order_id, sale_id = await flash_order(ctx, user["id"], goods_id, quantity=2, sold=6)
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert r.status == 200, await r.text()
    assert await db.fetch_value(ctx.db, "SELECT sold FROM flash_sales WHERE id = %s", (sale_id,)) == 4
    assert await goods_row(ctx, goods_id) == {"stock": 50, "sales": 0}  # the shelf stock is not the sale's
    # called once, after the commit: MySQL already said 'cancelled'
    assert released == [(sale_id, user["id"], 2, "cancelled")]
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert r.status == 409
    assert len(released) == 1


async def test_cancel_flash_order_gives_the_units_back_to_the_warm_sale(user_client, factory, ctx):
    client, user, headers = user_client
    order_id, sale_id = await flash_order(ctx, user["id"], await factory.goods(sales=2), quantity=2)
    assert await seckill_state.rebuild_state(ctx, sale_id)
    stock_key, buyers_key = ctx.keys.sale_stock(sale_id), ctx.keys.sale_buyers(sale_id)
    assert (await ctx.redis.get(stock_key), await ctx.redis.hgetall(buyers_key)) == ("8", {str(user["id"]): "2"})
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert r.status == 200, await r.text()
    assert (await ctx.redis.get(stock_key), await ctx.redis.hgetall(buyers_key)) == ("10", {})
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert r.status == 409
    assert await ctx.redis.get(stock_key) == "10"


async def test_admin_cancel_of_any_owners_paid_order(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    admin = await factory.user(role="admin")
    goods_id = await factory.goods(stock=5)
    order = await placed(client, headers, goods_id, address_id, quantity=2)
    await set_status(ctx, order["id"], "paid")
    cancelled = await orders.cancel_order(ctx, order["id"], owner_id=None, actor="admin", actor_id=admin["id"],
                                          remark="out of stock in the warehouse")
    assert cancelled["status"] == "cancelled"
    assert await goods_row(ctx, goods_id) == {"stock": 5, "sales": 0}
    assert (await log_of(ctx, order["id"]))[-1] == (
        "paid", "cancelled", "admin", admin["id"], "out of stock in the warehouse")
    with pytest.raises(BadStatus):
        await orders.cancel_order(ctx, order["id"], owner_id=None, actor="admin", actor_id=admin["id"])
    with pytest.raises(NotFound):
        await orders.cancel_order(ctx, 999_999_999, owner_id=None, actor="admin", actor_id=admin["id"])


async def test_sweeper_cancels_only_expired_pending_flash_orders(user_client, factory, ctx, released):
    client, user, headers = user_client
    goods_id = await factory.goods(stock=5, sales=3)
    fresh, _ = await flash_order(ctx, user["id"], goods_id)
    expired, expired_sale = await flash_order(ctx, user["id"], goods_id, deadline_s=-5)
    expired_paid, _ = await flash_order(ctx, user["id"], goods_id, deadline_s=-5)
    await set_status(ctx, expired_paid, "paid")
    ordinary = await placed(client, headers, goods_id, await factory.address(user["id"], is_default=False))

    due = await orders.expired_unpaid(ctx, 100)
    assert expired in due and fresh not in due and expired_paid not in due and ordinary["id"] not in due
    for order_id in (fresh, expired_paid, ordinary["id"]):
        with pytest.raises(BadStatus):
            await orders.cancel_order(ctx, order_id, owner_id=None, actor="system", actor_id=None,
                                      remark="pay window closed", only_if_expired=True)
    result = await orders.cancel_order(ctx, expired, owner_id=None, actor="system", actor_id=None,
                                       remark="pay window closed", only_if_expired=True)
    assert result["status"] == "cancelled"
    assert (await log_of(ctx, expired))[-1] == ("pending", "cancelled", "system", None, "pay window closed")
    assert released == [(expired_sale, user["id"], 1, "cancelled")]
    assert expired not in await orders.expired_unpaid(ctx, 100)


async def test_sweeper_and_owner_racing_to_cancel_return_units_once(user_client, factory, ctx, released):
    client, user, headers = user_client
    goods_id = await factory.goods(sales=1)
    order_id, sale_id = await flash_order(ctx, user["id"], goods_id, deadline_s=-1)
    results = await asyncio.gather(
        client.post(f"/api/orders/{order_id}/cancel", headers=headers),
        orders.cancel_order(ctx, order_id, owner_id=None, actor="system", actor_id=None, only_if_expired=True),
        return_exceptions=True)
    response, swept = results
    outcome = (response.status, type(swept).__name__)
    assert outcome in ((200, "BadStatus"), (409, "dict")), outcome
    assert await db.fetch_value(ctx.db, "SELECT sold FROM flash_sales WHERE id = %s", (sale_id,)) == 0
    assert len(released) == 1


# confirming and deleting

async def test_confirm_moves_shipped_to_completed(shopper, factory, ctx):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    await set_status(ctx, order["id"], "shipped")
    r = await client.post(f"/api/orders/{order['id']}/confirm", headers=headers)
    assert r.status == 200, await r.text()
    done = (await r.json())["data"]["order"]
    assert done["status"] == "completed" and done["completed_at"].endswith("Z")
    assert (await log_of(ctx, order["id"]))[-1] == ("shipped", "completed", "user", user["id"], "")
    r = await client.post(f"/api/orders/{order['id']}/confirm", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "bad_status"}


@pytest.mark.parametrize("status", ["pending", "paid", "cancelled"])
async def test_confirm_before_shipping_is_bad_status(shopper, factory, ctx, status):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    await set_status(ctx, order["id"], status)
    r = await client.post(f"/api/orders/{order['id']}/confirm", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "bad_status"}


@pytest.mark.parametrize("status", ["cancelled", "completed"])
async def test_delete_hides_the_order_from_its_owner_only(shopper, factory, ctx, status):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    await set_status(ctx, order["id"], status)
    r = await client.delete(f"/api/orders/{order['id']}", headers=headers)
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "deleted", "data": None}
    assert (await client.get(f"/api/orders/{order['id']}")).status == 404
    assert (await (await client.get("/api/orders")).json())["data"]["total"] == 0
    assert (await client.delete(f"/api/orders/{order['id']}", headers=headers)).status == 404
    kept = await orders.get_order(ctx, order["id"], owner_id=None)  # what admins read
    assert kept["status"] == status
    assert kept["log"][-1]["remark"] == "deleted from the customer's order list"


@pytest.mark.parametrize("status", ["pending", "paid", "shipped"])
async def test_delete_of_an_open_order_is_bad_status(shopper, factory, ctx, status):
    client, user, headers, address_id = shopper
    order = await placed(client, headers, await factory.goods(), address_id)
    await set_status(ctx, order["id"], status)
    r = await client.delete(f"/api/orders/{order['id']}", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "bad_status"}
    assert (await client.get(f"/api/orders/{order['id']}")).status == 200
