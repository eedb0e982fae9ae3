"""A hot sale split over stock shards: routing, donors, the no-early-sold_out rule, per-shard state."""
from __future__ import annotations

import asyncio
import collections
import datetime as dt

from bench.verdict import compute
from flashsale import db
from flashsale.appkeys import ADMISSION
from flashsale.redis_keys import home_shard
from flashsale.services import orders, seckill, seckill_state

from tests.support.auth import session_cookie
from tests.support.seckill import (buyers, count_orders, iso, make_sale, now, purchase, remaining, shard_stocks,
                                   sold)
from tests.support.waiting import wait_until

SHARDS = 4


async def _orders_are(ctx, sale_id: int, n: int) -> bool:
    return await count_orders(ctx, sale_id) == n


async def _homed(ctx, n: int, shard: int) -> list[dict]:
    """n buyers whose home shard (of a 4-shard sale) is `shard`."""
    people = await buyers(ctx, n * SHARDS)
    return [p for p in people if home_shard(p["id"], SHARDS) == shard][:n]


async def _result(client, sale_id: int, user_id: int) -> dict:
    headers, _ = await session_cookie(client.app, user_id)
    r = await client.get(f"/api/seckill/{sale_id}/result", headers=headers)
    assert r.status == 200
    return (await r.json())["data"]


async def test_200_buyers_race_a_4_shard_sale_of_40_and_nobody_is_told_sold_out_early(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=40, limit=2, shards=SHARDS)
    assert sale["stock_shards"] == SHARDS and sale["remaining"] == 40
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [10, 10, 10, 10]
    people = await buyers(ctx, 200)
    # The rule, made checkable: nothing gives stock back during this race, so every shard's stock
    # only falls; a buyer told sold_out must therefore find the sum of the shards' stocks at zero
    # right after the answer (any unit still there was there when its shard was asked too).
    after_sold_out: list[int] = []

    async def buyer(person):
        headers, _ = await session_cookie(client.app, person["id"])
        answers = []
        for _ in range(3):  # a double-clicking buyer with a limit of 2
            status, body = await purchase(client, sale["id"], headers, person["address_id"])
            if status != 202 and body["data"]["reason"] == "sold_out":
                after_sold_out.append(sum(await shard_stocks(ctx, sale["id"], SHARDS)))
            answers.append((status, body))
        return person, answers

    results = await asyncio.gather(*[buyer(p) for p in people])

    accepted = collections.Counter()
    refusals = collections.Counter()
    for person, answers in results:
        for status, body in answers:
            if status == 202:
                accepted[person["id"]] += 1
            else:
                refusals[body["data"]["reason"]] += 1
    assert sum(accepted.values()) == 40
    assert max(accepted.values()) <= 2
    assert set(refusals) <= {"sold_out", "already_purchased"}, refusals
    assert after_sold_out and set(after_sold_out) == {0}
    assert await remaining(ctx, sale["id"]) == 0
    r = await client.get(f"/api/seckill/{sale['id']}")
    assert (await r.json())["data"]["remaining"] == 0

    await wait_until(lambda: _orders_are(ctx, sale["id"], 40))
    per_user = await db.fetch_all(ctx.db, "SELECT user_id, COUNT(*) AS n FROM orders WHERE flash_sale_id = %s "
                                          "GROUP BY user_id", (sale["id"],))
    assert {r["user_id"]: r["n"] for r in per_user} == dict(accepted)
    assert await sold(ctx, sale["id"]) == 40
    # every shard's stream was drained by its own consumers; every winner finds their order
    for shard in range(SHARDS):
        group = ctx.keys.consumer_group()
        assert (await ctx.redis.xpending(ctx.keys.sale_stream(sale["id"], shard), group))["pending"] == 0
    for user_id in list(accepted)[:10]:
        data = await _result(client, sale["id"], user_id)
        assert data["status"] == "success", data


async def test_a_buyer_is_admitted_on_the_home_shard_while_it_has_stock(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=8, shards=SHARDS)
    [person] = await _homed(ctx, 1, 3)
    headers, _ = await session_cookie(client.app, person["id"])
    status, body = await purchase(client, sale["id"], headers, person["address_id"])
    assert status == 202, body
    k = ctx.keys
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [2, 2, 2, 1]
    assert await ctx.redis.hget(k.sale_buyers(sale["id"], 3), person["id"]) == "1"
    assert await ctx.redis.hget(k.sale_user_request(sale["id"], 3), person["id"]) == body["data"]["request_id"]
    for shard in (0, 1, 2):
        assert await ctx.redis.hget(k.sale_buyers(sale["id"], shard), person["id"]) is None
    status, body = await purchase(client, sale["id"], headers, person["address_id"])
    assert (status, body["data"]["reason"]) == (409, "already_purchased")


