"""A flash sale's warm state in Redis: written, adjusted, rebuilt from MySQL, given back, expired.

The admission script (admit.lua) decides purchases from this state alone: the sale's window,
its stock and its buyers, all under the sale's hash tag. A sale split over `stock_shards`
shards has that state once per shard, each under its own tag (redis_keys.Keys.sale_tag): every
shard holds the window (with the shard count), a part of the stock, and the buyers whose home
shard it is (redis_keys.home_shard); the sale's remaining stock is the sum of the shards'.
How a purchase moves between shards, and the invariants, are in admission.py.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.errors import NotFound
from flashsale.jsonio import money, utcnow
from flashsale.redis_keys import home_shard
from flashsale.services import stock_notices

log = logging.getLogger(__name__)

# -> the sale's window and stock as the state holds them, or None
SALE_WINDOW = """
SELECT id, price, total_stock, per_user_limit, start_time, end_time, status, stock_shards
  FROM flash_sales WHERE id = %s"""
# -> per user, units held by the sale's orders that are not cancelled (for a rebuild)
HELD_BY_ORDERS = """
SELECT request_id, user_id, quantity FROM orders
 WHERE flash_sale_id = %s AND status <> 'cancelled'"""
# -> request ids that already ended as an order (any status) or an explicit failure
ENDED_REQUESTS = """
SELECT request_id FROM orders WHERE flash_sale_id = %s AND request_id IS NOT NULL
UNION ALL
SELECT request_id FROM seckill_failures WHERE flash_sale_id = %s"""

REBUILD_LOCK_MS = 30_000


def _ms(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def _window_args(row: dict[str, Any]) -> list[Any]:
    return [_ms(row["start_time"]), _ms(row["end_time"]), row["per_user_limit"], money(row["price"]),
            row["status"]]


def shard_count(row: dict[str, Any]) -> int:
    """The stock shards of a sale row (1 for a row read without the column)."""
    return int(row.get("stock_shards") or 1)


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` over `parts` shards, the first ones taking one more when it does not divide."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def _write_shards(ctx: Context, row: dict[str, Any], stocks: dict[int, int],
                        buyers: dict[int, int]) -> bool:
    """rebuild.lua on each shard in `stocks` (shard -> its stock), with the buyers homed there."""
    k, sale_id, shards = ctx.keys, row["id"], shard_count(row)
    written = False
    for shard, stock in stocks.items():
        pairs: list[Any] = []
        for user_id, units in buyers.items():
            if home_shard(user_id, shards) == shard:
                pairs += [user_id, units]
        written = bool(await ctx.scripts.rebuild(
            keys=[k.sale_window(sale_id, shard), k.sale_stock(sale_id, shard), k.sale_buyers(sale_id, shard)],
            args=_window_args(row) + [stock, shards] + pairs)) or written
    await ctx.redis.sadd(k.active_sales(), sale_id)
    return written


async def write_state(ctx: Context, row: dict[str, Any], *, stock: int,
                      buyers: dict[int, int] | None = None) -> bool:
    """Write a sale's window, stock (split evenly over its shards) and buyers (each on their
    home shard) where Redis holds none; True when any shard was written."""
    parts = split_evenly(stock, shard_count(row))
    return await _write_shards(ctx, row, dict(enumerate(parts)), buyers or {})


async def reshard_state(ctx: Context, row: dict[str, Any], old_shards: int) -> None:
    """Lay a sale that has not started out again over a new shard count: nobody holds a unit
    before the start, so the old shards' keys go and the whole stock is written anew."""
    await ctx.redis.delete(*[key for shard in range(old_shards)
                             for key in (ctx.keys.sale_window(row["id"], shard), ctx.keys.sale_stock(row["id"], shard),
                                         ctx.keys.sale_buyers(row["id"], shard))])
    await write_state(ctx, row, stock=row["total_stock"] - row["sold"])


