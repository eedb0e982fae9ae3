"""Background work of every server process: stream consumers, reclaimer, trimmer, sweeper.

Each admitted purchase is an entry in its sale's Redis Stream. Consumer tasks (a consumer
group per stream, names stable per process) read batches, write the batch's orders to MySQL in
one transaction, and acknowledge only after the commit. The unique key on orders.request_id
makes a redelivered entry harmless. A reclaimer moves entries that a dead consumer left pending
to a live one; an entry delivered too often, or one that can never become an order (its address
is gone), is dead-lettered and its unit given back.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from asyncmy.errors import InterfaceError, OperationalError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from flashsale import db, metrics
from flashsale.admission import Admission
from flashsale.appkeys import ADMISSION, CTX, ENGINE
from flashsale.context import Context
from flashsale.errors import BadStatus, NotFound
from flashsale.jsonio import utcnow
from flashsale.services import orders, seckill

log = logging.getLogger(__name__)

GRACE_S = 5.0
WATCH_INTERVAL_S = 1.0
# MySQL out of reach: retry the batch in hand after these pauses (then keep the last)
BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, ConnectionError, OSError, asyncio.TimeoutError)

# Batches of one sale take its row lock first: they and the dead-lettering of an entry then
# never decide about the same request at the same time.
LOCK_SALE = "SELECT sold FROM flash_sales WHERE id = %s FOR UPDATE"
# -> the delivery addresses of a batch, for the orders' snapshots
ADDRESSES_OF = """
SELECT id, user_id, receiver_name, phone, province, city, district, detail_address
  FROM addresses WHERE id IN ({marks})"""
# rowcount = orders really inserted: a request id already there (an earlier delivery) changes nothing
INSERT_ORDERS = """
INSERT INTO orders (order_number, user_id, goods_id, flash_sale_id, request_id, quantity,
                    unit_price, total_amount, payment_method, status, address_id, receiver_name,
                    phone, province, city, district, detail_address, pay_deadline)
