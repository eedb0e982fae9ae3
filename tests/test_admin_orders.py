"""The admin orders API: filters, the shop's figures, status changes, remarks, CSV export, guards."""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from flashsale import db
from flashsale.jsonio import iso
from flashsale.services import admin_orders, orders

from tests.support.auth import login
from tests.support.factory import unique
from tests.support.orders import goods_stock, insert_order, placed_order, utc_now


@pytest.fixture
async def client(aiohttp_client, make_app):
    """The app without its background work: no sweeper may cancel an order a test set up."""
    return await aiohttp_client(make_app(background_tasks=False))


async def get_data(client, url, status=200):
    r = await client.get(url)
    body = await r.json()
    assert r.status == status, body
    return body["data"]


async def set_status(client, headers, order_id, status, remark=None):
    body = {"status": status} if remark is None else {"status": status, "remark": remark}
    r = await client.post(f"/api/admin/orders/{order_id}/status", headers=headers, json=body)
    return r.status, await r.json()


async def log_rows(ctx, order_id):
    """The order's whole log as admins see it: its creation (read off the order row), then its rows."""
    log = (await admin_orders.get_order(ctx, order_id))["log"]
    return [{"from_status": e["from"], "to_status": e["to"], "actor": e["by"], "actor_id": e["actor_id"],
             "remark": e["remark"]} for e in log]


# --- list and filters -----------------------------------------------------------------------

async def test_list_shows_every_buyers_orders_newest_first_with_the_buyer(admin_client, factory, ctx):
    client, _, _ = admin_client
    buyer = await factory.user()
    goods_id = await factory.goods(name="Blue Kettle")
    first = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid")
    second = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, quantity=2, unit_price="5.00")
    await db.execute(ctx.db, "UPDATE orders SET status = 'cancelled', deleted_by_user = 1 WHERE id = %s", (first,))

    data = await get_data(client, f"/api/admin/orders?q={buyer['username']}")
    assert [o["id"] for o in data["items"]] == [second, first]
    assert (data["page"], data["per_page"], data["total"], data["pages"]) == (1, 20, 2, 1)
    row = await db.fetch_one(ctx.db, "SELECT order_number, created_at FROM orders WHERE id = %s", (second,))
    assert data["items"][0] == {
        "id": second, "order_number": row["order_number"], "status": "pending",
        "goods": {"id": goods_id, "name": "Blue Kettle", "photo_url": "/static/img/placeholder.svg"},
        "flash_sale_id": None, "quantity": 2, "unit_price": "5.00", "total_amount": "10.00",
        "payment_method": "alipay",
        "address": {"receiver_name": "Test Receiver", "phone": "13800000000", "province": "Zhejiang",
                    "city": "Hangzhou", "district": "Xihu", "detail_address": "1 Test Road"},
        "created_at": iso(row["created_at"]), "pay_deadline": None, "paid_at": None, "shipped_at": None,
        "completed_at": None, "cancelled_at": None, "transaction_id": None,
        "user": {"id": buyer["id"], "username": buyer["username"], "email": buyer["email"], "phone": None},
        "deleted_by_user": False,
    }
    assert data["items"][1]["deleted_by_user"] is True  # hidden from the buyer, kept for admins


async def test_filters_by_status_number_prefix_username_and_dates(admin_client, factory, ctx):
    client, _, _ = admin_client
    buyer, other = await factory.user(), await factory.user()
    goods_id = await factory.goods()
    now = utc_now()
    stem = unique("Q")
    old = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="completed",
                             created_at=dt.datetime(2025, 3, 10, 23, 59, 59), number=stem + "A1")
    mid = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid",
                             created_at=dt.datetime(2025, 3, 11, 8, 0), number=stem + "A2")
    new = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid", created_at=now,
                             number=stem + "B1")
    theirs = await insert_order(ctx, user_id=other["id"], goods_id=goods_id, status="paid", number=stem + "A3")

    async def ids(query):
        return [o["id"] for o in (await get_data(client, "/api/admin/orders?" + query))["items"]]

    assert await ids(f"q={buyer['username']}") == [new, mid, old]
    assert await ids(f"q={buyer['username']}&status=paid") == [new, mid]
    assert await ids(f"q={stem}A") == [theirs, mid, old]  # an order-number prefix
    assert await ids(f"q={stem}A&status=completed") == [old]
    assert await ids(f"q={stem}Z") == []
    # dates are whole UTC days, `to` included; times are exact, with any offset
    assert await ids(f"q={buyer['username']}&from=2025-03-11&to=2025-03-11") == [mid]
    assert await ids(f"q={buyer['username']}&from=2025-03-10&to=2025-03-11") == [mid, old]
    assert await ids(f"q={buyer['username']}&to=2025-03-10") == [old]
    assert await ids(f"q={buyer['username']}&from=2025-03-11T09:00:00%2B01:00&to=2025-03-11T08:00:00Z") == [mid]
    assert await ids(f"q={buyer['username']}&from=2025-03-11T08:00:00.001Z&to=2025-03-12") == []
    assert await ids(f"q={buyer['username']}&from={now.date().isoformat()}") == [new]

    data = await get_data(client, f"/api/admin/orders?q={stem}&per_page=2&page=2")
    assert [o["id"] for o in data["items"]] == [mid, old]
    assert (data["total"], data["pages"]) == (4, 2)