async def test_a_dry_home_shard_takes_units_from_the_others_until_all_are_gone(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=8, shards=SHARDS)  # 2 a shard
    people = await _homed(ctx, 9, 1)  # all homed on shard 1
    answers = []
    for person in people:
        headers, _ = await session_cookie(client.app, person["id"])
        answers.append(await purchase(client, sale["id"], headers, person["address_id"]))
    assert [s for s, _ in answers] == [202] * 8 + [409]
    assert answers[-1][1]["data"]["reason"] == "sold_out"
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [0, 0, 0, 0]
    k = ctx.keys
    # the per-user state stays on the home shard: the last buyer's reservation was given back
    held = await ctx.redis.hgetall(k.sale_buyers(sale["id"], 1))
    assert held == {str(p["id"]): "1" for p in people[:8]}
    away = 0
    for shard in (0, 2, 3):
        for _, fields in await ctx.redis.xrange(k.sale_stream(sale["id"], shard)):
            assert fields["h"] == "1"
            away += 1
    assert away in (0, 6)  # 0 when the consumers already trimmed; checked by the orders below
    stats = collections.Counter()
    for shard in range(SHARDS):
        stats.update({f: int(v) for f, v in (await ctx.redis.hgetall(k.sale_stats(sale["id"], shard))).items()})
    assert stats["admitted"] == 8 and stats["sold_out"] == 1

    await wait_until(lambda: _orders_are(ctx, sale["id"], 8))
    for person in people[:8]:
        data = await wait_until(lambda: _success(client, sale["id"], person["id"]))
        assert data["order_id"]
    assert (await _result(client, sale["id"], people[8]["id"]))["status"] == "none"
    verdict = await compute(ctx.settings, sale["id"])  # the bench's verdict sums the shards too
    assert verdict["passed"], verdict
    assert verdict["stock_shards"] == SHARDS and verdict["redis_remaining"] == 0


async def _success(client, sale_id, user_id):
    data = await _result(client, sale_id, user_id)
    return data if data["status"] == "success" else None


async def test_a_lost_state_is_rebuilt_on_every_shard_without_overselling(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=20, shards=SHARDS)
    first = await buyers(ctx, 6)
    for person in first:
        headers, _ = await session_cookie(client.app, person["id"])
        assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    k = ctx.keys
    await ctx.redis.delete(*[key for s in range(SHARDS) for key in
                             (k.sale_window(sale["id"], s), k.sale_stock(sale["id"], s), k.sale_buyers(sale["id"], s))])
    assert not await seckill_state.is_warm(ctx, sale["id"])
    await wait_until(lambda: seckill_state.is_warm(ctx, sale["id"]), timeout=10, what="the watcher's rebuild")
    assert await remaining(ctx, sale["id"]) == 14
    for person in first:  # each buyer's held unit is back on their home shard
        home = home_shard(person["id"], SHARDS)
        assert await ctx.redis.hget(k.sale_buyers(sale["id"], home), person["id"]) == "1"

    rest = await buyers(ctx, 40)
    calls = []
    for person in first + rest:
        headers, _ = await session_cookie(client.app, person["id"])
        calls.append(purchase(client, sale["id"], headers, person["address_id"]))
    answers = await asyncio.gather(*calls)
    assert sum(1 for s, _ in answers if s == 202) == 14
    assert all(b["data"]["reason"] == "already_purchased" for s, b in answers[:6])
    await wait_until(lambda: _orders_are(ctx, sale["id"], 20))
    await asyncio.sleep(0.3)
    assert await count_orders(ctx, sale["id"]) == 20


async def test_only_the_lost_shard_is_rebuilt_and_the_warm_ones_keep_their_stock(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=20, shards=SHARDS)
    k = ctx.keys
    await ctx.redis.delete(k.sale_window(sale["id"], 2), k.sale_stock(sale["id"], 2))
    assert await seckill_state.rebuild_state(ctx, sale["id"])
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [5, 5, 5, 5]


