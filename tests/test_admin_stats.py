"""The admin dashboard's figures: days zero-filled, revenue without cancelled orders, best sellers,
and the live sales' engine figures from a real warm sale."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flashsale import db
from flashsale.appkeys import CTX
from flashsale.jsonio import iso
from flashsale.services import admin_stats

from tests.support.auth import login, session_cookie
from tests.support.factory import Factory
from tests.support.orders import insert_order, utc_now
from tests.support.seckill import buyers, count_orders, make_sale, purchase
from tests.support.waiting import wait_until


async def stats(client, query="", status=200):
    r = await client.get("/api/admin/stats" + query)
    body = await r.json()
    assert r.status == status, body
    return body["data"]


def by_date(data) -> dict[str, dict]:
    return {d["date"]: {"orders": d["orders"], "revenue": Decimal(d["revenue"])} for d in data["daily"]}


@pytest.fixture
async def quiet_client(aiohttp_client, make_app):
    """An app without background work: no consumer reads the streams."""
    return await aiohttp_client(make_app(background_tasks=False))


async def log_in_admin(client) -> None:
    """Log an admin in; buyers' purchases go first (they send their own session cookie)."""
    admin = await Factory(client.app[CTX]).user(role="admin")
    await login(client, admin["username"])


@pytest.fixture
async def quiet_admin(quiet_client):
    await log_in_admin(quiet_client)
    return quiet_client, None


async def test_every_day_is_present_and_revenue_leaves_cancelled_orders_out(quiet_admin):
    client, _ = quiet_admin
    ctx = client.app[CTX]
    factory = Factory(ctx)
    before = await stats(client, "?days=90")
    buyer = await factory.user()
    goods_id = await factory.goods()
    now = utc_now()
    three_days_ago = now - dt.timedelta(days=3)
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid", unit_price="10.00",
                       created_at=three_days_ago)
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="cancelled", unit_price="20.00",
                       created_at=three_days_ago)
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="completed", unit_price="2.50",
                       quantity=2, created_at=three_days_ago)
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="pending", unit_price="5.00")
    await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid", unit_price="99.00",
                       created_at=now - dt.timedelta(days=95))  # before the period
    after = await stats(client, "?days=90")

    assert after["days"] == 90
    dates = [d["date"] for d in after["daily"]]
    assert dates == [(now.date() - dt.timedelta(days=89 - i)).isoformat() for i in range(90)]
    assert all(isinstance(d["orders"], int) and d["revenue"].count(".") == 1 for d in after["daily"])
    old, new = by_date(before), by_date(after)
    changes = {day: {"orders": new[day]["orders"] - old[day]["orders"],
                     "revenue": new[day]["revenue"] - old[day]["revenue"]}
               for day in new if new[day] != old[day]}
    assert changes == {
        three_days_ago.date().isoformat(): {"orders": 3, "revenue": Decimal("15.00")},
        now.date().isoformat(): {"orders": 1, "revenue": Decimal("5.00")},
    }
    assert {k: after["status_counts"][k] - before["status_counts"][k] for k in after["status_counts"]} == {
        "pending": 1, "paid": 1, "shipped": 0, "completed": 1, "cancelled": 1}

    one = await stats(client, "?days=1")
    assert [d["date"] for d in one["daily"]] == [now.date().isoformat()]
    assert len((await stats(client))["daily"]) == 14


async def test_days_outside_1_to_90_are_refused(quiet_admin):
    client, _ = quiet_admin
    for days in ("0", "91", "x", "-3"):
        data = await stats(client, f"?days={days}", status=400)
        assert data["reason"] == "validation" and set(data["errors"]) == {"days"}, days
    data = await stats(client, "?only=everything", status=400)
    assert set(data["errors"]) == {"only"}


async def test_top_goods_rank_units_of_the_period_that_stand(quiet_admin):
    client, _ = quiet_admin
    ctx = client.app[CTX]
    factory = Factory(ctx)
    buyer = await factory.user()
    first, second, third, stale = [await factory.goods(name=f"Top {n}") for n in ("A", "B", "C", "S")]

    async def orders_of(goods_id, n, *, status="paid", days_ago=0):
        for _ in range(n):
            await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status=status, quantity=99,
                               created_at=utc_now() - dt.timedelta(days=days_ago))

    await orders_of(first, 7)
    await orders_of(second, 6)
    await orders_of(second, 5, status="cancelled")  # would make it first
    await orders_of(third, 5, days_ago=2)
    await orders_of(stale, 9, days_ago=20)  # outside the 14 days
    data = await stats(client, "?days=14")
    assert len(data["top_goods"]) <= 5
    assert data["top_goods"][:3] == [{"id": first, "name": "Top A", "sales": 693},
                                     {"id": second, "name": "Top B", "sales": 594},
                                     {"id": third, "name": "Top C", "sales": 495}]
    assert stale not in [g["id"] for g in data["top_goods"]]
    assert (await stats(client, "?days=30"))["top_goods"][0] == {"id": stale, "name": "Top S", "sales": 891}


