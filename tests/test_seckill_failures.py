"""The flash-sale engine under failure: dead consumers, MySQL outages, lost Redis state, expiry."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from flashsale import db
from flashsale.appkeys import CTX, ENGINE
from flashsale.consumers import SaleWorker
from flashsale.services import orders, seckill, seckill_orders, seckill_state
from flashsale.services.auth_cache import cache_addresses, cache_auth_state
from flashsale.services.seckill_orders import Entry, give_up, write_batch

from tests.support.auth import session_cookie
from tests.support.factory import Factory
from tests.support.seckill import (buyers, count_orders, followed, make_sale, purchase, rebuilt, remaining,
                                   sold)
from tests.support.waiting import wait_until

GROUP = "orders"


async def _admit(client, sale_id, people, cookies=None):
    for person in people:
        headers = cookies[person["id"]] if cookies else (await session_cookie(client.app, person["id"]))[0]
        status, body = await purchase(client, sale_id, headers, person["address_id"])
        assert status == 202, body


async def _read_as(ctx, sale_id, consumer):
    """XREADGROUP as a consumer that then 'dies' (never acknowledges)."""
    reply = await ctx.redis.xreadgroup(GROUP, consumer, {ctx.keys.sale_stream(sale_id): ">"}, count=100)
    return [Entry.parse(i, f) for i, f in reply[0][1]] if reply else []


async def _worker(client, sale_id):
    ctx = client.app[CTX]
    worker = SaleWorker(client.app[ENGINE], await seckill.get_sale_row(ctx, sale_id))
    await worker.ensure_group()
    return worker


async def _pending(ctx, sale_id):
    return (await ctx.redis.xpending(ctx.keys.sale_stream(sale_id), GROUP))["pending"]


async def test_consumer_killed_after_commit_before_ack_makes_no_second_order(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(background_tasks=False, reclaim_idle_ms=50))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=5)
    worker = await _worker(client, sale["id"])
    await _admit(client, sale["id"], await buyers(ctx, 3))

    entries = await _read_as(ctx, sale["id"], "dead-host-w0-c0")
    assert len(entries) == 3
    await write_batch(ctx, worker.sale, entries)  # committed, then the process died: no XACK
    assert await count_orders(ctx, sale["id"]) == 3 and await _pending(ctx, sale["id"]) == 3

    await asyncio.sleep(0.1)  # on purpose: the entries idle past reclaim_idle_ms (50 ms), so they are reclaimable
    await worker.reclaim()  # redelivered to a live consumer
    assert await count_orders(ctx, sale["id"]) == 3
    assert await sold(ctx, sale["id"]) == 3
    assert await _pending(ctx, sale["id"]) == 0
    assert await remaining(ctx, sale["id"]) == 2
    results = await ctx.redis.hvals(ctx.keys.sale_results(sale["id"]))
    assert len(results) == 3 and all(v.startswith("success:") for v in results)
    # each order's log opens with its creation, read off the row; the drain wrote no log row
    for row in await db.fetch_all(ctx.db, "SELECT id FROM orders WHERE flash_sale_id = %s", (sale["id"],)):
        log = (await orders.get_order(ctx, row["id"], owner_id=None))["log"]
        assert [(e["from"], e["to"], e["by"], e["remark"]) for e in log] == [(None, "pending", "user", "flash sale")]
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM order_status_log l JOIN orders o ON o.id = l.order_id "
                                        "WHERE o.flash_sale_id = %s", (sale["id"],)) == 0


async def test_an_entry_whose_request_failed_already_makes_no_order_when_it_comes_again(aiohttp_client, make_app):
    """A batch inserts its orders in the same round trip as its locks, unless this process saw a
    failure in the sale before: the failure found under the lock undoes that insert, and the batch
    is written again without the failed request."""
    client = await aiohttp_client(make_app(background_tasks=False))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=5)
    worker = await _worker(client, sale["id"])
    await _admit(client, sale["id"], await buyers(ctx, 3))
    entries = await _read_as(ctx, sale["id"], "dead-host-w0-c0")
    # the first request was given up (and its unit given back), but its entry was never acknowledged
    await give_up(ctx, worker.sale, entries[:1], "undeliverable")
    seckill_orders.SALES_WITH_FAILURES.discard(sale["id"])  # this process has not seen it

    outcome = await write_batch(ctx, worker.sale, entries)
    assert sorted(outcome.orders) == sorted(e.request_id for e in entries[1:])
    assert [(e.request_id, reason) for e, reason in outcome.failed] == [(entries[0].request_id, "undeliverable")]
    assert await count_orders(ctx, sale["id"]) == 2 and await sold(ctx, sale["id"]) == 2
    assert sale["id"] in seckill_orders.SALES_WITH_FAILURES
    # again (a redelivery): the careful way first, still the same two orders
    again = await write_batch(ctx, worker.sale, entries)
    assert again.orders == outcome.orders and again.inserted == 0
    assert await count_orders(ctx, sale["id"]) == 2 and await sold(ctx, sale["id"]) == 2


async def test_consumer_killed_before_commit_is_finished_by_the_reclaimer(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(background_tasks=False, reclaim_idle_ms=50))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=5)
    worker = await _worker(client, sale["id"])
    await _admit(client, sale["id"], await buyers(ctx, 4))
    assert len(await _read_as(ctx, sale["id"], "dead-host-w0-c0")) == 4  # read, then died
    assert await count_orders(ctx, sale["id"]) == 0

    await worker.reclaim()  # not idle long enough yet: nothing moves
    assert await count_orders(ctx, sale["id"]) == 0
    await asyncio.sleep(0.1)  # on purpose: now idle past reclaim_idle_ms (50 ms)
    await worker.reclaim()
    assert await count_orders(ctx, sale["id"]) == 4
    assert await _pending(ctx, sale["id"]) == 0
    assert await sold(ctx, sale["id"]) == 4


async def test_entry_delivered_too_often_is_dead_lettered_and_its_unit_returns(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(background_tasks=False, reclaim_idle_ms=50, max_deliveries=2))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=1)
    worker = await _worker(client, sale["id"])
    [first, second] = await buyers(ctx, 2)
    await _admit(client, sale["id"], [first])
    assert await remaining(ctx, sale["id"]) == 0
    for attempt in range(2):  # two consumers read it and died
        await asyncio.sleep(0.06)  # on purpose: each delivery idles past reclaim_idle_ms (50 ms)
        if attempt == 0:
            await _read_as(ctx, sale["id"], "dead-a")
        else:
            stream = ctx.keys.sale_stream(sale["id"])
            await ctx.redis.xautoclaim(stream, GROUP, "dead-b", 50, start_id="0-0")
    await asyncio.sleep(0.06)  # on purpose: idle past reclaim_idle_ms again
    await worker.reclaim()  # third delivery > max_deliveries: dead letter
    assert await count_orders(ctx, sale["id"]) == 0
    assert await remaining(ctx, sale["id"]) == 1
    assert await _pending(ctx, sale["id"]) == 0
    assert await ctx.redis.xlen(ctx.keys.sale_dead(sale["id"])) == 1
    failure = await db.fetch_one(ctx.db, "SELECT user_id, reason FROM seckill_failures WHERE flash_sale_id = %s",
                                 (sale["id"],))
    assert failure == {"user_id": first["id"], "reason": "undeliverable"}
    headers, _ = await session_cookie(client.app, first["id"])
    r = await client.get(f"/api/seckill/{sale['id']}/result", headers=headers)
    data = (await r.json())["data"]
    assert (data["status"], data["reason"]) == ("failed", "undeliverable")
    # the first buyer's slot is free again, and the unit goes to the next buyer
    assert await ctx.redis.hget(ctx.keys.sale_buyers(sale["id"]), first["id"]) is None
    await _admit(client, sale["id"], [second])
    await worker.process(await _read_as(ctx, sale["id"], worker.consumer_name(0)), None)
    assert await count_orders(ctx, sale["id"]) == 1


async def test_deleted_address_is_dead_lettered_and_a_later_buyer_gets_the_unit(client, ctx, factory):
    sale = await make_sale(ctx, Factory(ctx), stock=1)
    stream = ctx.keys.sale_stream(sale["id"])
    first, second = await buyers(ctx, 2)
    # stop the consumers from racing the delete: admit while the sale's consumers are not yet following
    engine = client.app[ENGINE]
    await engine.stop()
    fresh = client.app[ENGINE].__class__(ctx, engine.admission)
    await _admit(client, sale["id"], [first])
    await db.execute(ctx.db, "DELETE FROM addresses WHERE id = %s", (first["address_id"],))
    fresh.start()
    try:
        await wait_until(lambda: _dead_letters(ctx, sale["id"]), timeout=10)
        assert await remaining(ctx, sale["id"]) == 1
        assert await count_orders(ctx, sale["id"]) == 0
        reason = await db.fetch_value(ctx.db, "SELECT reason FROM seckill_failures WHERE user_id = %s", (first["id"],))
        assert reason == "address_missing"
        await _admit(client, sale["id"], [second])
        await wait_until(lambda: _orders_of(ctx, sale["id"], second["id"]))
        assert await remaining(ctx, sale["id"]) == 0
        assert await sold(ctx, sale["id"]) == 1
        assert (await ctx.redis.xpending(stream, GROUP))["pending"] == 0
    finally:
        await fresh.stop()


async def test_address_deleted_after_the_batch_read_it_fails_that_entry_alone(client, ctx, monkeypatch):
    """The batch reads its addresses before it takes the sale's lock: one deleted in between fails
    the INSERT on its foreign key; the batch is then written entry by entry, so the others become
    orders and that one an explicit address_missing failure whose unit goes back."""
    sale = await make_sale(ctx, Factory(ctx), stock=5)
    people = await buyers(ctx, 3)
    engine = client.app[ENGINE]
    await engine.stop()  # no consumer of the app's own: this test's worker reads the stream
    await _admit(client, sale["id"], people)
    worker = await _worker(client, sale["id"])
    entries = await _read_as(ctx, sale["id"], "this-test")
    assert len(entries) == 3
    doomed = people[1]
    real = db.run_transaction
    calls = []

    async def delete_first(pool, work, **kwargs):
        if not calls:
            await db.execute(ctx.db, "DELETE FROM addresses WHERE id = %s", (doomed["address_id"],))
        calls.append(1)
        return await real(pool, work, **kwargs)

    monkeypatch.setattr(db, "run_transaction", delete_first)
    await worker.process(entries, None)
    assert len(calls) == 4  # the batch, then each of its three entries
    assert await count_orders(ctx, sale["id"]) == 2
    assert await _orders_of(ctx, sale["id"], doomed["id"]) == 0
    reason = await db.fetch_value(ctx.db, "SELECT reason FROM seckill_failures WHERE user_id = %s", (doomed["id"],))
    assert reason == "address_missing"
    assert await sold(ctx, sale["id"]) == 2
    assert await remaining(ctx, sale["id"]) == 3  # 5 - 3 admitted + 1 given back
    assert (await ctx.redis.xpending(ctx.keys.sale_stream(sale["id"]), GROUP))["pending"] == 0


async def test_an_address_of_someone_else_makes_no_order(client, ctx):
    """A request naming an address that is not the buyer's (admitted from a stale cache) fails."""
    sale = await make_sale(ctx, Factory(ctx), stock=5)
    people = await buyers(ctx, 2)
    engine = client.app[ENGINE]
    await engine.stop()
    await _admit(client, sale["id"], people)
    worker = await _worker(client, sale["id"])
    entries = await _read_as(ctx, sale["id"], "this-test")
    other = next(e for e in entries if e.user_id == people[1]["id"])
    forged = dataclasses.replace(other, address_id=people[0]["address_id"])
    await worker.process([e for e in entries if e is not other] + [forged], None)
    assert await _orders_of(ctx, sale["id"], people[0]["id"]) == 1
    assert await _orders_of(ctx, sale["id"], people[1]["id"]) == 0
    reason = await db.fetch_value(ctx.db, "SELECT reason FROM seckill_failures WHERE user_id = %s",
                                  (people[1]["id"],))
    assert reason == "address_missing"
    assert await sold(ctx, sale["id"]) == 1