async def adjust_state(ctx: Context, row: dict[str, Any], stock_delta: int) -> int | None:
    """Apply an edit to the warm state of every shard; the sale's remaining stock after it, or
    None when a shard's state is missing (a rebuild writes it).

    More stock is spread evenly over the shards; less is taken shard after shard, as far as each
    holds it (as on one shard, the stock never goes below zero)."""
    k, sale_id, shards = ctx.keys, row["id"], shard_count(row)
    adds = split_evenly(stock_delta, shards) if stock_delta > 0 else [0] * shards
    deficit = -stock_delta if stock_delta < 0 else 0
    remaining, cold = 0, False
    for shard in range(shards):
        delta = adds[shard] or -deficit
        stock, applied = await ctx.scripts.adjust(
            keys=[k.sale_window(sale_id, shard), k.sale_stock(sale_id, shard)],
            args=_window_args(row) + [delta])
        if int(stock) < 0:
            cold = True
            continue
        if delta < 0:
            deficit += int(applied)
        remaining += int(stock)
    if cold:
        return None
    if stock_delta > 0:
        await stock_notices.publish(ctx, sale_id)
    return remaining


async def remaining_of(ctx: Context, sales: list[tuple[int, int]]) -> dict[int, int | None]:
    """(sale id, shards) -> the remaining stock summed over the sale's shards, from one
    pipeline of GETs (one slot each); None for a sale with a shard whose state is missing."""
    if not sales:
        return {}
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for sale_id, shards in sales:
            for shard in range(shards):
                pipe.get(ctx.keys.sale_stock(sale_id, shard))
        values = iter(await pipe.execute())
    found: dict[int, int | None] = {}
    for sale_id, shards in sales:
        parts = [next(values) for _ in range(shards)]
        found[sale_id] = None if any(v is None for v in parts) else sum(int(v) for v in parts)
    return found


def is_over(row: dict[str, Any], now: dt.datetime) -> bool:
    """An ended or cancelled sale: admission answers `ended`, its state is never rebuilt."""
    return row["status"] == "cancelled" or row["end_time"] <= now


def sale_keys(ctx: Context, sale_id: int, shards: int = 1) -> list[str]:
    """Every key of a sale (of each of its shards) but the per-user rate counters (they expire
    within a second) and the rebuild lock (SET with PX)."""
    k = ctx.keys
    return [key for s in range(shards)
            for key in (k.sale_window(sale_id, s), k.sale_stock(sale_id, s), k.sale_buyers(sale_id, s),
                        k.sale_stream(sale_id, s), k.sale_results(sale_id, s), k.sale_user_request(sale_id, s),
                        k.sale_stats(sale_id, s), k.sale_dead(sale_id, s), k.sale_released(sale_id, s))]


async def expire_state(ctx: Context, row: dict[str, Any]) -> None:
    """Let an ended (or cancelled) sale's Redis keys go settings.sale_state_keep_s after its end
    (or now, for a cancel), and take it out of fs:active. Safe to repeat: keys made after an
    earlier call (results and dead letters of the drain) get their expiry from the next one."""
    sale_id = row["id"]
    end = row["end_time"] if row["status"] != "cancelled" else min(row["end_time"], utcnow())
    at_ms = _ms(end) + ctx.settings.sale_state_keep_s * 1000
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for key in sale_keys(ctx, sale_id, shard_count(row)):
            pipe.pexpireat(key, at_ms)
        pipe.srem(ctx.keys.active_sales(), sale_id)
        await pipe.execute()


async def shards_in_redis(ctx: Context, sale_id: int) -> int | None:
    """The sale's shard count as shard 0's window holds it; None when that window is missing."""
    start, shards = await ctx.redis.hmget(ctx.keys.sale_window(sale_id), "start_ms", "shards")
    return None if start is None else int(shards or 1)


async def _warm_shards(ctx: Context, sale_id: int, shards: int) -> list[bool]:
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.exists(ctx.keys.sale_window(sale_id, shard))
        return [bool(v) for v in await pipe.execute()]


async def is_warm(ctx: Context, sale_id: int) -> bool:
    """Every shard of the sale holds its state (a one-shard sale: one EXISTS-like read)."""
    shards = await shards_in_redis(ctx, sale_id)
    if shards is None:
        return False
    return shards == 1 or all(await _warm_shards(ctx, sale_id, shards))


