"""Nothing of a sale lives in Redis forever, and a purchase on an over sale never rebuilds it."""
from __future__ import annotations

import asyncio

from flashsale import db
from flashsale.appkeys import ADMISSION, CTX, ENGINE
from flashsale.jsonio import utcnow
from flashsale.services import seckill, seckill_state

from tests.support.auth import session_cookie
from tests.support.factory import Factory
from tests.support.seckill import buyers, make_sale, purchase
from tests.support.waiting import wait_until


async def ttls(ctx, sale_id) -> dict[str, int]:
    """key -> PTTL of every existing key of the sale (-1: no expiry)."""
    found = {}
    async for key in ctx.redis.scan_iter(match=ctx.keys.sale_tag(sale_id) + ":*", count=1000):
        found[key] = await ctx.redis.pttl(key)
    return found


async def test_an_ended_sale_expires_every_key_and_leaves_fs_active(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(sale_state_keep_s=60))
    ctx, engine = client.app[CTX], client.app[ENGINE]
    sale = await make_sale(ctx, Factory(ctx), stock=3, length_s=3)
    people = await buyers(ctx, 2)
    for person in people:
        headers, _ = await session_cookie(client.app, person["id"])
        assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    assert str(sale["id"]) in await ctx.redis.smembers(ctx.keys.active_sales())
    await engine.refresh()  # the watcher follows the sale now rather than at its next round
    await wait_until(lambda: db.fetch_value(ctx.db, "SELECT sold FROM flash_sales WHERE id = %s",
                                            (sale["id"],)), what="orders written")
    await wait_until(lambda: _ended(ctx, sale["id"]), what="the sale's end")
    await engine.refresh()
    await wait_until(lambda: _all_expire(ctx, sale["id"]), what="every key with an expiry")
    await wait_until(lambda: _inactive(ctx, sale["id"]), what="sale gone from fs:active")
    left = await ttls(ctx, sale["id"])
    assert {k.rsplit(":", 1)[-1] for k in left} >= {"window", "stock", "buyers", "stream", "results",
                                                   "user_req", "stats"}
    assert all(0 < ttl <= 60_000 for ttl in left.values()), left


async def _ended(ctx, sale_id) -> bool:
    row = await seckill.get_sale_row(ctx, sale_id)
    return row["end_time"] <= utcnow()


async def _all_expire(ctx, sale_id) -> bool:
    left = await ttls(ctx, sale_id)
    return bool(left) and all(ttl > 0 for ttl in left.values())


async def _inactive(ctx, sale_id) -> bool:
    return str(sale_id) not in await ctx.redis.smembers(ctx.keys.active_sales())


async def test_a_cancelled_sale_expires_from_now_and_answers_ended(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=3, length_s=3600)
    await seckill.cancel_sale(ctx, sale["id"])
    left = await ttls(ctx, sale["id"])
    assert left and all(0 < ttl <= ctx.settings.sale_state_keep_s * 1000 for ttl in left.values()), left
    assert str(sale["id"]) not in await ctx.redis.smembers(ctx.keys.active_sales())


async def test_a_purchase_on_an_over_sale_whose_keys_are_gone_answers_ended_and_rebuilds_nothing(
        client, ctx, factory, monkeypatch):
    sale = await make_sale(ctx, factory, stock=3, length_s=3600)
    await seckill.cancel_sale(ctx, sale["id"])
    await ctx.redis.delete(*await ttls(ctx, sale["id"]))  # the keys expired
    rebuilds = []
    real_rebuild = seckill_state.rebuild_state

    async def counting(ctx_, sale_id):
        rebuilds.append(sale_id)
        return await real_rebuild(ctx_, sale_id)

    monkeypatch.setattr(seckill_state, "rebuild_state", counting)
    person = (await buyers(ctx, 1))[0]
    headers, _ = await session_cookie(client.app, person["id"])
    for _ in range(3):
        status, body = await purchase(client, sale["id"], headers, person["address_id"])
        assert status == 409 and body["data"]["reason"] == "ended", body
    await asyncio.sleep(0.1)
    # the watcher may rebuild the run's other live sales meanwhile: none of this one
    assert sale["id"] not in rebuilds and await ttls(ctx, sale["id"]) == {}
    assert sale["id"] in client.app[ADMISSION].over  # the next ones are answered without MySQL
    # and a rebuild asked for anyway (the watcher) writes nothing for an over sale
    assert await real_rebuild(ctx, sale["id"]) is False and await ttls(ctx, sale["id"]) == {}