async def test_bad_filters_are_a_validation_error(admin_client):
    client, _, _ = admin_client
    r = await client.get("/api/admin/orders?status=lost&from=yesterday&to=2025-13-01")
    body = await r.json()
    assert r.status == 400, body
    assert body["data"]["reason"] == "validation"
    assert set(body["data"]["errors"]) == {"status", "from", "to"}
    r = await client.get("/api/admin/orders?from=2025-03-12&to=2025-03-11")
    assert (await r.json())["data"]["errors"] == {"to": "Must be after the start."}


async def test_stats_count_today_this_month_and_the_open_orders(admin_client, factory, ctx):
    client, _, _ = admin_client
    before = (await get_data(client, "/api/admin/orders"))["stats"]
    buyer = await factory.user()
    goods_id = await factory.goods()
    now = utc_now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="pending", unit_price="10.00")
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid", unit_price="7.25", quantity=2)
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="cancelled", unit_price="99.00")
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="shipped", unit_price="1.00",
                       created_at=today)
    # long before this month: only the open counts see it
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid", unit_price="50.00",
                       created_at=now - dt.timedelta(days=40))
    month_extra = Decimal("0")
    if today.day > 1:  # earlier this month, not today
        await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="completed", unit_price="3.00",
                           created_at=today - dt.timedelta(seconds=1))
        month_extra = Decimal("3.00")

    after = (await get_data(client, "/api/admin/orders"))["stats"]
    delta = {k: (Decimal(after[k]) - Decimal(before[k]) if k.endswith("amount") else after[k] - before[k])
             for k in after}
    assert delta == {
        "today_count": 4, "today_amount": Decimal("25.50"),  # 10.00 + 14.50 + 1.00; cancelled left out
        "month_count": 4 + (month_extra > 0), "month_amount": Decimal("25.50") + month_extra,
        "pending_count": 1, "to_ship_count": 2, "cancelled_count": 1,
    }
    assert isinstance(after["today_amount"], str) and after["today_amount"].count(".") == 1
    assert len(after["month_amount"].split(".")[1]) == 2


# --- status changes -------------------------------------------------------------------------

async def test_paid_order_is_shipped_then_completed_with_times_and_admin_log(admin_client, factory, ctx):
    client, admin, headers = admin_client
    order = await placed_order(ctx, factory, pay=True)
    status, body = await set_status(client, headers, order["id"], "shipped", "SF Express 123")
    assert status == 200, body
    shipped = body["data"]["order"]
    assert body["msg"] == "order shipped"
    assert shipped["status"] == "shipped" and shipped["shipped_at"] is not None
    assert shipped["completed_at"] is None and shipped["next_statuses"] == ["completed"]
    assert shipped["log"][-1] == {"from": "paid", "to": "shipped", "at": shipped["log"][-1]["at"], "by": "admin",
                                  "remark": "SF Express 123", "actor_id": admin["id"],
                                  "actor_name": admin["username"]}

    status, body = await set_status(client, headers, order["id"], "completed")
    assert status == 200, body
    completed = body["data"]["order"]
    assert completed["status"] == "completed" and completed["completed_at"] is not None
    assert completed["shipped_at"] == shipped["shipped_at"] and completed["next_statuses"] == []
    assert [(r["from_status"], r["to_status"], r["actor"], r["actor_id"]) for r in await log_rows(ctx, order["id"])] == [
        (None, "pending", "user", order_user(completed)), ("pending", "paid", "user", order_user(completed)),
        ("paid", "shipped", "admin", admin["id"]), ("shipped", "completed", "admin", admin["id"])]


def order_user(order: dict) -> int:
    return order["user"]["id"]