async def test_a_cancelled_order_gives_its_unit_back_and_another_buyer_gets_it(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=4, shards=SHARDS)
    people = await buyers(ctx, 6)
    for person in people[:4]:
        headers, _ = await session_cookie(client.app, person["id"])
        assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    late = people[5]
    headers, _ = await session_cookie(client.app, late["id"])
    assert (await purchase(client, sale["id"], headers, late["address_id"]))[1]["data"]["reason"] == "sold_out"
    await wait_until(lambda: _orders_are(ctx, sale["id"], 4))
    order = await db.fetch_one(ctx.db, "SELECT id, user_id FROM orders WHERE flash_sale_id = %s LIMIT 1", (sale["id"],))
    await orders.cancel_order(ctx, order["id"], owner_id=order["user_id"], actor="user", actor_id=order["user_id"])
    stocks = await shard_stocks(ctx, sale["id"], SHARDS)
    assert stocks[home_shard(order["user_id"], SHARDS)] == 1 and sum(stocks) == 1
    assert await ctx.redis.hget(ctx.keys.sale_buyers(sale["id"], home_shard(order["user_id"], SHARDS)),
                                order["user_id"]) is None

    async def bought():
        status, _ = await purchase(client, sale["id"], headers, late["address_id"])
        return status == 202  # the local sold-out flag clears on the stock-returned notice
    await wait_until(bought, timeout=5)
    await wait_until(lambda: _orders_are(ctx, sale["id"], 5))
    assert await sold(ctx, sale["id"]) == 4


async def test_admin_stock_edits_spread_over_the_shards(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=10, shards=SHARDS)  # 3, 3, 2, 2
    edited = await seckill.update_sale(ctx, sale["id"], {"total_stock": 16})
    assert edited["remaining"] == 16
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [5, 5, 3, 3]
    edited = await seckill.update_sale(ctx, sale["id"], {"total_stock": 7})
    assert edited["remaining"] == 7 and await remaining(ctx, sale["id"]) == 7
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [0, 1, 3, 3]


async def test_stock_shards_is_validated_and_frozen_once_live(admin_client, ctx, factory):
    client, _, csrf = admin_client
    goods_id = await factory.goods(stock=10)
    start = now() + dt.timedelta(seconds=60)
    body = {"goods_id": goods_id, "price": "1.00", "total_stock": 12, "start_time": iso(start),
            "end_time": iso(start + dt.timedelta(seconds=60))}
    for bad in (0, 65, "many", 2.5):
        r = await client.post("/api/admin/seckill", json={**body, "stock_shards": bad}, headers=csrf)
        assert r.status == 400, bad
        assert "stock_shards" in (await r.json())["data"]["errors"]
    r = await client.post("/api/admin/seckill", json={**body, "stock_shards": 2}, headers=csrf)
    assert r.status == 201
    sale = (await r.json())["data"]
    assert sale["stock_shards"] == 2
    assert await shard_stocks(ctx, sale["id"], 2) == [6, 6]
    # before the start the layout may change: the stock is laid out anew
    r = await client.put(f"/api/admin/seckill/{sale['id']}", json={"stock_shards": 3}, headers=csrf)
    assert r.status == 200, await r.text()
    assert (await r.json())["data"]["stock_shards"] == 3
    assert await shard_stocks(ctx, sale["id"], 3) == [4, 4, 4]
    assert await ctx.redis.hget(ctx.keys.sale_window(sale["id"], 2), "shards") == "3"

    live = await make_sale(ctx, factory, stock=4, shards=2)
    r = await client.put(f"/api/admin/seckill/{live['id']}", json={"stock_shards": 4}, headers=csrf)
    assert r.status == 400
    assert "stock_shards" in (await r.json())["data"]["errors"]


async def test_a_process_that_thinks_the_sale_has_one_shard_is_corrected(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=4, shards=SHARDS)
    people = await _homed(ctx, 1, 2)
    admission = client.app[ADMISSION]
    admission.shards[sale["id"]] = 1  # stale
    headers, _ = await session_cookie(client.app, people[0]["id"])
    assert (await purchase(client, sale["id"], headers, people[0]["address_id"]))[0] == 202
    assert admission.shards[sale["id"]] == SHARDS
    assert await shard_stocks(ctx, sale["id"], SHARDS) == [1, 1, 0, 1]


async def test_cancelling_a_sharded_sale_expires_every_shards_keys(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=8, shards=SHARDS)
    people = await buyers(ctx, 4)
    for person in people:
        headers, _ = await session_cookie(client.app, person["id"])
        assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    await seckill.cancel_sale(ctx, sale["id"])
    found = 0
    for key in seckill_state.sale_keys(ctx, sale["id"], SHARDS):
        ttl = await ctx.redis.pttl(key)
        if ttl != -2:  # the key exists
            found += 1
            assert ttl > 0, key
    assert found >= SHARDS * 3  # window, stock and buyers of each shard at least
    headers, _ = await session_cookie(client.app, people[0]["id"])
    status, body = await purchase(client, sale["id"], headers, people[0]["address_id"])
    assert body["data"]["reason"] == "ended"
