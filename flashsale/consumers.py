"""Background work of every server process: stream consumers, reclaimer, trimmer, sweeper.

Each admitted purchase is an entry in its sale's Redis Stream. Consumer tasks (a consumer
group per stream, names stable per process) read batches, have services/seckill_orders.py write the
batch's orders in one transaction, and acknowledge only after the commit (orders.request_id is unique:
a redelivered entry is harmless). A reclaimer moves entries that a dead consumer left pending
to a live one; an entry delivered too often, or one that can never become an order (its address
is gone), is dead-lettered and its unit given back.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from typing import Any

from aiohttp import web
from asyncmy.errors import InterfaceError, OperationalError
from redis.exceptions import RedisError, ResponseError

from flashsale import db, metrics, outcomes
from flashsale.admission import Admission
from flashsale.appkeys import ADMISSION, CTX, ENGINE
from flashsale.context import Context, learn_topology, open_reader
from flashsale.errors import BadStatus, NotFound
from flashsale.jsonio import utcnow
from flashsale.services import orders, seckill, seckill_orders, seckill_state, user_sessions
from flashsale.services.seckill_orders import BatchOutcome, Entry

log = logging.getLogger(__name__)

GRACE_S = 5.0
WATCH_INTERVAL_S = 1.0
CONSUMER_LEAD = dt.timedelta(seconds=60)  # consumers start this long before a sale opens: none waits for them
BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)  # MySQL out of reach: pauses before the batch in hand is retried
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, ConnectionError, OSError, asyncio.TimeoutError,
                       db.RetriesSpent, db.Unreachable)

class SaleWorker:
    """The consumers of one stream of a sale (its shard's) in this process, and what they share."""

    def __init__(self, engine: "Engine", sale: dict[str, Any], shard: int = 0):
        self.engine = engine
        self.ctx = engine.ctx
        self.sale = sale
        self.sale_id = sale["id"]
        self.shard = shard
        k = self.ctx.keys
        self.stream = k.sale_stream(self.sale_id, shard)
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
            except (RedisError, OSError) as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):  # Redis lost the stream
                    try:
                        await self.ensure_group()
                    except (RedisError, OSError):
                        log.warning("making the group of %s failed; retrying", self.stream, exc_info=True)
                        await _sleep(stop, 1.0)
                    continue
                # a lost reply may have delivered entries to this name: read its pending ones again
                log.warning("reading %s failed; retrying", self.stream, exc_info=True)
                cursor = "0"
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
                except Exception:
                    # Redis lost while acknowledging (or anything else): this consumer must not
                    # die. The entries stay pending under its name: read them again from the
                    # start (writing an order twice is a no-op, keyed by its request id).
                    log.warning("finishing a batch of %s failed; reading its pending entries again",
                                self.stream, exc_info=True)
                    cursor = "0"
                    await _sleep(stop, 1.0)
                finally:
                    self.busy.discard(name)

    async def process(self, entries: list[Entry], stop: asyncio.Event | None,
                      deliveries: dict[str, int] | None = None) -> None:
        """Write, then acknowledge; MySQL trouble is retried with back-off, never acknowledged."""
        attempt = 0
        while True:
            try:
                outcome = await seckill_orders.write_batch(self.ctx, self.sale, entries)
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
        await self.acknowledge(outcome, deliveries or {}, entries)
        self.engine.count_batch(len(entries), outcome.inserted)

    async def acknowledge(self, outcome: BatchOutcome, deliveries: dict[str, int], entries: list[Entry]) -> None:
        """Results go to each buyer's home shard (this stream's shard unless take.lua admitted the
        entry away from home), then the entries are acknowledged."""
        if outcome.orders:
            homes = {e.request_id: self.shard if e.home is None else e.home for e in entries}
            by_home: dict[int, dict[str, str]] = {}
            for rid, oid in outcome.orders.items():
                by_home.setdefault(homes.get(rid, self.shard), {})[rid] = f"success:{oid}"
            await outcomes.record(self.ctx, self.sale_id, self.stream, self.group, by_home, outcome.acked)
        for entry, reason in outcome.failed:
            await self.fail(entry, reason, deliveries.get(entry.entry_id, 1))

    async def fail(self, entry: Entry, reason: str, deliveries: int) -> None:
        """Dead-letter an entry: its unit goes back (once), the buyer learns `failed`."""
        if await seckill_orders.dead_letter(self.ctx, self.sale_id, entry, reason, deliveries, self.shard):
            log.warning("dead-lettered request %s of sale %s (%s); its unit is back",
                        entry.request_id, self.sale_id, reason)
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
                    await self.acknowledge(await seckill_orders.give_up(self.ctx, self.sale, doomed, "undeliverable"),
                                           deliveries, doomed)
                rest = [e for e in entries if e not in doomed]
                if rest:
                    await self.process(rest, None, deliveries)
            if start == "0-0":
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
        self.workers: dict[int, list[SaleWorker]] = {}  # sale id -> a worker per stock shard
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.listener: asyncio.Task | None = None
        self.expiring: set[int] = set()  # ended sales whose Redis keys have their expiry set
        # blocking reads park a connection each: they get a pool of their own, apart from requests
        self.reader = open_reader(ctx.settings)

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
        consumers = [t for ws in self.workers.values() for w in ws for t in w.tasks]
        for worker in (w for ws in self.workers.values() for w in ws):
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
        await learn_topology(self.reader)  # before the consumers' first reads run side by side
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
            if not await seckill_state.is_warm(self.ctx, sale_id):
                await seckill_state.rebuild_state(self.ctx, sale_id)
            live = sale["start_time"] - CONSUMER_LEAD <= now < sale["end_time"]
            if now >= sale["end_time"] and sale_id not in self.expiring:
                await seckill_state.expire_state(self.ctx, sale)  # results stay readable for a while
                self.expiring.add(sale_id)
            workers = self.workers.get(sale_id)
            if workers is None:
                workers = [SaleWorker(self, sale, shard) for shard in range(seckill_state.shard_count(sale))]
                if not live and await _all_drained(workers):
                    continue  # upcoming or ended with nothing to do: nobody needs to listen yet
                for worker in workers:
                    await worker.ensure_group()
                    worker.start(self.stop_event)
                self.workers[sale_id] = workers
            for worker in workers:
                worker.sale = sale
            followed.add(sale_id)
        for sale_id in list(self.workers):
            if sale_id not in followed and await _all_drained(self.workers[sale_id]):
                workers = self.workers.pop(sale_id)
                for worker in workers:
                    await worker.stop()
                # drained: once more, so that keys the drain made after the end expire too
                await seckill_state.expire_state(self.ctx, workers[0].sale)

    # --- reclaiming and trimming ---
    async def reclaim_loop(self) -> None:
        interval = max(0.2, self.ctx.settings.reclaim_idle_ms / 2000)
        while not self.stop_event.is_set():
            await _sleep(self.stop_event, interval)
            for worker in [w for ws in list(self.workers.values()) for w in ws]:
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
            try:
                await user_sessions.prune(self.ctx)  # sessions past their expiry
            except Exception:
                log.exception("pruning expired sessions failed")
            await _sleep(self.stop_event, self.ctx.settings.sweep_interval_s * random.uniform(0.8, 1.2))

    async def sweep(self) -> int:
        """Cancel orders (ordinary and flash-sale) left unpaid past their deadline; each cancel
        gives its stock back once, to the goods or to the sale."""
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


async def _all_drained(workers: list[SaleWorker]) -> bool:
    for worker in workers:
        if not await worker.drained():
            return False
    return True


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


async def engine_ctx(app: web.Application):
    """Cleanup context: the background work, when settings allow; stopped before Admission closes."""
    engine = Engine(app[CTX], app[ADMISSION])
    app[ENGINE] = engine
    if engine.ctx.settings.background_tasks:
        engine.start()
    yield
    await engine.stop()
