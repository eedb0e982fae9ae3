"""Helpers for the flash-sale tests: bulk buyers, session cookies, sales, waiting for the drain."""
from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from typing import Any

from flashsale import db
from flashsale.sessions import SESSION_COOKIE, SESSIONS
from flashsale.context import Context
from flashsale.services import seckill

from conftest import unique

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


def session_cookie(app, user_id: int, epoch: int = 0) -> tuple[dict[str, str], str]:
    """(headers, csrf token) of a logged-in session for user_id, as login would make it."""
    csrf = secrets.token_urlsafe(16)
    data = {"created": int(time.time()), "session": {"uid": user_id, "name": f"user{user_id}", "ep": epoch,
                                                     "csrf": csrf, "iat": int(time.time())}}
    token = app[SESSIONS].seal(data)
    return {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": csrf}, csrf


async def make_sale(ctx: Context, factory, *, stock: int = 10, limit: int = 1, start_in_s: float = -1,
                    length_s: float = 120, price: str = "9.90") -> dict[str, Any]:
    goods_id = await factory.goods(stock=1000)
    start = now() + dt.timedelta(seconds=start_in_s)
    return await seckill.create_sale(ctx, {
        "goods_id": goods_id, "price": price, "total_stock": stock, "per_user_limit": limit,
        "start_time": iso(start), "end_time": iso(start + dt.timedelta(seconds=length_s))})


async def purchase(client, sale_id: int, headers: dict[str, str], address_id: int, method: str = "alipay"):
    r = await client.post(f"/api/seckill/{sale_id}/purchase", headers=headers,
                          json={"address_id": address_id, "payment_method": method})
    return r.status, await r.json()


async def wait_for(predicate, timeout_s: float = 20.0, interval_s: float = 0.1):
    """Poll an async predicate until it returns a truthy value; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value {value!r})")
        await asyncio.sleep(interval_s)


async def count_orders(ctx: Context, sale_id: int, status: str | None = None) -> int:
    if status is None:
        return int(await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s", (sale_id,)))
    return int(await db.fetch_value(
        ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s AND status = %s", (sale_id, status)))


async def sold(ctx: Context, sale_id: int) -> int:
    return int(await db.fetch_value(ctx.db, "SELECT sold FROM flash_sales WHERE id = %s", (sale_id,)))


async def remaining(ctx: Context, sale_id: int) -> int | None:
    value = await ctx.redis.get(ctx.keys.sale_stock(sale_id))
    return None if value is None else int(value)
