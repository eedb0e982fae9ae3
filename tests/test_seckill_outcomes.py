"""Outcomes without polling: /result?wait_ms= holds the answer until the batch commits."""
from __future__ import annotations

import asyncio
import time

import pytest

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from flashsale import outcomes
from flashsale.appkeys import ADMISSION, CTX, ENGINE, OUTCOMES

from tests.support.auth import session_cookie
from tests.support.factory import Factory
from tests.support.seckill import buyers, make_sale, purchase
from tests.support.waiting import wait_until


async def _result(client, sale_id: int, headers, wait_ms: int | str | None = None):
    query = "" if wait_ms is None else f"?wait_ms={wait_ms}"
    r = await client.get(f"/api/seckill/{sale_id}/result{query}", headers=headers)
    return r.status, await r.json()


async def _idle_client(aiohttp_client, make_app):
    """An app whose consumers do not run until the test starts its engine."""
    return await aiohttp_client(make_app(background_tasks=False))


async def _one_queued_purchase(aiohttp_client, make_app):
    """An idle app, a sale of 5 and one buyer whose purchase was answered 202: (client, sale, headers)."""
    client = await _idle_client(aiohttp_client, make_app)
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=5)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    return client, sale, headers


async def test_long_poll_returns_when_the_batch_commits_not_at_the_deadline(aiohttp_client, make_app):
    client, sale, headers = await _one_queued_purchase(aiohttp_client, make_app)

    started = time.monotonic()
    poll = asyncio.create_task(_result(client, sale["id"], headers, 10_000))
    await wait_until(lambda: client.app[OUTCOMES].waiters, what="the long-poll waits")
    await asyncio.sleep(0.3)
    assert not poll.done()  # nothing committed yet: the answer is held
    client.app[ENGINE].start()  # the consumers write the batch and publish its notice
    status, body = await asyncio.wait_for(poll, 10)
    elapsed = time.monotonic() - started
    assert status == 200, body
    assert body["data"]["status"] == "success" and body["data"]["order_id"] > 0, body
    assert elapsed < 6, elapsed  # well before wait_ms
    assert client.app[OUTCOMES].waiters == {}


async def test_long_poll_answers_queued_at_the_deadline(aiohttp_client, make_app):
    client, sale, headers = await _one_queued_purchase(aiohttp_client, make_app)
    started = time.monotonic()
    status, body = await _result(client, sale["id"], headers, 600)
    elapsed = time.monotonic() - started
    assert status == 200 and body["data"]["status"] == "queued", body
    assert 0.55 <= elapsed < 3, elapsed
    assert client.app[OUTCOMES].waiters == {}  # the timed-out waiter left the table


async def test_many_waiters_cost_one_subscription_and_no_redis_call_while_waiting(
        aiohttp_client, make_app):
    client = await _idle_client(aiohttp_client, make_app)
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=40)
    people = await buyers(ctx, 40)
    sessions = [(await session_cookie(client.app, p["id"]))[0] for p in people]
    for person, headers in zip(people, sessions):
        assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    await wait_until(client.app[OUTCOMES].subscribed.is_set, what="the outcome subscription")

    calls = []
    mux = client.app[ADMISSION].pipeline
    real_call, real_execute = mux.call, ctx.redis.execute_command
    polls = [asyncio.create_task(_result(client, sale["id"], h, 10_000)) for h in sessions]
    await wait_until(lambda: len(client.app[OUTCOMES].waiters) == 40, what="40 waiters")
    mux.call = lambda *a: calls.append(a) or real_call(*a)

    async def counted(*a, **kw):
        calls.append(a)
        return await real_execute(*a, **kw)
    ctx.redis.execute_command = counted
    try:
        await asyncio.sleep(1.0)
        assert calls == []  # 40 buyers waiting, not one Redis command
    finally:
        mux.call, ctx.redis.execute_command = real_call, real_execute
    # the process's one subscription, whatever the number of waiters (on a cluster: on one node)
    assert await _subscribers(ctx, ctx.keys.outcomes_channel()) == 1

    client.app[ENGINE].start()
    answers = await asyncio.wait_for(asyncio.gather(*polls), 15)
    assert [body["data"]["status"] for _, body in answers] == ["success"] * 40