@pytest.mark.parametrize("pay", [False, True], ids=["pending", "paid"])
async def test_cancel_returns_the_stock_once(admin_client, factory, ctx, pay):
    client, admin, headers = admin_client
    goods_id = await factory.goods(stock=10)
    order = await placed_order(ctx, factory, goods_id=goods_id, quantity=3, pay=pay)
    assert await goods_stock(ctx, goods_id) == 7

    status, body = await set_status(client, headers, order["id"], "cancelled", "out of stock at the warehouse")
    assert status == 200, body
    assert body["data"]["order"]["status"] == "cancelled" and body["data"]["order"]["cancelled_at"]
    assert await goods_stock(ctx, goods_id) == 10
    status, body = await set_status(client, headers, order["id"], "cancelled")
    assert status == 409 and body["data"] == {"reason": "bad_status"}, body
    assert await goods_stock(ctx, goods_id) == 10
    assert (await log_rows(ctx, order["id"]))[-1] == {
        "from_status": "paid" if pay else "pending", "to_status": "cancelled", "actor": "admin",
        "actor_id": admin["id"], "remark": "out of stock at the warehouse"}


@pytest.mark.parametrize("start, target", [
    ("pending", "shipped"), ("pending", "completed"), ("pending", "paid"), ("pending", "pending"),
    ("paid", "completed"), ("paid", "pending"), ("shipped", "cancelled"), ("shipped", "paid"),
    ("completed", "shipped"), ("completed", "cancelled"), ("cancelled", "shipped"), ("cancelled", "pending"),
])
async def test_other_transitions_are_refused_with_bad_status(admin_client, factory, ctx, start, target):
    client, _, headers = admin_client
    buyer = await factory.user()
    order_id = await insert_order(ctx, user_id=buyer["id"], goods_id=await factory.goods(), status=start)
    status, body = await set_status(client, headers, order_id, target)
    assert status == 409 and body["data"] == {"reason": "bad_status"}, body
    row = await db.fetch_one(ctx.db, "SELECT status, shipped_at, completed_at FROM orders WHERE id = %s", (order_id,))
    assert row["status"] == start
    assert len(await log_rows(ctx, order_id)) == 1


async def test_status_body_is_checked_and_unknown_orders_are_404(admin_client, factory, ctx):
    client, _, headers = admin_client
    order = await placed_order(ctx, factory, pay=True)
    status, body = await set_status(client, headers, order["id"], "lost")
    assert status == 400 and set(body["data"]["errors"]) == {"status"}, body
    status, body = await set_status(client, headers, order["id"], "shipped", "x" * 256)
    assert status == 400 and set(body["data"]["errors"]) == {"remark"}, body
    for target in ("shipped", "completed", "cancelled", "paid"):
        status, body = await set_status(client, headers, 987654321, target)
        assert status == 404 and body["data"] == {"reason": "not_found"}, (target, body)
    assert (await orders.get_order(ctx, order["id"], owner_id=None))["status"] == "paid"


async def test_two_admins_shipping_at_once_ship_it_once(admin_client, factory, ctx):
    client, _, headers = admin_client
    order = await placed_order(ctx, factory, pay=True)
    answers = await asyncio.gather(*[set_status(client, headers, order["id"], "shipped") for _ in range(5)])
    assert sorted(status for status, _ in answers) == [200, 409, 409, 409, 409]
    assert [r["to_status"] for r in await log_rows(ctx, order["id"])] == ["pending", "paid", "shipped"]


# --- detail and remarks -----------------------------------------------------------------------

async def test_remarks_are_added_and_listed_with_the_order_even_when_the_buyer_hid_it(admin_client, factory, ctx):
    client, admin, headers = admin_client
    buyer = await factory.user()
    order = await placed_order(ctx, factory, user=buyer)
    await orders.cancel_order(ctx, order["id"], owner_id=buyer["id"], actor="user", actor_id=buyer["id"])
    await orders.hide_order(ctx, buyer["id"], order["id"])

    r = await client.post(f"/api/admin/orders/{order['id']}/remarks", headers=headers,
                          json={"content": "  客户来电：请勿再发货  "})
    body = await r.json()
    assert r.status == 201, body
    remark = body["data"]["remark"]
    assert remark == {"id": remark["id"], "content": "客户来电：请勿再发货",
                      "admin": {"id": admin["id"], "username": admin["username"]}, "created_at": remark["created_at"]}
    r = await client.post(f"/api/admin/orders/{order['id']}/remarks", headers=headers, json={"content": "y" * 1000})
    assert r.status == 201

    data = await get_data(client, f"/api/admin/orders/{order['id']}")
    detail = data["order"]
    assert detail["deleted_by_user"] is True and detail["status"] == "cancelled"
    assert detail["user"]["username"] == buyer["username"]
    assert [m["content"] for m in detail["remarks"]] == ["客户来电：请勿再发货", "y" * 1000]
    assert [(e["from"], e["to"], e["by"]) for e in detail["log"]] == [
        (None, "pending", "user"), ("pending", "cancelled", "user"), ("cancelled", "cancelled", "user")]
    # the buyer no longer sees it
    r = await client.get(f"/api/orders/{order['id']}")
    assert r.status == 404


