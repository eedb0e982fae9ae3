"""Bench preparation: a fresh database and key space, buyers with addresses in bulk, goods, the sale.

`python bench/prepare.py` makes the database part on its own (BENCH_* knobs as for run_bench.py)
and prints what it made; run_bench.py calls prepare() and, after the logins, schedule_sale().
"""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

if __package__ in (None, ""):  # run as `python bench/prepare.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncmy  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from redis.asyncio.cluster import RedisCluster  # noqa: E402

from bench.config import BenchConfig  # noqa: E402
from flashsale import db  # noqa: E402
from flashsale.context import open_context  # noqa: E402
from flashsale.migrate import migrate  # noqa: E402
from flashsale.passwords import Cost, hash_password  # noqa: E402
from flashsale.settings import Settings  # noqa: E402

log = logging.getLogger("bench.prepare")

VALID_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
BATCH_ROWS = 2000  # rows per multi-row INSERT: ~200 KB of SQL, well under max_allowed_packet

INSERT_CATEGORY = "INSERT INTO categories (name, description) VALUES (%s, %s)"
INSERT_GOODS = """
INSERT INTO goods (category_id, name, description, price, original_price, stock, brand, model)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""
USER_ROW = "(%s, %s)"
INSERT_USERS = "INSERT INTO users (username, password_hash) VALUES {rows}"
ADDRESS_ROW = "(%s, %s, %s, %s, %s, %s, %s, 1)"
INSERT_ADDRESSES = """
INSERT INTO addresses (user_id, receiver_name, phone, province, city, district, detail_address, is_default)
VALUES {rows}"""
# -> (id, username) of the buyers, in id order (the bench database holds no one else)
BUYERS = "SELECT id, username FROM users ORDER BY id"
# -> (id, user_id) of the buyers' addresses
BUYER_ADDRESSES = "SELECT id, user_id FROM addresses ORDER BY id"


@dataclass
class Prepared:
    goods_id: int
    buyers: int
    accounts_file: Path
    seconds: float
    password: str  # every bench buyer's, made for this run


def buyer_name(index: int) -> str:
    return f"buyer{index:07d}"


async def recreate_database(settings: Settings) -> None:
    if not VALID_DB_NAME.match(settings.db_name):
        raise ValueError(f"bad database name {settings.db_name!r}")
    conn = await asyncmy.connect(autocommit=True, **db.connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            # a schema name cannot be a parameter; checked against VALID_DB_NAME above
            await cur.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
    finally:
        await conn.ensure_closed()
    await migrate(settings)


async def drop_database(settings: Settings) -> None:
    if not VALID_DB_NAME.match(settings.db_name):
        raise ValueError(f"bad database name {settings.db_name!r}")
    conn = await asyncmy.connect(autocommit=True, **db.connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
    finally:
        await conn.ensure_closed()


async def clear_keys(settings: Settings) -> int:
    """Delete every key under the bench prefix (never the whole database); returns how many.

    On a Redis Cluster every master is scanned on its own (SCAN sees one node's keys), and keys
    are unlinked one per command: two keys of one node may still sit in different slots."""
    if not settings.redis_prefix:
        raise ValueError("refusing to clear Redis without a key prefix")
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", settings.redis_prefix) + "*"
    if not settings.redis_cluster:
        return await _clear_node(settings.redis_url, pattern, one_slot=True)
    deleted = 0
    for url in await cluster_master_urls(settings.redis_url):
        deleted += await _clear_node(url, pattern, one_slot=False)
    return deleted


async def cluster_master_urls(url: str) -> list[str]:
    """A URL per master of the cluster that `url` names a node of (same scheme and credentials)."""
    cluster = RedisCluster.from_url(url)
    try:
        await cluster.initialize()
        masters = [(node.host, node.port) for node in cluster.get_primaries()]
    finally:
        await cluster.aclose()
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return [urlunsplit(parts._replace(netloc=(userinfo + "@" if userinfo else "") + f"{host}:{port}"))
            for host, port in masters]


async def _clear_node(url: str, pattern: str, *, one_slot: bool) -> int:
    redis = Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []

        async def flush() -> int:
            if one_slot:
                return await redis.unlink(*batch)
            async with redis.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.unlink(key)
                return sum(await pipe.execute())

        async for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await flush()
                batch.clear()
        if batch:
            deleted += await flush()
    finally:
        await redis.aclose()
    return deleted


async def insert_many(pool, sql: str, row_sql: str, rows: list[tuple]) -> None:
    """Multi-row INSERTs of BATCH_ROWS rows, each batch its own short transaction."""
    for start in range(0, len(rows), BATCH_ROWS):
        chunk = rows[start:start + BATCH_ROWS]
        args = [value for row in chunk for value in row]
        async with db.transaction(pool) as cur:
            await cur.execute(sql.format(rows=", ".join([row_sql] * len(chunk))), args)


async def fill(settings: Settings, buyers: int, stock: int, accounts_file: Path, password: str) -> int:
    """Goods and N buyers, each with one default address; writes username,user_id,address_id."""
    password_hash = hash_password(password, Cost(settings.scrypt_n, settings.scrypt_r, settings.scrypt_p))
    async with open_context(settings.replace(db_pool_min=1, db_pool_max=4)) as ctx:
        async with db.transaction(ctx.db) as cur:
            await cur.execute(INSERT_CATEGORY, ("Bench", "Goods of the flash-sale benchmark"))
            category_id = cur.lastrowid
            await cur.execute(INSERT_GOODS, (category_id, "Bench Phone X", "The phone everyone wants at 09:00.",
                                             Decimal("999.00"), Decimal("1299.00"), stock, "Bench", "X"))
            goods_id = cur.lastrowid
        # one hash for all: the same password and cost, so verifying it is the same work per login
        await insert_many(ctx.db, INSERT_USERS, USER_ROW,
                          [(buyer_name(i), password_hash) for i in range(1, buyers + 1)])
        users = await db.fetch_all(ctx.db, BUYERS)
        await insert_many(ctx.db, INSERT_ADDRESSES, ADDRESS_ROW, [
            (u["id"], f"Buyer {u['id']}", f"139{u['id']:08d}"[-11:], "Zhejiang", "Hangzhou", "Xihu",
             f"{u['id']} Benchmark Road") for u in users])
        address_of = {r["user_id"]: r["id"] for r in await db.fetch_all(ctx.db, BUYER_ADDRESSES)}
    accounts_file.parent.mkdir(parents=True, exist_ok=True)
    with open(accounts_file, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["username", "user_id", "address_id"])
        for u in users:
            writer.writerow([u["username"], u["id"], address_of[u["id"]]])
    return goods_id


async def prepare(settings: Settings, buyers: int, stock: int, accounts_file: Path) -> Prepared:
    started = time.monotonic()
    await recreate_database(settings)
    await clear_keys(settings)
    password = secrets.token_urlsafe(12)
    goods_id = await fill(settings, buyers, stock, accounts_file, password)
    return Prepared(goods_id, buyers, accounts_file, time.monotonic() - started, password)


async def schedule_sale(settings: Settings, goods_id: int, stock: int, per_user_limit: int,
                        start_at: dt.datetime, length_s: int, stock_shards: int = 1) -> dict:
    """Create the sale through the engine (MySQL row, warm Redis state); returns the contract's sale."""
    from flashsale.services import seckill

    body = {
        "goods_id": goods_id, "price": "9.90", "total_stock": stock, "per_user_limit": per_user_limit,
        "start_time": start_at.isoformat().replace("+00:00", "Z"),
        "end_time": (start_at + dt.timedelta(seconds=length_s)).isoformat().replace("+00:00", "Z"),
        "stock_shards": stock_shards,
    }
    async with open_context(settings.replace(db_pool_min=1, db_pool_max=2)) as ctx:
        return await seckill.create_sale(ctx, body)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    config = BenchConfig.from_env()
    accounts = Path(config.results_dir) / "accounts.csv"
    done = asyncio.run(prepare(config.settings(), config.buyers, config.stock, accounts))
    print(json.dumps({"database": config.db_name, "redis_prefix": config.redis_prefix, "goods_id": done.goods_id,
                      "buyers": done.buyers, "accounts_file": str(done.accounts_file),
                      "seconds": round(done.seconds, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
