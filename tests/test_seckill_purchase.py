"""The flash-sale purchase path: a burst, refusals, results."""
from __future__ import annotations

import asyncio
import collections
import time

from flashsale import db
from flashsale.services.auth_cache import cache_addresses

from tests.support.auth import session_cookie
from tests.support.seckill import buyers, count_orders, make_sale, purchase, remaining, sold
from tests.support.waiting import wait_until


async def test_burst_of_2000_requests_from_1000_users_sells_exactly_100(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=100)
    people = await buyers(ctx, 1000)
    calls = []
    for person in people:
        headers, _ = await session_cookie(client.app, person["id"])
        calls += [purchase(client, sale["id"], headers, person["address_id"]) for _ in range(2)]
    answers = await asyncio.gather(*calls)

    accepted = [(body["data"]["request_id"]) for status, body in answers if status == 202]
    refusals = collections.Counter(body["data"]["reason"] for status, body in answers if status != 202)
    assert len(accepted) == 100
    assert set(refusals) <= {"sold_out", "already_purchased"}
    assert sum(refusals.values()) == 1900
    assert await remaining(ctx, sale["id"]) == 0

    await wait_until(lambda: _count_is(ctx, sale["id"], 100))
    per_user = await db.fetch_all(ctx.db, "SELECT user_id, COUNT(*) AS n FROM orders WHERE flash_sale_id = %s "
                                          "GROUP BY user_id HAVING n > 1", (sale["id"],))
    assert per_user == []
    assert await sold(ctx, sale["id"]) == 100
    request_ids = {r["request_id"] for r in await db.fetch_all(
        ctx.db, "SELECT request_id FROM orders WHERE flash_sale_id = %s", (sale["id"],))}
    assert request_ids == set(accepted)

    # every accepted buyer's /result is success with their order
    winners = await db.fetch_all(ctx.db, "SELECT id, user_id FROM orders WHERE flash_sale_id = %s", (sale["id"],))
    for row in winners:
        headers, _ = await session_cookie(client.app, row["user_id"])
        r = await client.get(f"/api/seckill/{sale['id']}/result", headers=headers)
        body = await r.json()
        assert r.status == 200, body
        assert body["data"]["status"] == "success" and body["data"]["order_id"] == row["id"], body


async def _count_is(ctx, sale_id, n):
    return await count_orders(ctx, sale_id) == n


async def test_queued_purchase_becomes_a_pending_order_with_the_sale_price(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=5, price="1.50")
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    status, body = await purchase(client, sale["id"], headers, person["address_id"], "wechat")
    assert status == 202, body
    assert body == {"code": 202, "msg": "queued", "data": {"status": "queued", "request_id": body["data"]["request_id"]}}

    async def result():
        r = await client.get(f"/api/seckill/{sale['id']}/result", headers=headers)
        data = (await r.json())["data"]
        return data if data["status"] == "success" else None

    data = await wait_until(result)
    r = await client.get(f"/api/orders/{data['order_id']}", headers=headers)
    order = (await r.json())["data"]["order"]
    assert r.status == 200, order
    assert order["status"] == "pending"
    assert order["flash_sale_id"] == sale["id"]
    assert order["unit_price"] == "1.50" and order["total_amount"] == "1.50"
    assert order["payment_method"] == "wechat"
    assert order["pay_deadline"] is not None
    assert [e["to"] for e in order["log"]] == ["pending"]


async def test_result_is_none_before_any_purchase(client, ctx, factory):
    sale = await make_sale(ctx, factory)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    r = await client.get(f"/api/seckill/{sale['id']}/result", headers=headers)
    assert r.status == 200
    assert (await r.json())["data"] == {"status": "none"}
    r = await client.get("/api/seckill/999999/result", headers=headers)
    assert r.status == 404


async def _stats(ctx, sale_id):
    return await ctx.redis.hgetall(ctx.keys.sale_stats(sale_id))


async def test_sale_not_started_ended_or_cancelled_refuses_and_moves_nothing(client, ctx, factory):
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    upcoming = await make_sale(ctx, factory, stock=3, start_in_s=3600)
    ended = await make_sale(ctx, factory, stock=3, start_in_s=-7200, length_s=3600)
    cancelled = await make_sale(ctx, factory, stock=3)
    admin = await factory.user(role="admin")
    from flashsale.services import seckill
    await seckill.cancel_sale(ctx, cancelled["id"])

    for sale, reason in ((upcoming, "not_started"), (ended, "ended"), (cancelled, "ended")):
        status, body = await purchase(client, sale["id"], headers, person["address_id"])
        assert (status, body["data"]["reason"]) == (409, reason), body
        assert await remaining(ctx, sale["id"]) == 3
        assert await ctx.redis.xlen(ctx.keys.sale_stream(sale["id"])) == 0
        assert await ctx.redis.hget(ctx.keys.sale_buyers(sale["id"]), person["id"]) is None
    assert admin["role"] == "admin"


