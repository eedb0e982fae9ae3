"""A flash sale's warm state in Redis: written, adjusted, rebuilt from MySQL, given back, expired.

The admission script (admit.lua) decides purchases from this state alone: the sale's window,
its stock and its buyers, all under the sale's hash tag.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.services import stock_notices
from flashsale.errors import NotFound
from flashsale.jsonio import money, utcnow

log = logging.getLogger(__name__)

# -> the sale's window and stock as the state holds them, or None
SALE_WINDOW = """
SELECT id, price, total_stock, per_user_limit, start_time, end_time, status FROM flash_sales WHERE id = %s"""
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


async def write_state(ctx: Context, row: dict[str, Any], *, stock: int,
                      buyers: dict[int, int] | None = None) -> bool:
    """Write a sale's window, stock and buyers where Redis holds none; True when written."""
    k = ctx.keys
    pairs: list[Any] = []
    for user_id, units in (buyers or {}).items():
        pairs += [user_id, units]
    written = await ctx.scripts.rebuild(
        keys=[k.sale_window(row["id"]), k.sale_stock(row["id"]), k.sale_buyers(row["id"])],
        args=_window_args(row) + [stock] + pairs)
    await ctx.redis.sadd(k.active_sales(), row["id"])
    return bool(written)


async def adjust_state(ctx: Context, row: dict[str, Any], stock_delta: int) -> int | None:
    """Apply an edit to the warm state; None when the state is missing (a rebuild writes it)."""
    k = ctx.keys
    remaining = await ctx.scripts.adjust(
        keys=[k.sale_window(row["id"]), k.sale_stock(row["id"])],
        args=_window_args(row) + [stock_delta])
    if int(remaining) < 0:
        return None
    if stock_delta > 0:
        await stock_notices.publish(ctx, row["id"])
    return int(remaining)


def is_over(row: dict[str, Any], now: dt.datetime) -> bool:
    """An ended or cancelled sale: admission answers `ended`, its state is never rebuilt."""
    return row["status"] == "cancelled" or row["end_time"] <= now


def sale_keys(ctx: Context, sale_id: int) -> list[str]:
    """Every key of a sale but the per-user rate counters (they expire within a second) and the
    rebuild lock (SET with PX)."""
    k = ctx.keys
    return [k.sale_window(sale_id), k.sale_stock(sale_id), k.sale_buyers(sale_id), k.sale_stream(sale_id),
            k.sale_results(sale_id), k.sale_user_request(sale_id), k.sale_stats(sale_id),
            k.sale_dead(sale_id), k.sale_released(sale_id)]


async def expire_state(ctx: Context, row: dict[str, Any]) -> None:
    """Let an ended (or cancelled) sale's Redis keys go settings.sale_state_keep_s after its end
    (or now, for a cancel), and take it out of fs:active. Safe to repeat: keys made after an
    earlier call (results and dead letters of the drain) get their expiry from the next one."""
    sale_id = row["id"]
    end = row["end_time"] if row["status"] != "cancelled" else min(row["end_time"], utcnow())
    at_ms = _ms(end) + ctx.settings.sale_state_keep_s * 1000
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for key in sale_keys(ctx, sale_id):
            pipe.pexpireat(key, at_ms)
        pipe.srem(ctx.keys.active_sales(), sale_id)
        await pipe.execute()


async def is_warm(ctx: Context, sale_id: int) -> bool:
    return bool(await ctx.redis.exists(ctx.keys.sale_window(sale_id)))


async def _requests_in_stream(ctx: Context, sale_id: int) -> dict[str, int]:
    """request id -> user id for every entry still in the sale's stream."""
    found: dict[str, int] = {}
    key, start = ctx.keys.sale_stream(sale_id), "-"
    while True:
        entries = await ctx.redis.xrange(key, min=start, max="+", count=1000)
        for entry_id, fields in entries:
            found[fields["r"]] = int(fields["u"])
        if len(entries) < 1000:
            return found
        start = "(" + entries[-1][0]


async def rebuild_state(ctx: Context, sale_id: int) -> bool:
    """Rebuild a sale's lost Redis state from MySQL, once, under a lock; True when this call wrote it.

    remaining = total - (orders that hold stock, and requests still in the stream that have not
    ended yet, counted once by request id). The stream is read before MySQL, so an entry that
    becomes an order in between is counted once (as an order), never zero times.
    """
    k = ctx.keys
    if await is_warm(ctx, sale_id):
        return False
    if not await ctx.redis.set(k.sale_rebuild_lock(sale_id), ctx.settings.consumer_name or "x",
                               nx=True, px=REBUILD_LOCK_MS):
        return False
    try:
        if await is_warm(ctx, sale_id):
            return False
        in_stream = await _requests_in_stream(ctx, sale_id)
        row = await db.fetch_one(ctx.db, SALE_WINDOW, (sale_id,))
        if row is None:
            raise NotFound()
        if is_over(row, utcnow()):
            return False  # nobody may buy any more: an over sale's state is never written again
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
        remaining = max(0, row["total_stock"] - units)
        written = await write_state(ctx, row, stock=remaining, buyers=buyers)
        if written:
            log.warning("rebuilt Redis state of sale %s from MySQL: remaining %s, %s buyers",
                        sale_id, remaining, len(buyers))
        return written
    finally:
        await ctx.redis.delete(k.sale_rebuild_lock(sale_id))


async def release_units(ctx: Context, sale_id: int, user_id: int, units: int) -> None:
    """Give units of a cancelled flash-sale order back to the sale's Redis stock and buyer slot.

    Call it only after the MySQL transaction that cancelled the order (and lowered
    flash_sales.sold) committed, and only when that cancel changed a row.
    """
    k = ctx.keys
    remaining = await ctx.scripts.release(keys=[k.sale_stock(sale_id), k.sale_buyers(sale_id)],
                                          args=[user_id, units])
    if int(remaining) >= 0:
        await stock_notices.publish(ctx, sale_id)
