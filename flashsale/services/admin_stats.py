"""The admin dashboard's figures: orders and revenue per day, statuses, best sellers, live sales."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from flashsale import db
from flashsale.bodies import Body, Field
from flashsale.context import Context
from flashsale.jsonio import utcnow
from flashsale.services.orders import STATUSES

MAX_DAYS = 90
TOP_GOODS = 5
RATE_WINDOW_S = 10
# the dashboard's query string (besides only=live)
STATS_QUERY = Body(Field.integer("days", 1, MAX_DAYS, required=False, default=14))

# -> {day, status, n, amount} per day and status of the orders created since a time. A range of
# ix_orders_created (forced: for a long period on a small table the optimizer prefers a full scan,
# which grows with all orders ever made, not with the period)
DAILY_BY_STATUS = """
SELECT DATE(created_at) AS day, status, COUNT(*) AS n, SUM(total_amount) AS amount
  FROM orders FORCE INDEX (ix_orders_created)
 WHERE created_at >= %s
 GROUP BY day, status"""
# -> {id, name, sales}: the goods sold most (in units) by the orders of the period that stand
TOP_GOODS_SINCE = f"""
SELECT o.goods_id AS id, g.name, SUM(o.quantity) AS sales
  FROM orders o FORCE INDEX (ix_orders_created) STRAIGHT_JOIN goods g ON g.id = o.goods_id
 WHERE o.created_at >= %s AND o.status <> 'cancelled'
 GROUP BY o.goods_id, g.name
 ORDER BY sales DESC, o.goods_id
 LIMIT {TOP_GOODS}"""
# -> the sales live now, ending first (ix_flash_sales_window)
LIVE_SALES = """
SELECT s.id, s.goods_id, g.name AS goods_name, s.price, s.total_stock, s.sold, s.start_time, s.end_time,
       s.stock_shards
  FROM flash_sales s JOIN goods g ON g.id = s.goods_id
 WHERE s.status = 'scheduled' AND s.end_time > %s AND s.start_time <= %s
 ORDER BY s.end_time, s.id"""
# -> {flash_sale_id, n}: orders written for these sales since a time (a short range of ix_orders_created)
RECENT_SALE_ORDERS = """
SELECT flash_sale_id, COUNT(*) AS n FROM orders FORCE INDEX (ix_orders_created)
 WHERE created_at >= %s AND flash_sale_id IN ({marks})
 GROUP BY flash_sale_id"""
# -> {id, sold} of the given sales (PRIMARY)
SOLD_OF_SALES = "SELECT id, sold FROM flash_sales WHERE id IN ({marks})"


async def dashboard(ctx: Context, days: int = 14, now: dt.datetime | None = None) -> dict[str, Any]:
    """The last `days` UTC days, today included: every day present (zero-filled) with its orders and
    the revenue of those not cancelled; the period's orders by status; its five best sellers; and
    the live sales' engine figures."""
    now = now or utcnow()
    first_day = now.date() - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first_day, dt.time())
    per_day = {first_day + dt.timedelta(days=i): {"orders": 0, "revenue": Decimal("0")} for i in range(days)}
    status_counts = dict.fromkeys(STATUSES, 0)
    for row in await db.fetch_all(ctx.db, DAILY_BY_STATUS, (since,)):
        day = per_day.get(row["day"])
        if day is None:  # a clock a little behind MySQL's: an order "tomorrow" is not in the period
            continue
        day["orders"] += int(row["n"])
        status_counts[row["status"]] += int(row["n"])
        if row["status"] != "cancelled":
            day["revenue"] += row["amount"]
    top = await db.fetch_all(ctx.db, TOP_GOODS_SINCE, (since,))
    return {
        "days": days,
        "daily": [{"date": day.isoformat(), **figures} for day, figures in per_day.items()],
        "status_counts": status_counts,
        "top_goods": [{"id": r["id"], "name": r["name"], "sales": int(r["sales"])} for r in top],
        "live_sales": await live_sales(ctx, now),
    }