async def test_bad_input_is_refused_before_the_script_runs(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=3)
    me, other = await buyers(ctx, 2)
    headers, _ = await session_cookie(client.app, me["id"])
    cases = [
        ({"address_id": other["address_id"], "payment_method": "alipay"}, 400, "validation", "address_id"),
        ({"payment_method": "alipay"}, 400, "validation", "address_id"),
        ({"address_id": me["address_id"], "payment_method": "cash"}, 400, "validation", "payment_method"),
        ({"address_id": "abc", "payment_method": "alipay"}, 400, "validation", "address_id"),
    ]
    for body, status, reason, field in cases:
        r = await client.post(f"/api/seckill/{sale['id']}/purchase", headers=headers, json=body)
        data = (await r.json())["data"]
        assert (r.status, data["reason"]) == (status, reason), data
        assert field in data["errors"]
    no_csrf = {"Cookie": headers["Cookie"]}
    r = await client.post(f"/api/seckill/{sale['id']}/purchase", headers=no_csrf,
                          json={"address_id": me["address_id"], "payment_method": "alipay"})
    assert r.status == 403 and (await r.json())["data"]["reason"] == "csrf"
    wrong = {**headers, "X-CSRF-Token": "nope"}
    r = await client.post(f"/api/seckill/{sale['id']}/purchase", headers=wrong,
                          json={"address_id": me["address_id"], "payment_method": "alipay"})
    assert r.status == 403
    r = await client.post(f"/api/seckill/{sale['id']}/purchase",
                          json={"address_id": me["address_id"], "payment_method": "alipay"})
    assert r.status == 401 and (await r.json())["data"]["reason"] == "unauthenticated"
    # the script never ran: no outcome was counted, nothing moved
    assert await _stats(ctx, sale["id"]) == {}
    assert await remaining(ctx, sale["id"]) == 3


async def test_the_buyer_check_refuses_before_admitting_with_the_auth_hash_warm(client, ctx, factory):
    """On one Redis the check runs inside admit.lua: each way it can refuse moves nothing and counts
    nothing, whether the script decides (an ended session, a ban, a new epoch) or MySQL does (an
    address not among the cached ones)."""
    sale = await make_sale(ctx, factory, stock=3)
    me, other = await buyers(ctx, 2)
    headers, _ = await session_cookie(client.app, me["id"])
    key = ctx.keys.user_auth(me["id"])
    await cache_addresses(ctx, me["id"])
    assert await ctx.redis.hget(key, "addrs") == str(me["address_id"])
    status, body = await purchase(client, sale["id"], headers, other["address_id"])
    assert (status, body["data"]["reason"]) == (400, "validation"), body
    field = next(f for f in await ctx.redis.hkeys(key) if f.startswith("s:"))
    live = await ctx.redis.hget(key, field)
    for name, value, restore in ((field, "0", live), ("active", "0", "1"), ("epoch", "7", "0"),
                                 (field, str(int(time.time()) - 1), live)):
        await ctx.redis.hset(key, name, value)
        status, body = await purchase(client, sale["id"], headers, me["address_id"])
        assert (status, body["data"]["reason"]) == (401, "unauthenticated"), (name, value, body)
        r = await client.get(f"/api/seckill/{sale['id']}/result", headers=headers)
        assert r.status == 401, (name, value)
        await ctx.redis.hset(key, name, restore)
    assert await _stats(ctx, sale["id"]) == {}
    assert await remaining(ctx, sale["id"]) == 3
    status, body = await purchase(client, sale["id"], headers, me["address_id"])
    assert status == 202, body
    assert await _stats(ctx, sale["id"]) == {"admitted": "1"}


async def test_unknown_sale_is_404(client, ctx, factory):
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    status, body = await purchase(client, 987654, headers, person["address_id"])
    assert (status, body["data"]["reason"]) == (404, "not_found")


async def test_a_changed_password_session_cannot_buy(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=3)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"], epoch=0)
    await db.execute(ctx.db, "UPDATE users SET session_epoch = 1 WHERE id = %s", (person["id"],))
    await ctx.redis.delete(ctx.keys.user_auth(person["id"]))
    status, body = await purchase(client, sale["id"], headers, person["address_id"])
    assert status == 401, body
    assert await remaining(ctx, sale["id"]) == 3


