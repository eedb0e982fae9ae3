"""Flash sales for a test: bulk buyers, sales, purchases, and what a sale holds in MySQL and Redis."""
from __future__ import annotations

import datetime as dt
from typing import Any

from redis.exceptions import ResponseError

from flashsale import db
from flashsale.appkeys import ENGINE
from flashsale.context import Context
from flashsale.services import seckill, seckill_state

from tests.support.factory import unique

BULK_USER = "INSERT INTO users (username, email, password_hash) VALUES {rows}"
BULK_ADDRESS = """
INSERT INTO addresses (user_id, receiver_name, phone, province, city, district, detail_address, is_default)
VALUES {rows}"""


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


async def buyers(ctx: Context, n: int) -> list[dict[str, Any]]:
    """n users with one default address each, inserted in bulk: [{id, address_id}]."""
    stem = unique("b")
    names = [f"{stem}_{i}" for i in range(n)]
    async with db.transaction(ctx.db) as cur:
        await cur.execute(BULK_USER.format(rows=", ".join(["(%s, %s, 'scrypt$16$1$1$AA$AA')"] * n)),
                          [v for name in names for v in (name, f"{name}@example.com")])
        first_user = cur.lastrowid
        user_ids = list(range(first_user, first_user + n))
        await cur.execute(BULK_ADDRESS.format(rows=", ".join(
            ["(%s, 'Buyer', '13800000000', 'Zhejiang', 'Hangzhou', 'Xihu', '1 Sale Road', 1)"] * n)), user_ids)
        first_address = cur.lastrowid
    return [{"id": uid, "address_id": first_address + i} for i, uid in enumerate(user_ids)]


async def make_sale(ctx: Context, factory, *, stock: int = 10, limit: int = 1, start_in_s: float = -1,
                    length_s: float = 120, price: str = "9.90", shards: int = 1) -> dict[str, Any]:
    goods_id = await factory.goods(stock=1000)
    start = now() + dt.timedelta(seconds=start_in_s)
    return await seckill.create_sale(ctx, {
        "goods_id": goods_id, "price": price, "total_stock": stock, "per_user_limit": limit,
        "start_time": iso(start), "end_time": iso(start + dt.timedelta(seconds=length_s)), "stock_shards": shards})


async def purchase(client, sale_id: int, headers: dict[str, str], address_id: int, method: str = "alipay"):
    r = await client.post(f"/api/seckill/{sale_id}/purchase", headers=headers,
                          json={"address_id": address_id, "payment_method": method})
    return r.status, await r.json()


async def count_orders(ctx: Context, sale_id: int, status: str | None = None) -> int:
    if status is None:
        return int(await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s", (sale_id,)))
    return int(await db.fetch_value(
        ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s AND status = %s", (sale_id, status)))


async def sold(ctx: Context, sale_id: int) -> int:
    return int(await db.fetch_value(ctx.db, "SELECT sold FROM flash_sales WHERE id = %s", (sale_id,)))


async def remaining(ctx: Context, sale_id: int) -> int | None:
    """The sale's stock in Redis, summed over its shards; None when (a shard of) it is missing."""
    shards = await seckill_state.shards_in_redis(ctx, sale_id) or 1
    return (await seckill_state.remaining_of(ctx, [(sale_id, shards)]))[sale_id]


async def shard_stocks(ctx: Context, sale_id: int, shards: int) -> list[int | None]:
    """Each shard's stock in Redis (None where missing)."""
    values = [await ctx.redis.get(ctx.keys.sale_stock(sale_id, shard)) for shard in range(shards)]
    return [None if v is None else int(v) for v in values]


# --- conditions to wait for (with tests.support.waiting.wait_until) -----------------------------

def followed(app, sale_id: int) -> bool:
    """The app's sale watcher has found the sale (rebuilt its state if lost) and started its consumers."""
    return sale_id in app[ENGINE].workers


async def consumers_reading(ctx: Context, sale_id: int, prefix: str) -> bool:
    """Some process's consumers named `prefix`... have read the sale's stream (seen from Redis alone)."""
    try:
        found = await ctx.redis.xinfo_consumers(ctx.keys.sale_stream(sale_id), ctx.keys.consumer_group())
    except ResponseError:  # no stream or no group yet
        return False
    return any(c["name"].startswith(prefix) for c in found)


async def rebuilt(ctx: Context, sale_id: int) -> bool:
    """The sale's Redis state is warm and no rebuild holds its lock any more."""
    return await seckill_state.is_warm(ctx, sale_id) and not await ctx.redis.exists(ctx.keys.sale_rebuild_lock(sale_id))


async def listed_sale_ids(client, state: str = "", max_pages: int = 100) -> list[int]:
    """Every sale id GET /api/seckill lists (of one state, or all), in its order, page after page:
    the run's other tests leave sales behind, so a sale may sit past the first page."""
    ids: list[int] = []
    for page in range(1, max_pages + 1):
        r = await client.get("/api/seckill", params={"per_page": "100", "page": str(page),
                                                     **({"state": state} if state else {})})
        assert r.status == 200, await r.text()
        data = (await r.json())["data"]
        ids += [item["id"] for item in data["items"]]
        if page >= data["pages"]:
            break
    return ids
