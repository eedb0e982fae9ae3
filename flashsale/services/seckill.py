"""Flash sales: reading and scheduling them in MySQL, and purchase results.

The sale's warm state in Redis (the admission script's view of it) is in seckill_state.py."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.errors import BadStatus, NotFound, Validation
from flashsale.jsonio import utcnow
from flashsale.redis_keys import home_shard
from flashsale.services import catalog_revision, seckill_state
from flashsale.services.goods_photos import photo_url
from flashsale.bodies import Body, Field

SALE_COLUMNS = """
s.id, s.goods_id, s.price, s.total_stock, s.sold, s.per_user_limit, s.stock_shards, s.start_time, s.end_time,
s.status, s.created_at, g.name AS goods_name, g.photo AS goods_photo,
g.original_price AS goods_original_price, g.price AS goods_price"""
# -> one sale with its goods, or None
SALE_BY_ID = f"SELECT {SALE_COLUMNS} FROM flash_sales s JOIN goods g ON g.id = s.goods_id WHERE s.id = %s"
# -> a page of sales in one state, live first, then upcoming, then ended
LIST_SALES = f"""
SELECT {SALE_COLUMNS},
       CASE WHEN s.status = 'cancelled' THEN 3
            WHEN s.start_time <= %s AND s.end_time > %s THEN 0
            WHEN s.start_time > %s THEN 1 ELSE 2 END AS state_rank
  FROM flash_sales s JOIN goods g ON g.id = s.goods_id
 WHERE {{where}}
 ORDER BY state_rank, CASE WHEN s.start_time > %s THEN s.start_time END ASC, s.end_time DESC, s.id DESC
 LIMIT %s OFFSET %s"""
COUNT_SALES = "SELECT COUNT(*) FROM flash_sales s WHERE {where}"
STATE_FILTERS = {
    "live": ("s.status = 'scheduled' AND s.start_time <= %s AND s.end_time > %s", 2),
    "upcoming": ("s.status = 'scheduled' AND s.start_time > %s", 1),
    "ended": ("s.status = 'scheduled' AND s.end_time <= %s", 1),  # cancelled ones only in the full list
    "": ("1 = 1", 0),
}
# -> the goods' live or next sale
SALE_FOR_GOODS = f"""
SELECT {SALE_COLUMNS} FROM flash_sales s JOIN goods g ON g.id = s.goods_id
 WHERE s.goods_id = %s AND s.status = 'scheduled' AND s.end_time > %s
 ORDER BY s.start_time LIMIT 1"""
# -> sales the background tasks follow: upcoming, live, or ended within the last hour
ACTIVE_SALES = f"""
SELECT {SALE_COLUMNS} FROM flash_sales s JOIN goods g ON g.id = s.goods_id
 WHERE s.status = 'scheduled' AND s.end_time > %s"""
GOODS_EXISTS = "SELECT id FROM goods WHERE id = %s"
INSERT_SALE = """
INSERT INTO flash_sales (goods_id, price, total_stock, per_user_limit, stock_shards, start_time, end_time)
VALUES (%s, %s, %s, %s, %s, %s, %s)"""
# 1: changed (only while scheduled)
UPDATE_SALE = """
UPDATE flash_sales SET goods_id = %s, price = %s, total_stock = %s, per_user_limit = %s,
       stock_shards = %s, start_time = %s, end_time = %s
 WHERE id = %s AND status = 'scheduled'"""
# 1: cancelled by this call
CANCEL_SALE = "UPDATE flash_sales SET status = 'cancelled' WHERE id = %s AND status = 'scheduled'"
# -> the row, locked while an edit decides
LOCK_SALE_FOR_EDIT = """
SELECT id, goods_id, total_stock, sold, start_time, end_time, status, stock_shards FROM flash_sales
 WHERE id = %s FOR UPDATE"""
# -> the user's latest order from this sale (when Redis lost the result)
LATEST_ORDER_OF_USER = """
SELECT id FROM orders WHERE flash_sale_id = %s AND user_id = %s ORDER BY id DESC LIMIT 1"""
# -> units the user holds in this sale: their orders from it that were not cancelled (ix_orders_sale_user)
UNITS_OF_USER = """
SELECT COALESCE(SUM(quantity), 0) FROM orders
 WHERE flash_sale_id = %s AND user_id = %s AND status <> 'cancelled'"""

MAX_STOCK = 10_000_000
MAX_STOCK_SHARDS = 64
MAX_LIMIT = 99
TIME_MESSAGE = "Give a time in ISO 8601, e.g. 2026-11-24T12:00:00Z."
# a PUT sends any of these: the ones left out keep their value
SALE_BODY = Body(
    Field.integer("goods_id", 1, 2**63 - 1),
    Field.money("price", message="Give a price like 9.90.", missing="Give a price like 9.90."),
    Field.integer("total_stock", 1, MAX_STOCK),
    Field.integer("per_user_limit", 1, MAX_LIMIT, required=False, default=1),
    Field.time("start_time", message=TIME_MESSAGE),
    Field.time("end_time", message=TIME_MESSAGE, doc="After start_time."),
    Field.integer("stock_shards", 1, MAX_STOCK_SHARDS, required=False, default=1,
                  doc="A hot sale's stock split over that many Redis slots."),
)


async def server_time(ctx: Context) -> dt.datetime:
    """Redis's clock: the admission script decides the window by it, so pages count down to it."""
    seconds, micros = await ctx.redis.time()
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(microsecond=micros // 1000 * 1000)


def sale_state(row: dict[str, Any], now: dt.datetime) -> str:
    if row["status"] == "cancelled":
        return "cancelled"
    if now < row["start_time"]:
        return "upcoming"
    if now < row["end_time"]:
        return "live"
    return "ended"


def sale_json(row: dict[str, Any], remaining: int | None, now: dt.datetime) -> dict[str, Any]:
    """The contract's `sale`; `remaining` from Redis while warm, else from MySQL's count."""
    if remaining is None:
        remaining = row["total_stock"] - row["sold"]
    return {
        "id": row["id"],
        "goods": {"id": row["goods_id"], "name": row["goods_name"], "photo_url": photo_url(row["goods_photo"]),
                  "original_price": row["goods_original_price"] or row["goods_price"]},
        "price": row["price"],
        "total_stock": row["total_stock"],
        "remaining": max(0, int(remaining)),
        "per_user_limit": row["per_user_limit"],
        "stock_shards": seckill_state.shard_count(row),
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "state": sale_state(row, now),
    }


async def _remaining_many(ctx: Context, rows: list[dict[str, Any]]) -> dict[int, int | None]:
    """The sales' remaining stock, summed over each one's shards; one slot per shard: an MGET
    across tags would fail on a cluster, so the GETs are pipelined."""
    return await seckill_state.remaining_of(ctx, [(r["id"], seckill_state.shard_count(r)) for r in rows])


async def remaining_of(ctx: Context, row: dict[str, Any]) -> int | None:
    """The sale's remaining stock in Redis (summed over its shards), or None while its state is not there."""
    return (await _remaining_many(ctx, [row]))[row["id"]]


async def get_sale_row(ctx: Context, sale_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, SALE_BY_ID, (sale_id,))
    if row is None:
        raise NotFound()
    return row


async def get_sale(ctx: Context, sale_id: int) -> dict[str, Any]:
    row = await get_sale_row(ctx, sale_id)
    remaining = (await _remaining_many(ctx, [row]))[sale_id]
    return sale_json(row, remaining, utcnow())


async def list_sales(ctx: Context, state: str, page: int, per_page: int) -> tuple[list[dict], int]:
    now = utcnow()
    where, n_args = STATE_FILTERS[state]
    where_args = (now,) * n_args
    rows = await db.fetch_all(ctx.db, LIST_SALES.format(where=where),
                              (now, now, now) + where_args + (now, per_page, (page - 1) * per_page))
    total = await db.fetch_value(ctx.db, COUNT_SALES.format(where=where), where_args)
    remaining = await _remaining_many(ctx, rows)
    return [sale_json(r, remaining[r["id"]], now) for r in rows], int(total)


async def sale_for_goods(ctx: Context, goods_id: int) -> dict[str, Any] | None:
    """The goods' live or next upcoming flash sale as the contract's `sale` object, or None."""
    now = utcnow()
    row = await db.fetch_one(ctx.db, SALE_FOR_GOODS, (goods_id, now))
    if row is None:
        return None
    remaining = (await _remaining_many(ctx, [row]))[row["id"]]
    return sale_json(row, remaining, now)


async def active_sales(ctx: Context, ended_within_s: int = 3600) -> list[dict[str, Any]]:
    """Sales whose streams and state the background tasks look after."""
    since = utcnow() - dt.timedelta(seconds=ended_within_s)
    return await db.fetch_all(ctx.db, ACTIVE_SALES, (since,))


# --- admin: create, edit, cancel -------------------------------------------------------------

def _sale_fields(body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    values, fields = SALE_BODY.read(body, current)
    if values["start_time"] and values["end_time"] and values["end_time"] <= values["start_time"]:
        fields.error("end_time", "Must be after the start time.")
    fields.check()
    return values


async def create_sale(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """Schedule a sale in MySQL, then write its warm state in Redis."""
    values = _sale_fields(body, None)
    if await db.fetch_value(ctx.db, GOODS_EXISTS, (values["goods_id"],)) is None:
        raise Validation({"goods_id": "No such goods."})
    async def work(cur) -> int:
        await cur.execute(INSERT_SALE, (values["goods_id"], values["price"], values["total_stock"],
                                        values["per_user_limit"], values["stock_shards"], values["start_time"],
                                        values["end_time"]))
        return cur.lastrowid

    sale_id = await db.run_transaction(ctx.db, work)
    await catalog_revision.bump(ctx)
    row = await get_sale_row(ctx, sale_id)
    await seckill_state.write_state(ctx, row, stock=row["total_stock"])
    return sale_json(row, row["total_stock"], utcnow())


async def update_sale(ctx: Context, sale_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Before the start anything may change; once live only end_time and the stock (never below sold)."""
    now = utcnow()
    current = await get_sale_row(ctx, sale_id)
    values = _sale_fields(body, current)
    async def work(cur) -> tuple[int, int]:
        await cur.execute(LOCK_SALE_FOR_EDIT, (sale_id,))
        locked = await cur.fetchone()
        if locked["status"] != "scheduled" or locked["end_time"] <= now:
            raise BadStatus("Only a scheduled sale that has not ended can be changed.")
        started = locked["start_time"] <= now
        if started:
            frozen = {"goods_id": current["goods_id"], "price": current["price"],
                      "per_user_limit": current["per_user_limit"], "start_time": current["start_time"],
                      "stock_shards": seckill_state.shard_count(current)}
            changed = [k for k, v in frozen.items() if values[k] != v]
            if changed:
                raise Validation({k: "Cannot change once the sale is live." for k in changed})
            if values["end_time"] <= now:
                raise Validation({"end_time": "Must be in the future."})
        if values["total_stock"] < locked["sold"]:
            raise Validation({"total_stock": f"Cannot be below the {locked['sold']} already sold."})
        if values["goods_id"] != current["goods_id"] and await _goods_missing(cur, values["goods_id"]):
            raise Validation({"goods_id": "No such goods."})
        await cur.execute(UPDATE_SALE, (values["goods_id"], values["price"], values["total_stock"],
                                        values["per_user_limit"], values["stock_shards"], values["start_time"],
                                        values["end_time"], sale_id))
        return values["total_stock"] - locked["total_stock"], seckill_state.shard_count(locked)

    delta, old_shards = await db.run_transaction(ctx.db, work)
    await catalog_revision.bump(ctx)
    row = await get_sale_row(ctx, sale_id)
    if seckill_state.shard_count(row) != old_shards:  # only before the start (frozen once live)
        await seckill_state.reshard_state(ctx, row, old_shards)
        return sale_json(row, row["total_stock"] - row["sold"], utcnow())
    remaining = await seckill_state.adjust_state(ctx, row, delta)
    return sale_json(row, remaining, utcnow())


async def _goods_missing(cur, goods_id: int) -> bool:
    await cur.execute(GOODS_EXISTS, (goods_id,))
    return await cur.fetchone() is None


async def cancel_sale(ctx: Context, sale_id: int) -> dict[str, Any]:
    """Stop a sale: no new admissions; orders already made stay (admins cancel them one by one)."""
    await get_sale_row(ctx, sale_id)
    if await db.write(ctx.db, CANCEL_SALE, (sale_id,)) != 1:
        raise BadStatus("The sale is already cancelled.")
    await catalog_revision.bump(ctx)
    row = await get_sale_row(ctx, sale_id)
    await seckill_state.adjust_state(ctx, row, 0)  # admission answers `ended` from now on
    await seckill_state.expire_state(ctx, row)  # and its keys go sale_state_keep_s from now
    return sale_json(row, None, utcnow())


# --- purchase results ------------------------------------------------------------------------

async def purchase_result(ctx: Context, sale_id: int, user_id: int) -> dict[str, Any]:
    """The outcome of the user's latest purchase request in this sale."""
    k = ctx.keys
    home = home_shard(user_id, await seckill_state.shards_in_redis(ctx, sale_id) or 1)
    request_id = await ctx.redis.hget(k.sale_user_request(sale_id, home), user_id)
    if request_id is None:
        order_id = await db.fetch_value(ctx.db, LATEST_ORDER_OF_USER, (sale_id, user_id))
        if order_id is not None:
            return {"status": "success", "order_id": order_id}
        await get_sale_row(ctx, sale_id)  # 404 for an unknown sale
        return {"status": "none"}
    outcome = await ctx.redis.hget(k.sale_results(sale_id, home), request_id)
    return result_json(request_id, outcome)


async def units_held(ctx: Context, sale_id: int, user_id: int) -> int:
    """Units of this sale in the user's orders that still stand (queued requests not counted)."""
    return int(await db.fetch_value(ctx.db, UNITS_OF_USER, (sale_id, user_id)))


async def buyer_state(ctx: Context, sale_id: int, shards: int,
                      user_id: int) -> tuple[bool, str | None, str | None, int]:
    """From the sale's warm state in Redis: (warm, the buyer's latest request id, its outcome,
    units held), read on the buyer's home shard, where admission keeps them. On the lean
    connection: the three reads go out in one write (every view of the sale page makes them)."""
    k, mux = ctx.keys, ctx.mux
    home = home_shard(user_id, shards)
    reads = (mux.call("HGET", k.sale_user_request(sale_id, home), user_id),
             mux.call("HGET", k.sale_buyers(sale_id, home), user_id),
             mux.call("EXISTS", k.sale_window(sale_id)))
    request_id, held_raw, warm = await asyncio.gather(*reads)
    outcome = None
    if warm and request_id is not None:
        outcome = await mux.call("HGET", k.sale_results(sale_id, home), request_id)
    return bool(warm), request_id, outcome, int(held_raw or 0)


async def mark_cancelled(ctx: Context, sale_id: int, user_id: int, request_id: str, order_id: int) -> None:
    """The purchase's result reads `failed` / `cancelled` (with its order id) once its order is cancelled,
    on the buyer's home shard, where /result reads it.

    The expiry is set only when the hash has none (NX): an ended sale's keys keep their own."""
    k = ctx.keys
    results = k.sale_results(sale_id, home_shard(user_id, await seckill_state.shards_in_redis(ctx, sale_id) or 1))
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hset(results, request_id, f"cancelled:{order_id}")
        pipe.expire(results, ctx.settings.sale_state_keep_s, nx=True)
        await pipe.execute()


def result_json(request_id: str, outcome: str | None) -> dict[str, Any]:
    """`queued`, `success` with the order, `failed` with the reason; an order cancelled after it was
    made reads `failed`, reason `cancelled`, with its order id."""
    if outcome is None:
        return {"status": "queued", "request_id": request_id}
    status, _, detail = outcome.partition(":")
    if status == "success":
        return {"status": "success", "request_id": request_id, "order_id": int(detail)}
    if status == "cancelled":
        return {"status": "failed", "request_id": request_id, "reason": "cancelled", "order_id": int(detail)}
    return {"status": "failed", "request_id": request_id, "reason": detail}