VALUES {rows}
    ON DUPLICATE KEY UPDATE request_id = orders.request_id"""
ORDER_ROW = ("(%s, %s, %s, %s, %s, 1, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s,"
             " UTC_TIMESTAMP(3) + INTERVAL %s SECOND)")
# -> the orders of these requests, made now or by an earlier delivery
ORDERS_OF_REQUESTS = "SELECT id, request_id, order_number, user_id FROM orders WHERE request_id IN ({marks})"
# -> the recorded failures of these requests
FAILURES_OF_REQUESTS = "SELECT request_id, reason FROM seckill_failures WHERE request_id IN ({marks})"
INSERT_LOGS = """
INSERT INTO order_status_log (order_id, from_status, to_status, actor_id, actor, remark)
VALUES {rows}"""
LOG_ROW = "(%s, NULL, 'pending', %s, 'user', 'flash sale')"
# 1: the sale's sold count moved by the orders of this batch (the CHECK sold <= total_stock guards)
ADD_SOLD = "UPDATE flash_sales SET sold = sold + %s WHERE id = %s"
ADD_SALES = "UPDATE goods SET sales = sales + %s WHERE id = %s"
# rowcount 1: recorded now; 0: an earlier delivery recorded it
INSERT_FAILURE = """
INSERT INTO seckill_failures (request_id, flash_sale_id, user_id, reason, detail)
VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE request_id = request_id"""
FAILURE_DETAILS = {
    "address_missing": "the delivery address was deleted before the order was written",
    "undeliverable": "the request failed too many deliveries",
}


@dataclass(frozen=True)
class Entry:
    entry_id: str
    request_id: str
    user_id: int
    address_id: int
    payment_method: str
    price: str

    @classmethod
    def parse(cls, entry_id: str, fields: dict[str, str]) -> "Entry":
        return cls(entry_id, fields["r"], int(fields["u"]), int(fields["a"]), fields["m"], fields["p"])


@dataclass
class BatchOutcome:
    orders: dict[str, int]  # request id -> order id
    acked: list[str]  # entry ids that have their order
    failed: list[tuple[Entry, str]]  # entries that ended as an explicit failure, with the reason
    inserted: int


async def _settle(cur, sale: dict[str, Any], entries: list[Entry], new_failure: str,
                  numbers: dict[str, str] | None) -> BatchOutcome:
    """Inside a transaction holding the sale's lock: find each entry's order or failure; record
    `new_failure` for entries that have neither; count and log the orders made in this call."""
    marks = ", ".join(["%s"] * len(entries))
    request_ids = [e.request_id for e in entries]
    await cur.execute(ORDERS_OF_REQUESTS.format(marks=marks), request_ids)
    found = {r["request_id"]: r for r in await cur.fetchall()}
    new = [r for rid, r in found.items() if numbers and r["order_number"] == numbers[rid]]
    if new:
        await cur.execute(INSERT_LOGS.format(rows=", ".join([LOG_ROW] * len(new))),
                          [v for r in new for v in (r["id"], r["user_id"])])
        await cur.execute(ADD_SOLD, (len(new), sale["id"]))
        await cur.execute(ADD_SALES, (len(new), sale["goods_id"]))
    without_order = [e for e in entries if e.request_id not in found]
    failed: list[tuple[Entry, str]] = []
    if without_order:
        await cur.execute(FAILURES_OF_REQUESTS.format(marks=", ".join(["%s"] * len(without_order))),
                          [e.request_id for e in without_order])
        known = {r["request_id"]: r["reason"] for r in await cur.fetchall()}
        for e in without_order:
            reason = known.get(e.request_id)
            if reason is None:
                reason = new_failure
                await cur.execute(INSERT_FAILURE, (e.request_id, sale["id"], e.user_id, reason,
                                                   FAILURE_DETAILS.get(reason, "")))
            failed.append((e, reason))
    return BatchOutcome({rid: r["id"] for rid, r in found.items()},
                        [e.entry_id for e in entries if e.request_id in found], failed, len(new))


async def write_batch(ctx: Context, sale: dict[str, Any], entries: list[Entry]) -> BatchOutcome:
    """Write the orders of a batch in one transaction; idempotent by request id.

    An entry whose request already failed, or whose address is gone (or is not the buyer's),
    makes no order; _settle records the latter as a failure."""
    numbers = {e.request_id: ctx.order_numbers.next() for e in entries}
    async with db.transaction(ctx.db) as cur:
        await cur.execute(LOCK_SALE, (sale["id"],))
        await cur.execute(FAILURES_OF_REQUESTS.format(marks=", ".join(["%s"] * len(entries))),
                          [e.request_id for e in entries])
        failed_before = {r["request_id"] for r in await cur.fetchall()}
        address_ids = sorted({e.address_id for e in entries})
        await cur.execute(ADDRESSES_OF.format(marks=", ".join(["%s"] * len(address_ids))), address_ids)
        addresses = {r["id"]: r for r in await cur.fetchall()}
        args: list[Any] = []
        rows = 0
        for e in entries:
            ad = addresses.get(e.address_id)
            if e.request_id in failed_before or ad is None or ad["user_id"] != e.user_id:
                continue
            args += [numbers[e.request_id], e.user_id, sale["goods_id"], sale["id"], e.request_id, e.price,
                     e.price, e.payment_method, ad["id"], ad["receiver_name"], ad["phone"], ad["province"],
                     ad["city"], ad["district"], ad["detail_address"], ctx.settings.pay_window_s]
            rows += 1
        if rows:
            await cur.execute(INSERT_ORDERS.format(rows=", ".join([ORDER_ROW] * rows)), args)
        return await _settle(cur, sale, entries, "address_missing", numbers)


async def give_up(ctx: Context, sale: dict[str, Any], entries: list[Entry], reason: str) -> BatchOutcome:
    """Record entries that failed too often as failures, unless an order exists for them already."""
    async with db.transaction(ctx.db) as cur:
        await cur.execute(LOCK_SALE, (sale["id"],))
        return await _settle(cur, sale, entries, reason, None)


class SaleWorker:
    """The consumers of one sale's stream in this process, and what they share."""

    def __init__(self, engine: "Engine", sale: dict[str, Any]):
        self.engine = engine
        self.ctx = engine.ctx
        self.sale = sale
        self.sale_id = sale["id"]
        k = self.ctx.keys
        self.stream = k.sale_stream(self.sale_id)
        self.group = k.consumer_group()
        self.tasks: list[asyncio.Task] = []
        self.busy: set[str] = set()  # consumers with a batch in hand

    def consumer_name(self, index: int) -> str:
        return f"{self.ctx.settings.consumer_name or 'local'}-c{index}"

    async def ensure_group(self) -> None:
        try:
            await self.ctx.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def start(self, stop: asyncio.Event) -> None:
        for i in range(self.ctx.settings.consumers):
            name = self.consumer_name(i)
            self.tasks.append(asyncio.create_task(self.consume(name, stop), name=name))

    async def consume(self, name: str, stop: asyncio.Event) -> None:
        """Read own pending entries first (left by this name before a restart), then new ones."""
        s = self.ctx.settings
        cursor = "0"
        while not stop.is_set():
            try:
                reply = await self.engine.reader.xreadgroup(
                    self.group, name, {self.stream: cursor}, count=s.consumer_batch,
                    block=None if cursor == "0" else s.consumer_block_ms)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost the stream: make it again
                    await self.ensure_group()
                    continue
                raise
            except (RedisError, OSError):
                log.warning("reading %s failed; retrying", self.stream, exc_info=True)
                await _sleep(stop, 1.0)
                continue
            raw = reply[0][1] if reply else []
            if cursor == "0" and not raw:
                cursor = ">"
                continue
            entries = [Entry.parse(i, f) for i, f in raw if f]
            if entries:
                # finish the batch in hand even when asked to stop: it is acknowledged only after commit
                self.busy.add(name)
                try:
                    await self.process(entries, stop)
                finally:
                    self.busy.discard(name)

    async def process(self, entries: list[Entry], stop: asyncio.Event | None,
                      deliveries: dict[str, int] | None = None) -> None:
        """Write, then acknowledge; MySQL trouble is retried with back-off, never acknowledged."""
        attempt = 0
        while True:
            try:
                outcome = await write_batch(self.ctx, self.sale, entries)
                break
            except TRANSIENT_DB_ERRORS:
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                attempt += 1
                log.warning("writing %s orders of sale %s failed (attempt %s); retrying in %ss",
                            len(entries), self.sale_id, attempt, delay, exc_info=attempt == 1)
                if stop is not None and stop.is_set() and attempt > 3:
                    return  # leave them pending for the reclaimer of a live process
                await asyncio.sleep(delay)
            except Exception:
                log.exception("writing orders of sale %s failed; entries stay pending", self.sale_id)
                if len(entries) > 1:
                    # find the entry that fails: the others go through one by one
                    for entry in entries:
                        await self.process([entry], stop, deliveries)
                return
        await self.acknowledge(outcome, deliveries or {})
        self.engine.count_batch(len(entries), outcome.inserted)

    async def acknowledge(self, outcome: BatchOutcome, deliveries: dict[str, int]) -> None:
        k, redis = self.ctx.keys, self.ctx.redis
        if outcome.orders:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hset(k.sale_results(self.sale_id),
                          mapping={rid: f"success:{oid}" for rid, oid in outcome.orders.items()})
                pipe.xack(self.stream, self.group, *outcome.acked)
                await pipe.execute()
        for entry, reason in outcome.failed:
            await self.fail(entry, reason, deliveries.get(entry.entry_id, 1))

    async def fail(self, entry: Entry, reason: str, deliveries: int) -> None:
        """Dead-letter an entry: its unit goes back (once), the buyer learns `failed`."""
        k = self.ctx.keys
        given_back = await self.ctx.scripts.fail(
            keys=[k.sale_stock(self.sale_id), k.sale_buyers(self.sale_id), k.sale_released(self.sale_id),
                  k.sale_results(self.sale_id), k.sale_dead(self.sale_id), self.stream],
            args=[self.group, entry.entry_id, entry.user_id, entry.request_id, reason, deliveries])
        if given_back:
            log.warning("dead-lettered request %s of sale %s (%s); its unit is back",
                        entry.request_id, self.sale_id, reason)
            await self.ctx.redis.publish(k.stock_channel(), self.sale_id)
            self.engine.count_dead_letter()

    async def reclaim(self) -> None:
        """Move entries idle too long from dead consumers to this process and finish them."""
        s, redis = self.ctx.settings, self.ctx.redis
        name = self.consumer_name(0)
        start = "0-0"
        while True:
            try:
                reply = await redis.xautoclaim(self.stream, self.group, name, s.reclaim_idle_ms,
                                               start_id=start, count=s.consumer_batch)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    return
                raise
            start, claimed = reply[0], [(i, f) for i, f in reply[1] if f]
            if claimed:
                self.engine.count_reclaims(len(claimed))
                ids = [i for i, _ in claimed]
                pending = await redis.xpending_range(self.stream, self.group, min=ids[0], max=ids[-1],
                                                     count=len(ids) * 2, consumername=name)
                deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
                entries = [Entry.parse(i, f) for i, f in claimed]
                doomed = [e for e in entries if deliveries.get(e.entry_id, 1) > s.max_deliveries]
                if doomed:
                    await self.acknowledge(await give_up(self.ctx, self.sale, doomed, "undeliverable"),
                                           deliveries)
                rest = [e for e in entries if e not in doomed]
                if rest:
                    await self.process(rest, None, deliveries)
            if start in ("0-0", b"0-0"):
                return

    async def trim(self) -> None:
        """Drop acknowledged entries: only those below the oldest pending and already delivered."""
        redis = self.ctx.redis
        try:
            groups = await redis.xinfo_groups(self.stream)
        except ResponseError:
            return
        group = next((g for g in groups if g["name"] == self.group), None)
        if group is None:
            return
        summary = await redis.xpending(self.stream, self.group)
        if summary["pending"]:
            threshold = summary["min"]
        else:
            last = group["last-delivered-id"]
            if last in ("0-0", None):
                return
            ms, _, seq = last.partition("-")
            threshold = f"{ms}-{int(seq) + 1}"
        await redis.xtrim(self.stream, minid=threshold, approximate=False)

    async def drained(self) -> bool:
        """No entry waits for a consumer or an acknowledgement."""
        try:
            groups = await self.ctx.redis.xinfo_groups(self.stream)
        except ResponseError:
            return True
        group = next((g for g in groups if g["name"] == self.group), None)
        return group is None or (not group["pending"] and not group.get("lag"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Engine:
    """The flash-sale background work of one process: follows active sales, sweeps unpaid orders."""

    def __init__(self, ctx: Context, admission: Admission):
        self.ctx = ctx
        self.admission = admission
        self.workers: dict[int, SaleWorker] = {}
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.listener: asyncio.Task | None = None
        self.expiring: set[int] = set()  # ended sales whose Redis keys have their expiry set
        # blocking reads park a connection each: they get a pool of their own, apart from requests
        self.reader = Redis.from_url(ctx.settings.redis_url, decode_responses=True, max_connections=10_000,
                                     socket_connect_timeout=2, health_check_interval=30)

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self.watch(), name="sale-watcher"),
            asyncio.create_task(self.reclaim_loop(), name="reclaimer"),
            asyncio.create_task(self.sweep_loop(), name="pay-window-sweeper"),
        ]
        self.listener = asyncio.create_task(self.admission.listen_for_returned_stock(self.stop_event),
                                            name="stock-listener")
        self.tasks.append(self.listener)

    async def stop(self) -> None:
        """Stop reading; let each consumer finish its batch in hand within the grace period."""
        self.stop_event.set()
        consumers = [t for w in self.workers.values() for t in w.tasks]
        for worker in self.workers.values():
            for task in worker.tasks:
                if task.get_name() not in worker.busy:
                    # waiting in a blocking read, nothing in hand; a read cut short leaves its
                    # entries pending under this stable consumer name for the next start
                    task.cancel()
        if self.listener is not None:
            self.listener.cancel()  # the pub/sub listener holds nothing
        everything = consumers + self.tasks
        if everything:
            _, late = await asyncio.wait(everything, timeout=GRACE_S)
            for task in late:
                task.cancel()  # unacknowledged entries stay pending for the reclaimer
            await asyncio.gather(*everything, return_exceptions=True)
        await self.reader.aclose()

    # --- following sales ---
    async def watch(self) -> None:
        while not self.stop_event.is_set():
            try:
                await self.refresh()
            except Exception:
                log.exception("sale watcher failed; retrying")
            await _sleep(self.stop_event, WATCH_INTERVAL_S)

    async def refresh(self) -> None:
        now = utcnow()
        followed = set()
        for sale in await seckill.active_sales(self.ctx):
            sale_id = sale["id"]
            if not await seckill.is_warm(self.ctx, sale_id):
                await seckill.rebuild_state(self.ctx, sale_id)
            live = sale["start_time"] <= now < sale["end_time"]
            if now >= sale["end_time"] and sale_id not in self.expiring:
                await seckill.expire_state(self.ctx, sale)  # results stay readable for a while
                self.expiring.add(sale_id)
            worker = self.workers.get(sale_id)
            if worker is None:
                worker = SaleWorker(self, sale)
                if not live and await worker.drained():
                    continue  # upcoming or ended with nothing to do: nobody needs to listen yet
                await worker.ensure_group()
                worker.start(self.stop_event)
                self.workers[sale_id] = worker
            worker.sale = sale
            followed.add(sale_id)
        for sale_id in list(self.workers):
            if sale_id not in followed and await self.workers[sale_id].drained():
                await self.workers.pop(sale_id).stop()

    # --- reclaiming and trimming ---
    async def reclaim_loop(self) -> None:
        interval = max(0.2, self.ctx.settings.reclaim_idle_ms / 2000)
        while not self.stop_event.is_set():
            await _sleep(self.stop_event, interval)
            for worker in list(self.workers.values()):
                if self.stop_event.is_set():
                    return
                try:
                    await worker.reclaim()
                    await worker.trim()
                except Exception:
                    log.exception("reclaiming entries of sale %s failed", worker.sale_id)

    # --- the pay window ---
    async def sweep_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("pay-window sweep failed")
            await _sleep(self.stop_event, self.ctx.settings.sweep_interval_s * random.uniform(0.8, 1.2))

    async def sweep(self) -> int:
        """Cancel flash-sale orders left unpaid past their deadline; each cancel gives stock back once."""
        cancelled = 0
        for order_id in await orders.expired_unpaid(self.ctx, 100):
            try:
                await orders.cancel_order(self.ctx, order_id, owner_id=None, actor="system", actor_id=None,
                                          remark="pay window expired", only_if_expired=True)
                cancelled += 1
            except (BadStatus, NotFound):
                pass  # paid or cancelled meanwhile, or another process won the race
        return cancelled

    # --- counters for /metrics ---
    @staticmethod
    def count_batch(size: int, inserted: int) -> None:
        metrics.CONSUMER_BATCH.observe(size)
        if inserted:
            metrics.ORDERS_WRITTEN.inc(inserted)

    @staticmethod
    def count_dead_letter() -> None:
        metrics.DEAD_LETTERS.inc()

    @staticmethod
    def count_reclaims(n: int) -> None:
        metrics.RECLAIMS.inc(n)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


async def engine_ctx(app: web.Application):
    """Cleanup context: the admission path always; the background work when settings allow."""
    ctx = app[CTX]
    admission = Admission(ctx)
    app[ADMISSION] = admission
    engine = Engine(ctx, admission)
    app[ENGINE] = engine
    if ctx.settings.background_tasks:
        engine.start()
    yield
    await engine.stop()
    await admission.close()