async def live_sales(ctx: Context, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each live sale: units left in Redis, sold in MySQL, the stream's backlog (queued: not yet
    read by the consumer group; pending: read, not acknowledged; dead: dead-lettered) and the
    orders written per second over the last ten seconds."""
    now = now or utcnow()
    sales = await db.fetch_all(ctx.db, LIVE_SALES, (now, now))
    if not sales:
        return []
    ids = [s["id"] for s in sales]
    marks = ", ".join(["%s"] * len(ids))
    recent = {r["flash_sale_id"]: int(r["n"]) for r in await db.fetch_all(
        ctx.db, RECENT_SALE_ORDERS.format(marks=marks), (now - dt.timedelta(seconds=RATE_WINDOW_S), *ids))}
    engine = await _engine_figures(ctx, [(s["id"], int(s["stock_shards"] or 1)) for s in sales])
    return [{
        "id": s["id"], "goods": {"id": s["goods_id"], "name": s["goods_name"]}, "price": s["price"],
        "total_stock": s["total_stock"], "end_time": s["end_time"],
        **engine[s["id"]], "sold": s["sold"],
        "orders_per_sec": round(recent.get(s["id"], 0) / RATE_WINDOW_S, 1),
    } for s in sales]


async def _engine_figures(ctx: Context, sales: list[tuple[int, int]]) -> dict[int, dict[str, int | None]]:
    """remaining, queued, pending and dead of each (sale, shards), summed over the sale's shards,
    from one pipeline (one slot per shard's keys)."""
    k, group = ctx.keys, ctx.keys.consumer_group()
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for sale_id, shards in sales:
                for shard in range(shards):
                    stream = k.sale_stream(sale_id, shard)
                    pipe.get(k.sale_stock(sale_id, shard))
                    pipe.xlen(stream)
                    pipe.xinfo_groups(stream)
                    pipe.xpending(stream, group)
                    pipe.xlen(k.sale_dead(sale_id, shard))
            replies = iter(await pipe.execute(raise_on_error=False))
    except (RedisError, OSError):
        return {i: {"remaining": None, "queued": None, "pending": None, "dead": None} for i, _ in sales}
    figures = {}
    for sale_id, shards in sales:
        parts = []
        for _ in range(shards):
            stock, length, groups, pending, dead = (next(replies) for _ in range(5))
            parts.append({
                "remaining": _int(stock),
                "queued": _queued(length, groups, group),
                # XPENDING on a stream without the group is an error: nothing is pending then
                "pending": int(pending["pending"]) if isinstance(pending, dict) else 0,
                "dead": _int(dead) or 0,
            })
        figures[sale_id] = {name: _sum(p[name] for p in parts) for name in ("remaining", "queued", "pending", "dead")}
    return figures


def _sum(values) -> int | None:
    """The sum over shards; None when any shard cannot tell."""
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def _int(reply: Any) -> int | None:
    return None if reply is None or isinstance(reply, Exception) else int(reply)


def _queued(length: Any, groups: Any, group: str) -> int | None:
    """The group's lag; every entry while no consumer made the group yet; None when Redis cannot
    tell (it reports no lag after entries in the unread part were deleted)."""
    if isinstance(groups, Exception):  # no stream yet: nothing was admitted
        return 0
    for info in groups:
        if info.get("name") == group:
            lag = info.get("lag")
            return None if lag is None else int(lag)
    return _int(length) or 0


async def sold_of_sales(ctx: Context, sale_ids: list[int]) -> dict[int, int]:
    """flash_sales.sold (units held by orders not cancelled) of each sale, for the admin list."""
    if not sale_ids:
        return {}
    rows = await db.fetch_all(ctx.db, SOLD_OF_SALES.format(marks=", ".join(["%s"] * len(sale_ids))), sale_ids)
    return {r["id"]: int(r["sold"]) for r in rows}