async def test_remark_content_is_checked_and_unknown_orders_are_404(admin_client, factory, ctx):
    client, _, headers = admin_client
    order = await placed_order(ctx, factory)
    for content in ("", "   ", "z" * 1001, None, 12):
        r = await client.post(f"/api/admin/orders/{order['id']}/remarks", headers=headers, json={"content": content})
        body = await r.json()
        assert r.status == 400 and set(body["data"]["errors"]) == {"content"}, (content, body)
    r = await client.post("/api/admin/orders/987654321/remarks", headers=headers, json={"content": "hello"})
    assert r.status == 404 and (await r.json())["data"] == {"reason": "not_found"}
    assert (await get_data(client, "/api/admin/orders/987654321", 404)) == {"reason": "not_found"}


# --- CSV export -------------------------------------------------------------------------------

async def test_export_is_streamed_csv_with_bom_quoting_and_the_filters(admin_client, factory, ctx):
    client, _, _ = admin_client
    buyer = await factory.user()
    goods_id = await factory.goods(name='Teapot, "large"')
    paid_at = dt.datetime(2025, 3, 11, 8, 0, 1, 500_000)
    first = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid", created_at=paid_at,
                               quantity=2, unit_price="12.50", receiver_name="李雷", phone="+8613800000000",
                               province="浙江省", city="杭州市", district="", detail_address="文三路 1 号\n2 楼",
                               payment_method="wechat")
    second = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, receiver_name="=HYPERLINK(\"x\")")
    numbers = {r["id"]: r["order_number"] for r in await db.fetch_all(
        ctx.db, "SELECT id, order_number FROM orders WHERE id IN (%s, %s)", (first, second))}

    r = await client.get(f"/api/admin/orders/export.csv?q={buyer['username']}")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="orders-')
    assert r.headers["Transfer-Encoding"] == "chunked"
    raw = await r.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert '"Teapot, ""large"""' in text and '"浙江省 杭州市 文三路 1 号\n2 楼"' in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(admin_orders.CSV_HEADER)
    assert rows[1][0] == numbers[second] and rows[1][9] == "'=HYPERLINK(\"x\")"
    assert rows[2] == [numbers[first], "2025-03-11 08:00:01", buyer["username"], 'Teapot, "large"', "2",
                       "12.50", "25.00", "paid", "wechat", "李雷", "'+8613800000000",
                       "浙江省 杭州市 文三路 1 号\n2 楼", "2025-03-11 08:00:01", "", "", ""]
    assert len(rows) == 3

    r = await client.get(f"/api/admin/orders/export.csv?q={buyer['username']}&status=pending")
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"), newline="")))
    assert [row[0] for row in rows[1:]] == [numbers[second]]
    r = await client.get("/api/admin/orders/export.csv?from=soon")
    assert r.status == 400 and (await r.json())["data"]["errors"] == {
        "from": "Give a date (2026-11-24) or an ISO time (2026-11-24T12:00:00Z)."}


async def test_export_reads_page_by_page_without_gaps_or_repeats(factory, ctx):
    buyer = await factory.user()
    goods_id = await factory.goods()
    ids = [await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id) for _ in range(7)]
    filters = admin_orders.clean_filters({"q": buyer["username"]})
    chunks = [chunk async for chunk in admin_orders.export_csv(ctx, filters, batch=3)]
    assert len(chunks) == 3  # rows 3 + 3 + 1 (the header rides with the first)
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"), newline="")))
    numbers = await db.fetch_all(ctx.db, "SELECT order_number FROM orders WHERE user_id = %s ORDER BY id DESC",
                                 (buyer["id"],))
    assert [row[0] for row in rows[1:]] == [n["order_number"] for n in numbers]
    assert len(rows) == 1 + len(ids)


# --- guards -----------------------------------------------------------------------------------

ROUTES = [("GET", "/api/admin/orders"), ("GET", "/api/admin/orders/1"), ("GET", "/api/admin/orders/export.csv"),
          ("POST", "/api/admin/orders/1/status"), ("POST", "/api/admin/orders/1/remarks")]


async def test_shoppers_get_403_and_anonymous_401(client, factory):
    for method, path in ROUTES:
        r = await client.request(method, path, json={"status": "shipped", "content": "x"})
        assert r.status == 401 and (await r.json())["data"] == {"reason": "unauthenticated"}, path
    user = await factory.user()
    token = await login(client, user["username"])
    for method, path in ROUTES:
        r = await client.request(method, path, json={"status": "shipped", "content": "x"},
                                 headers={"X-CSRF-Token": token})
        assert r.status == 403 and (await r.json())["data"] == {"reason": "forbidden"}, path
