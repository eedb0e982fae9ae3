"""Every pending order has a pay deadline, and a buyer holds only a bounded number of unpaid orders."""
from __future__ import annotations

import asyncio

import pytest

from flashsale import db
from flashsale.appkeys import ENGINE

from tests.support.auth import login
from tests.support.orders import goods_row


@pytest.fixture
async def client(aiohttp_client, make_app):
    """A pay window of 1 s, at most 3 unpaid orders each, and no sweeper running by itself."""
    return await aiohttp_client(make_app(pay_window_s=1, max_pending_orders=3, sweep_interval_s=3600))


async def place(client, headers, goods_id, address_id):
    r = await client.post("/api/orders", headers=headers, json={
        "goods_id": goods_id, "quantity": 1, "address_id": address_id, "payment_method": "alipay"})
    return r.status, (await r.json())["data"]


async def test_concurrent_placements_stop_at_the_pending_limit(user_client, factory, ctx):
    client, user, headers = user_client
    goods_id = await factory.goods(stock=50)
    address_id = await factory.address(user["id"])
    answers = await asyncio.gather(*(place(client, headers, goods_id, address_id) for _ in range(8)))
    statuses = sorted(s for s, _ in answers)
    assert statuses == [201] * 3 + [409] * 5
    assert {d["reason"] for s, d in answers if s == 409} == {"too_many_pending"}
    assert await goods_row(ctx, goods_id) == {"stock": 47, "sales": 3}  # the refused took nothing
    # paying one makes room for one more
    first = next(d["order"]["id"] for s, d in answers if s == 201)
    assert (await client.post(f"/api/orders/{first}/pay", headers=headers)).status == 200
    assert (await place(client, headers, goods_id, address_id))[0] == 201
    assert (await place(client, headers, goods_id, address_id))[0] == 409


async def test_the_sweeper_cancels_unpaid_ordinary_orders_and_returns_their_stock_once(client, factory, ctx):
    user = await factory.user()
    headers = {"X-CSRF-Token": await login(client, user["username"])}
    goods_id = await factory.goods(stock=10)
    address_id = await factory.address(user["id"])
    placed = [await place(client, headers, goods_id, address_id) for _ in range(2)]
    paid_id = placed[1][1]["order"]["id"]
    assert (await client.post(f"/api/orders/{paid_id}/pay", headers=headers)).status == 200
    assert await goods_row(ctx, goods_id) == {"stock": 8, "sales": 2}
    await asyncio.sleep(1.2)  # on purpose: the unpaid order outlives its 1 s pay window
    engine = client.app[ENGINE]
    # two processes sweeping at once (other tests' expired orders of this database go too)
    swept = await asyncio.gather(engine.sweep(), engine.sweep())
    assert sum(swept) >= 1
    assert await engine.sweep() == 0
    unpaid_id = placed[0][1]["order"]["id"]
    statuses = dict((r["id"], r["status"]) for r in await db.fetch_all(
        ctx.db, "SELECT id, status FROM orders WHERE user_id = %s", (user["id"],)))
    assert statuses == {unpaid_id: "cancelled", paid_id: "paid"}
    assert await goods_row(ctx, goods_id) == {"stock": 9, "sales": 1}  # one unit back, once
    r = await client.post(f"/api/orders/{unpaid_id}/pay", headers=headers)
    assert r.status == 409 and (await r.json())["data"]["reason"] == "bad_status"