async def test_wait_ms_out_of_range_is_a_validation_error(client, ctx, factory):
    sale = await make_sale(ctx, factory)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    for bad in ("-1", "10001", "abc", "1.5"):
        status, body = await _result(client, sale["id"], headers, bad)
        assert (status, body["data"]["reason"]) == (400, "validation"), body
        assert "wait_ms" in body["data"]["errors"], body
    status, body = await _result(client, sale["id"], headers, 10_000)
    assert (status, body["data"]) == (200, {"status": "none"})  # nothing bought: answered at once


async def test_result_reflects_an_order_cancelled_later(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=5)
    [person] = await buyers(ctx, 1)
    headers, _ = await session_cookie(client.app, person["id"])
    assert (await purchase(client, sale["id"], headers, person["address_id"]))[0] == 202
    status, body = await _result(client, sale["id"], headers, 10_000)
    assert body["data"]["status"] == "success", body
    order_id = body["data"]["order_id"]
    r = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert r.status == 200, await r.text()
    status, body = await _result(client, sale["id"], headers, 10_000)
    assert status == 200
    assert body["data"] == {"status": "failed", "reason": "cancelled", "order_id": order_id,
                            "request_id": body["data"]["request_id"]}


async def _subscribers(ctx, channel: str) -> int:
    """PUBSUB NUMSUB counts one node's subscribers: on a cluster, every node is asked."""
    nodes = ctx.redis.get_nodes() if isinstance(ctx.redis, RedisCluster) else [None]
    total = 0
    for node in nodes:
        kwargs = {} if node is None else {"target_nodes": node}
        [(_, count)] = await ctx.redis.execute_command("PUBSUB NUMSUB", channel, **kwargs)
        total += int(count)
    return total


async def test_a_batchs_outcomes_are_sent_again_after_a_lost_connection(ctx, monkeypatch):
    """The results, the acks and the notice are idempotent: a connection lost while they are on
    their way (Redis restarting) is met by sending them again, not by leaving buyers `queued`."""
    sale_id, k = 987_654, ctx.keys
    stream, group, results_key = k.sale_stream(sale_id), k.consumer_group(), k.sale_results(sale_id)
    await ctx.redis.delete(stream, results_key)
    await ctx.redis.xgroup_create(stream, group, id="0", mkstream=True)
    entry_id = await ctx.redis.xadd(stream, {"r": "req-1"})
    await ctx.redis.xreadgroup(group, "c0", {stream: ">"})  # delivered, pending
    real_call, lost = ctx.mux.call, {"calls": 0}

    def losing_the_first_round(*args):
        if lost["calls"] < 3:  # HSET, XACK, PUBLISH of the first attempt
            lost["calls"] += 1
            future = asyncio.get_running_loop().create_future()
            future.set_exception(RedisConnectionError("lost the connection to Redis"))
            return future
        return real_call(*args)

    monkeypatch.setattr(ctx.mux, "call", losing_the_first_round)
    try:
        await outcomes.record(ctx, sale_id, stream, group, {0: {"req-1": "success:42"}}, [entry_id])
        assert lost["calls"] == 3
        assert await ctx.redis.hgetall(results_key) == {"req-1": "success:42"}
        assert (await ctx.redis.xpending(stream, group))["pending"] == 0
    finally:
        await ctx.redis.delete(stream, results_key)


async def test_a_waiter_leaves_the_table_whether_answered_timed_out_or_cancelled():
    table = outcomes.Outcomes()
    answered = asyncio.create_task(table.wait("r1", 5))
    timed_out = asyncio.create_task(table.wait("r2", 0.05))
    gone = asyncio.create_task(table.wait("r3", 5))  # the buyer closed the connection
    await asyncio.sleep(0.01)
    assert set(table.waiters) == {"r1", "r2", "r3"}
    table.resolve({"r1": "success:7"})
    gone.cancel()
    assert await answered == "success:7"
    assert await timed_out is None
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert table.waiters == {}
    table.resolve({"r3": "failed:ended"})  # a notice for a waiter that left: nothing to wake, no error
    assert await table.wait("r3", 1) == "failed:ended"  # heard recently: answered at once