async def _requests_in_stream(ctx: Context, sale_id: int, shard: int = 0) -> dict[str, int]:
    """request id -> user id for every entry still in the stream of one shard of the sale."""
    found: dict[str, int] = {}
    key, start = ctx.keys.sale_stream(sale_id, shard), "-"
    while True:
        entries = await ctx.redis.xrange(key, min=start, max="+", count=1000)
        for entry_id, fields in entries:
            found[fields["r"]] = int(fields["u"])
        if len(entries) < 1000:
            return found
        start = "(" + entries[-1][0]


async def rebuild_state(ctx: Context, sale_id: int) -> bool:
    """Rebuild a sale's lost Redis state from MySQL, once, under a lock; True when this call wrote it.

    remaining = total - (orders that hold stock, and requests still in the sale's streams that
    have not ended yet, counted once by request id). The stream is read before MySQL, so an entry
    that becomes an order in between is counted once (as an order), never zero times.

    A sale split over shards may lose only some of them (a cluster node): the shards still warm
    keep their stock, read before the streams (a unit admitted meanwhile is counted twice, never
    zero times: the sale may undersell, not oversell); the lost shards share what is left,
    evenly, and get back the buyers whose home they are.
    """
    k = ctx.keys
    if await is_warm(ctx, sale_id):
        return False
    if not await ctx.redis.set(k.sale_rebuild_lock(sale_id), ctx.settings.consumer_name or "x",
                               nx=True, px=REBUILD_LOCK_MS):
        return False
    try:
        row = await db.fetch_one(ctx.db, SALE_WINDOW, (sale_id,))
        if row is None:
            raise NotFound()
        if is_over(row, utcnow()):
            return False  # nobody may buy any more: an over sale's state is never written again
        shards = shard_count(row)
        warm = await _warm_shards(ctx, sale_id, shards)
        if all(warm):
            return False
        kept = 0
        if any(warm):
            async with ctx.redis.pipeline(transaction=False) as pipe:
                for shard in range(shards):
                    if warm[shard]:
                        pipe.get(k.sale_stock(sale_id, shard))
                kept = sum(int(v or 0) for v in await pipe.execute())
        in_stream: dict[str, int] = {}
        for shard in range(shards):
            in_stream.update(await _requests_in_stream(ctx, sale_id, shard))
        held = await db.fetch_all(ctx.db, HELD_BY_ORDERS, (sale_id,))
        ended = {r["request_id"] for r in await db.fetch_all(ctx.db, ENDED_REQUESTS, (sale_id, sale_id))}
        buyers: dict[int, int] = {}
        units = 0
        for r in held:
            buyers[r["user_id"]] = buyers.get(r["user_id"], 0) + r["quantity"]
            units += r["quantity"]
        for request_id, user_id in in_stream.items():
            if request_id not in ended:
                buyers[user_id] = buyers.get(user_id, 0) + 1
                units += 1
        remaining = max(0, row["total_stock"] - units - kept)
        lost = [shard for shard in range(shards) if not warm[shard]]
        written = await _write_shards(ctx, row, dict(zip(lost, split_evenly(remaining, len(lost)))), buyers)
        if written:
            log.warning("rebuilt Redis state of sale %s (shards %s of %s) from MySQL: remaining %s, %s buyers",
                        sale_id, lost, shards, remaining, len(buyers))
        return written
    finally:
        await ctx.redis.delete(k.sale_rebuild_lock(sale_id))


async def release_units(ctx: Context, sale_id: int, user_id: int, units: int) -> None:
    """Give units of a cancelled flash-sale order back to the sale's Redis stock and buyer slot,
    both on the buyer's home shard.

    Call it only after the MySQL transaction that cancelled the order (and lowered
    flash_sales.sold) committed, and only when that cancel changed a row.
    """
    k = ctx.keys
    shard = home_shard(user_id, await shards_in_redis(ctx, sale_id) or 1)
    remaining = await ctx.scripts.release(keys=[k.sale_stock(sale_id, shard), k.sale_buyers(sale_id, shard)],
                                          args=[user_id, units])
    if int(remaining) >= 0:
        await stock_notices.publish(ctx, sale_id)