async def test_period_queries_read_ix_orders_created(ctx):
    since = utc_now() - dt.timedelta(days=14)
    for sql, args in ((admin_stats.DAILY_BY_STATUS, (since,)), (admin_stats.TOP_GOODS_SINCE, (since,)),
                      (admin_stats.RECENT_SALE_ORDERS.format(marks="%s"), (since, 1))):
        plan = await db.fetch_all(ctx.db, "EXPLAIN " + sql, args)
        orders_row = next(p for p in plan if p["table"] in ("orders", "o"))
        assert orders_row["key"] == "ix_orders_created" and orders_row["type"] == "range", plan


async def test_live_sale_shows_stock_sold_backlog_and_order_rate(client, factory, ctx):
    """A warm sale bought through the purchase API; the consumers of this app write the orders."""
    sale = await make_sale(ctx, factory, stock=10)
    ended = await make_sale(ctx, factory, start_in_s=-120, length_s=60)
    upcoming = await make_sale(ctx, factory, start_in_s=3600)
    for person in await buyers(ctx, 3):
        headers, _ = await session_cookie(client.app, person["id"])
        status, body = await purchase(client, sale["id"], headers, person["address_id"])
        assert status == 202, body

    async def written():
        return await count_orders(ctx, sale["id"]) == 3 and await _pending(ctx, sale["id"]) == 0

    await wait_until(written)
    await log_in_admin(client)
    data = await stats(client)
    live = {s["id"]: s for s in data["live_sales"]}
    assert ended["id"] not in live and upcoming["id"] not in live
    entry = live[sale["id"]]
    assert entry == {
        "id": sale["id"], "goods": {"id": sale["goods"]["id"], "name": sale["goods"]["name"]}, "price": "9.90",
        "total_stock": 10, "end_time": iso(sale["end_time"]),
        "remaining": 7, "sold": 3, "queued": 0, "pending": 0, "dead": 0, "orders_per_sec": 0.3,
    }
    assert (await stats(client, "?only=live")) == {"live_sales": data["live_sales"]}


async def _pending(ctx, sale_id):
    return (await ctx.redis.xpending(ctx.keys.sale_stream(sale_id), "orders"))["pending"]


async def test_live_sale_backlog_counts_queued_pending_and_dead_entries(quiet_client):
    """Without consumers the stream's entries wait: all queued; read but not acknowledged, pending."""
    client = quiet_client
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=10)
    people = await buyers(ctx, 4)
    for person in people:
        headers, _ = await session_cookie(client.app, person["id"])
        status, body = await purchase(client, sale["id"], headers, person["address_id"])
        assert status == 202, body

    async def figures():
        return {s["id"]: s for s in (await stats(client, "?only=live"))["live_sales"]}[sale["id"]]

    stream = ctx.keys.sale_stream(sale["id"])
    async def admitted():
        return await ctx.redis.xlen(stream) == 4  # the admission batch reached Redis

    await wait_until(admitted)
    await log_in_admin(client)
    entry = await figures()
    assert (entry["remaining"], entry["sold"], entry["queued"], entry["pending"], entry["dead"]) == (6, 0, 4, 0, 0)
    assert entry["orders_per_sec"] == 0

    await ctx.redis.xgroup_create(stream, "orders", id="0")
    await ctx.redis.xreadgroup("orders", "test-reader", {stream: ">"}, count=3)
    await ctx.redis.xadd(ctx.keys.sale_dead(sale["id"]), {"r": "req-1", "reason": "undeliverable"})
    entry = await figures()
    assert (entry["queued"], entry["pending"], entry["dead"]) == (1, 3, 1)


async def test_stats_need_an_admin(client, factory):
    r = await client.get("/api/admin/stats")
    assert r.status == 401 and (await r.json())["data"] == {"reason": "unauthenticated"}
    user = await factory.user()
    await login(client, user["username"])
    r = await client.get("/api/admin/stats")
    assert r.status == 403 and (await r.json())["data"] == {"reason": "forbidden"}
