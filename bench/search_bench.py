"""Search timing at shop size: 100,000 goods in a scratch database, the n-gram index built by the
migration's backfill, then each query run N times through search.find_goods; prints p50/p99.

    .venv/bin/python -m bench.search_bench [--goods 100000] [--runs 50]

The scratch database (`flashsale_search_bench` unless --db) is dropped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import types
from decimal import Decimal

import asyncmy

from flashsale import db
from flashsale.db import connect_kwargs
from flashsale.migrate import migrate
from flashsale.services import catalog, search
from flashsale.settings import Settings

INSERT_BATCH = 2000
CATEGORIES = ["Phones", "Laptops", "Headphones & Audio", "Cameras", "Home Appliances", "Kitchen",
              "Sports & Outdoors", "Toys", "Books", "Beauty", "手机", "电脑办公", "家用电器", "运动户外",
              "美妆护肤", "食品饮料", "母婴用品", "服装鞋帽", "图书音像", "汽车用品"]
BRANDS = ["Aurora", "Nimbus", "Pebble", "Hush", "Zephyr", "Orion", "Lumen", "Vertex", "Kestrel",
          "Café Noir", "华为", "小米", "联想", "海尔", "美的", "李宁"]
ADJECTIVES = ["Wireless", "Smart", "Ultra", "Mini", "Pro", "Portable", "Classic", "Max", "Lite",
              "Noise-cancelling", "Waterproof", "Foldable", "4K", "5G", "Ergonomic", "Crème"]
NOUNS = ["Smartphone", "Headphones", "Earbuds", "Laptop", "Tablet", "Speaker", "Camera", "Kettle",
         "Blender", "Backpack", "Running Shoes", "Smartwatch", "Keyboard", "Monitor", "Phone Case",
         "Power Bank", "Charger", "Desk Lamp", "Vacuum Cleaner", "Air Fryer"]
CHINESE = ["无线蓝牙耳机", "智能手机", "轻薄笔记本电脑", "降噪耳机", "电热水壶", "破壁料理机", "双肩背包",
           "跑步鞋", "智能手表", "机械键盘", "充电宝", "护眼台灯", "扫地机器人", "空气炸锅", "保温杯"]
INSERT_CATEGORY = "INSERT INTO categories (name, description) VALUES (%s, '')"
INSERT_GOODS = """
INSERT INTO goods (category_id, name, description, price, stock, sales, brand, model) VALUES {rows}"""
QUERIES = [
    # (label, q, category index or None, sort)
    ("partial word", "phone", None, "sales"),
    ("word inside a word", "artwat", None, "sales"),
    ("two words", "wireless earbuds", None, "sales"),
    ("rare pair", "zephyr kettle", None, "sales"),
    ("short word start", "4k", None, "sales"),
    ("one letter", "b", None, "sales"),
    ("Chinese", "蓝牙耳机", None, "sales"),
    ("Chinese, one char", "机", None, "sales"),
    ("category name", "家用电器", None, "sales"),
    ("accents folded", "creme", None, "sales"),
    ("with category", "phone", 0, "sales"),
    ("sort price", "phone", None, "price"),
    ("sort new", "phone", None, "new"),
    ("page 50", "phone", None, "sales:page50"),
    ("no match", "xylophonezz", None, "sales"),
]


def goods_rows(count: int, category_ids: list[int], seed: int = 42) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        brand = rng.choice(BRANDS)
        noun = rng.choice(NOUNS)
        name = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
        if rng.random() < 0.5:
            name += f" {rng.choice(CHINESE)}"
        name += f" {rng.randint(1, 999)}"
        rows.append((rng.choice(category_ids), name, "", Decimal(rng.randint(100, 999_999)) / 100,
                     rng.randint(0, 5000), int(rng.paretovariate(1.2) * 10), brand, f"M{n % 997}"))
    return rows


async def fill(settings: Settings, goods: int) -> tuple[list[int], float, float]:
    """Categories and goods in bulk, then the index; returns (category ids, fill s, index s)."""
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings))
    try:
        async with conn.cursor() as cur:
            category_ids = []
            for name in CATEGORIES:
                await cur.execute(INSERT_CATEGORY, (name,))
                category_ids.append(cur.lastrowid)
            started = time.perf_counter()
            rows = goods_rows(goods, category_ids)
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start:start + INSERT_BATCH]
                sql = INSERT_GOODS.format(rows=", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch)))
                await cur.execute(sql, [v for row in batch for v in row])
            filled = time.perf_counter() - started
            started = time.perf_counter()
            indexed = await search.backfill(conn)  # what `run.py migrate` runs for 0003
            assert indexed == goods
            index_s = time.perf_counter() - started
            await cur.execute("ANALYZE TABLE goods, goods_search")
            await cur.fetchall()
            return category_ids, filled, index_s
    finally:
        await conn.ensure_closed()


async def drop(settings: Settings) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
    finally:
        await conn.ensure_closed()


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def time_queries(settings: Settings, category_ids: list[int], runs: int) -> None:
    pool = await db.create_pool(settings)
    ctx = types.SimpleNamespace(db=pool)  # find_goods needs only the pool
    try:
        print(f"{'query':<20} {'q':<18} {'matches':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for label, q, category, sort in QUERIES:
            sort, _, page = sort.partition(":page")
            order_by = catalog.ORDER_BY[(sort, catalog.DEFAULT_ORDER[sort])]
            category_id = category_ids[category] if category is not None else None
            samples, total = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                _, total = await search.find_goods(
                    ctx, q, columns=catalog.SUMMARY_COLUMNS, order_by=order_by,
                    relevance_first=sort == "sales", category_id=category_id,
                    page=int(page or 1), per_page=20)
                samples.append((time.perf_counter() - started) * 1000)
            print(f"{label:<20} {q:<18} {total:>8} {statistics.median(samples):>8.1f} "
                  f"{percentile(samples, 99):>8.1f}")
    finally:
        await db.close_pool(pool)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goods", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", default="flashsale_search_bench")
    args = parser.parse_args()
    settings = Settings.from_env(db_name=args.db)
    await drop(settings)
    try:
        await migrate(settings)
        category_ids, fill_s, index_s = await fill(settings, args.goods)
        conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings))
        async with conn.cursor() as cur:
            await cur.execute("SELECT COUNT(*) FROM goods_search")
            grams = (await cur.fetchone())[0]
        await conn.ensure_closed()
        print(f"{args.goods} goods inserted in {fill_s:.1f} s; index built in {index_s:.1f} s "
              f"({grams} rows, {grams / args.goods:.0f} per goods); {args.runs} runs per query\n")
        await time_queries(settings, category_ids, args.runs)
    finally:
        await drop(settings)


if __name__ == "__main__":
    asyncio.run(main())