async def _dead_letters(ctx, sale_id):
    return await ctx.redis.xlen(ctx.keys.sale_dead(sale_id))


async def _orders_of(ctx, sale_id, user_id):
    return await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s AND user_id = %s",
                                (sale_id, user_id))


class Proxy:
    """A TCP proxy the test controls: down() cuts every connection and refuses new ones."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.is_up = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def handle(self, reader, writer):
        if not self.is_up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers |= {writer, up_writer}

        async def pipe(src, dst):
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def down(self):
        self.is_up = False
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    def up(self):
        self.is_up = True

    async def close(self):
        self.down()
        self.server.close()
        await self.server.wait_closed()


async def test_orders_arrive_once_after_mysql_comes_back(aiohttp_client, make_app, settings):
    proxy = Proxy(settings.db_port)
    port = await proxy.start()
    try:
        client = await aiohttp_client(make_app(db_port=port))
        app_ctx = client.app[CTX]
        sale = await make_sale(app_ctx, Factory(app_ctx), stock=20)
        people = await buyers(app_ctx, 10)
        cookies = {}
        for person in people:  # logged in before the outage: the purchase path needs no MySQL
            await cache_auth_state(app_ctx, person["id"], 0, "user", True)
            await cache_addresses(app_ctx, person["id"])
            cookies[person["id"]] = (await session_cookie(client.app, person["id"]))[0]
        await wait_until(lambda: followed(client.app, sale["id"]), what="the watcher following the sale")
        proxy.down()
        await _admit(client, sale["id"], people, cookies)
        await wait_until(lambda: _pending(app_ctx, sale["id"]), what="the consumers holding entries they cannot write")
        await asyncio.sleep(1)  # on purpose: the outage lasts a few write retries (back-off 0.1, 0.2, 0.5 s)
        direct = await db.create_pool(settings)  # around the proxy
        try:
            assert await _direct_count(direct, sale["id"]) == 0
            proxy.up()
            await wait_until(lambda: _direct_count(direct, sale["id"]), timeout=20)
            await wait_until(lambda: _none_pending(app_ctx, sale["id"]))
            assert await _direct_count(direct, sale["id"]) == 10
            assert await sold(app_ctx, sale["id"]) == 10
            assert await remaining(app_ctx, sale["id"]) == 10
        finally:
            await db.close_pool(direct)
    finally:
        await proxy.close()


async def _direct_count(pool, sale_id):
    n = await db.fetch_value(pool, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s", (sale_id,))
    return n == 10 and n


async def _count_is(ctx, sale_id, n):
    return await count_orders(ctx, sale_id) == n


async def _none_pending(ctx, sale_id):
    return await _pending(ctx, sale_id) == 0


async def test_expired_unpaid_orders_are_cancelled_once_and_sold_again(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(pay_window_s=1, sweep_interval_s=3600))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=2)
    people = await buyers(ctx, 3)
    await _admit(client, sale["id"], people[:2])
    await wait_until(lambda: _count_is(ctx, sale["id"], 2))
    assert await remaining(ctx, sale["id"]) == 0
    await asyncio.sleep(1.2)  # on purpose: the orders outlive their 1 s pay window
    engine = client.app[ENGINE]
    swept = await asyncio.gather(engine.sweep(), engine.sweep())  # two processes sweeping at once
    # the sweep is shop-wide: the run's other expired orders (ordinary ones have a deadline too) go as well;
    # this sale's two are cancelled once each, even with a third sweep after (the log below)
    assert sum(swept) >= 2
    await engine.sweep()
    assert await count_orders(ctx, sale["id"], "cancelled") == 2
    assert await sold(ctx, sale["id"]) == 0
    assert await remaining(ctx, sale["id"]) == 2
    log = await db.fetch_all(ctx.db, "SELECT l.actor, l.to_status FROM order_status_log l JOIN orders o "
                                     "ON o.id = l.order_id WHERE o.flash_sale_id = %s AND l.to_status = 'cancelled'",
                             (sale["id"],))
    assert log == [{"actor": "system", "to_status": "cancelled"}] * 2
    # an expired order cannot be paid
    order_id = await db.fetch_value(ctx.db, "SELECT id FROM orders WHERE user_id = %s", (people[0]["id"],))
    headers, _ = await session_cookie(client.app, people[0]["id"])
    r = await client.post(f"/api/orders/{order_id}/pay", headers=headers)
    assert r.status == 409
    # the units are sold again
    await _admit(client, sale["id"], people[2:])
    await wait_until(lambda: _orders_of(ctx, sale["id"], people[2]["id"]))


async def test_two_racing_cancels_return_the_unit_once(client, ctx, factory):
    sale = await make_sale(ctx, Factory(ctx), stock=3)
    [person] = await buyers(ctx, 1)
    await _admit(client, sale["id"], [person])
    order_id = await wait_until(lambda: db.fetch_value(ctx.db, "SELECT id FROM orders WHERE flash_sale_id = %s",
                                                     (sale["id"],)))
    headers, _ = await session_cookie(client.app, person["id"])
    answers = await asyncio.gather(*[client.post(f"/api/orders/{order_id}/cancel", headers=headers)
                                     for _ in range(2)])
    assert sorted(r.status for r in answers) == [200, 409]
    assert await remaining(ctx, sale["id"]) == 3
    assert await sold(ctx, sale["id"]) == 0


async def test_restart_mid_sale_keeps_redis_state(aiohttp_client, make_app):
    first = await aiohttp_client(make_app())
    ctx = first.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=10)
    people = await buyers(ctx, 4)
    await _admit(first, sale["id"], people[:3])
    await wait_until(lambda: _count_is(ctx, sale["id"], 3))
    await first.close()

    second = await aiohttp_client(make_app())
    ctx2 = second.app[CTX]
    await wait_until(lambda: followed(second.app, sale["id"]), what="the new process's watcher following the sale")
    assert await remaining(ctx2, sale["id"]) == 7
    assert await ctx2.redis.hlen(ctx2.keys.sale_buyers(sale["id"])) == 3
    await _admit(second, sale["id"], people[3:])
    await wait_until(lambda: _count_is(ctx2, sale["id"], 4))
    assert await remaining(ctx2, sale["id"]) == 6
    assert await sold(ctx2, sale["id"]) == 4


async def test_lost_redis_state_is_rebuilt_once_from_mysql(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(background_tasks=False))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=10)
    worker = await _worker(client, sale["id"])
    people = await buyers(ctx, 6)
    await _admit(client, sale["id"], people[:3])
    await worker.process(await _read_as(ctx, sale["id"], worker.consumer_name(0)), None)
    assert await count_orders(ctx, sale["id"]) == 3
    await _admit(client, sale["id"], people[3:5])  # two requests still waiting in the stream
    # cancelled orders hold no stock
    order_id = await db.fetch_value(ctx.db, "SELECT id FROM orders WHERE user_id = %s", (people[0]["id"],))
    headers, _ = await session_cookie(client.app, people[0]["id"])
    assert (await client.post(f"/api/orders/{order_id}/cancel", headers=headers)).status == 200
    assert await remaining(ctx, sale["id"]) == 6

    k = ctx.keys
    await ctx.redis.delete(k.sale_window(sale["id"]), k.sale_stock(sale["id"]), k.sale_buyers(sale["id"]))
    headers5, _ = await session_cookie(client.app, people[5]["id"])
    status, body = await purchase(client, sale["id"], headers5, people[5]["address_id"])
    assert status == 503 and body["data"]["reason"] == "unavailable"  # cold: refused, never guessed
    await wait_until(lambda: rebuilt(ctx, sale["id"]), what="the rebuild the purchase asked for in the background")
    await ctx.redis.delete(k.sale_window(sale["id"]), k.sale_stock(sale["id"]), k.sale_buyers(sale["id"]))

    results = await asyncio.gather(*[seckill_state.rebuild_state(ctx, sale["id"]) for _ in range(5)])
    assert sorted(results) == [False] * 4 + [True]
    assert await remaining(ctx, sale["id"]) == 10 - 2 - 2  # two live orders, two in the stream
    held = await ctx.redis.hgetall(k.sale_buyers(sale["id"]))
    assert held == {str(p["id"]): "1" for p in people[1:5]}
    # a started process never overwrites live state
    await ctx.redis.set(k.sale_stock(sale["id"]), 3)
    assert await seckill_state.rebuild_state(ctx, sale["id"]) is False
    assert await remaining(ctx, sale["id"]) == 3


async def test_two_processes_starting_together_rebuild_once(aiohttp_client, make_app):
    quiet = await aiohttp_client(make_app(background_tasks=False))
    ctx = quiet.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=8)
    k = ctx.keys
    await ctx.redis.delete(k.sale_window(sale["id"]), k.sale_stock(sale["id"]), k.sale_buyers(sale["id"]))
    await asyncio.gather(aiohttp_client(make_app()), aiohttp_client(make_app()))
    await wait_until(lambda: seckill_state.is_warm(ctx, sale["id"]), timeout=5)
    assert await remaining(ctx, sale["id"]) == 8


async def test_an_ended_sales_redis_keys_get_an_expiry(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(sale_state_keep_s=3600))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=2, start_in_s=-10, length_s=8)
    k = ctx.keys
    await client.app[ENGINE].refresh()
    for key in (k.sale_window(sale["id"]), k.sale_stock(sale["id"]), k.sale_buyers(sale["id"])):
        ttl = await ctx.redis.pttl(key)
        # ended 2 s ago: about an hour to go (keys that do not exist answer -2 and are skipped)
        assert ttl == -2 or 3_590_000 < ttl <= 3_600_000, (key, ttl)
    assert 3_590_000 < await ctx.redis.pttl(k.sale_window(sale["id"])) <= 3_600_000