async def test_per_user_limit_of_two_allows_exactly_two(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=10, limit=2)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    answers = await asyncio.gather(*[purchase(client, sale["id"], headers, person["address_id"]) for _ in range(5)])
    statuses = sorted(s for s, _ in answers)
    assert statuses == [202, 202, 409, 409, 409]
    assert {b["data"]["reason"] for s, b in answers if s == 409} == {"already_purchased"}
    assert await remaining(ctx, sale["id"]) == 8


async def test_purchase_rate_limit_per_user(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=10)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    rate = ctx.settings.purchase_rate_per_s
    answers = await asyncio.gather(*[purchase(client, sale["id"], headers, person["address_id"])
                                     for _ in range(rate + 3)])
    limited = [b for s, b in answers if s == 429]
    assert len(limited) == 3
    assert all(b["data"]["reason"] == "rate_limited" for b in limited)


async def test_sold_out_flag_answers_locally_and_clears_when_stock_returns(client, ctx, factory):
    from flashsale.appkeys import ADMISSION

    sale = await make_sale(ctx, factory, stock=1)
    a, b = await buyers(ctx, 2)
    ha, _ = await session_cookie(client.app, a["id"])
    hb, _ = await session_cookie(client.app, b["id"])
    assert (await purchase(client, sale["id"], ha, a["address_id"]))[0] == 202
    status, body = await purchase(client, sale["id"], hb, b["address_id"])
    assert (status, body["data"]["reason"]) == (409, "sold_out")
    admission = client.app[ADMISSION]
    assert admission.is_sold_out(sale["id"])
    stats_before = await _stats(ctx, sale["id"])
    status, _ = await purchase(client, sale["id"], hb, b["address_id"])
    assert status == 409
    assert await _stats(ctx, sale["id"]) == stats_before  # answered without Redis
    # a's order is cancelled: the unit returns and the flag goes at once (pub/sub)
    order_id = await wait_until(lambda: db.fetch_value(ctx.db, "SELECT id FROM orders WHERE flash_sale_id = %s",
                                                     (sale["id"],)))
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=ha)
    assert r.status == 200, await r.text()
    await wait_until(lambda: _not_flagged(admission, sale["id"]), timeout=2)
    status, body = await purchase(client, sale["id"], hb, b["address_id"])
    assert status == 202, body


async def test_when_the_sold_out_flag_runs_out_one_purchase_asks_redis_and_the_rush_does_not(client, ctx, factory):
    from flashsale.appkeys import ADMISSION

    sale = await make_sale(ctx, factory, stock=1)
    people = await buyers(ctx, 21)
    cookies = [(await session_cookie(client.app, p["id"]))[0] for p in people]
    assert (await purchase(client, sale["id"], cookies[0], people[0]["address_id"]))[0] == 202
    assert (await purchase(client, sale["id"], cookies[1], people[1]["address_id"]))[0] == 409  # flag set
    admission = client.app[ADMISSION]
    admission.sold_out_until[sale["id"]] = time.monotonic() - 1  # the flag has run out
    asked_before = int((await _stats(ctx, sale["id"])).get("sold_out", 0))
    answers = await asyncio.gather(*(purchase(client, sale["id"], cookies[i], people[i]["address_id"])
                                     for i in range(1, 21)))
    assert {(status, body["data"]["reason"]) for status, body in answers} == {(409, "sold_out")}
    assert int((await _stats(ctx, sale["id"]))["sold_out"]) == asked_before + 1  # one asked Redis
    assert admission.is_sold_out(sale["id"])

    # a unit comes back without its notice reaching this process: the next one to ask gets it
    await ctx.redis.incr(ctx.keys.sale_stock(sale["id"]))
    admission.sold_out_until[sale["id"]] = time.monotonic() - 1
    status, body = await purchase(client, sale["id"], cookies[20], people[20]["address_id"])
    assert status == 202, body
    assert not admission.is_sold_out(sale["id"])  # admitted: the flag is gone, the next buyer asks too


async def _not_flagged(admission, sale_id):
    return not admission.is_sold_out(sale_id)


async def test_user_who_cancels_may_buy_again(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=5)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    order_id = await wait_until(lambda: db.fetch_value(ctx.db, "SELECT id FROM orders WHERE flash_sale_id = %s",
                                                     (sale["id"],)))
    status, body = await purchase(client, sale["id"], headers, person["address_id"])
    assert (status, body["data"]["reason"]) == (409, "already_purchased")
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert r.status == 200
    assert await remaining(ctx, sale["id"]) == 5
    assert await sold(ctx, sale["id"]) == 0
    status, body = await purchase(client, sale["id"], headers, person["address_id"])
    assert status == 202, body
