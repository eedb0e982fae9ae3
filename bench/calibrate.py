"""The drain's yardstick: how fast MariaDB here takes a bare multi-row INSERT into a copy of `orders`.

bare_insert() writes as many rows as the drain wrote, in batches of the consumers' batch size,
one multi-row INSERT and one transaction per batch, from one connection, into a scratch table
made with CREATE TABLE ... LIKE orders (same columns and indexes, no foreign keys), then drops it.
It does so REPEATS times (a fresh table each time) and reports the median rate, with all of them:
one pass takes about a second, and one fsync-bound second here varies by a quarter.
The drain's orders/s over this rate says how close the consumers come to what the database can do.
"""
from __future__ import annotations

import secrets
import statistics
import time

import asyncmy

from flashsale import db
from flashsale.settings import Settings

SCRATCH = "orders_bench_scratch"
REPEATS = 3
DROP_SCRATCH = f"DROP TABLE IF EXISTS {SCRATCH}"
CREATE_SCRATCH = f"CREATE TABLE {SCRATCH} LIKE orders"
SCRATCH_ROW = ("(%s, %s, %s, %s, %s, 1, %s, %s, 'alipay', 'pending', %s, %s, %s, %s, %s, %s, %s,"
               " UTC_TIMESTAMP(3) + INTERVAL 900 SECOND)")
INSERT_SCRATCH = f"""
INSERT INTO {SCRATCH} (order_number, user_id, goods_id, flash_sale_id, request_id, quantity, unit_price,
                       total_amount, payment_method, status, address_id, receiver_name, phone, province,
                       city, district, detail_address, pay_deadline)
VALUES {{rows}}"""


def _row(n: int, tag: str) -> tuple:
    return (f"CAL{tag}{n:09d}", n + 1, 1, 1, f"cal-{tag}-{n}", "9.90", "9.90", n + 1, f"Buyer {n}",
            f"139{n:08d}"[-11:], "Zhejiang", "Hangzhou", "Xihu", f"{n} Benchmark Road")


async def bare_insert(settings: Settings, rows: int, batch: int) -> dict | None:
    """Rows per second of the bare INSERTs (None when there is nothing to write)."""
    if rows <= 0 or batch <= 0:
        return None
    tag = secrets.token_hex(3)
    batches = []
    for start in range(0, rows, batch):
        chunk = [_row(n, tag) for n in range(start, min(rows, start + batch))]
        batches.append((INSERT_SCRATCH.format(rows=", ".join([SCRATCH_ROW] * len(chunk))),
                        [value for row in chunk for value in row]))
    conn = await asyncmy.connect(autocommit=True, **db.connect_kwargs(settings))
    passes = []
    try:
        async with conn.cursor() as cur:
            await cur.execute("SET SESSION sql_notes = 0")  # no "Unknown table" note for the first DROP
            for _ in range(REPEATS):
                await cur.execute(DROP_SCRATCH)
                await cur.execute(CREATE_SCRATCH)
                started = time.perf_counter()
                for sql, args in batches:
                    await cur.execute("BEGIN")
                    await cur.execute(sql, args)
                    await cur.execute("COMMIT")
                passes.append(time.perf_counter() - started)
            await cur.execute(DROP_SCRATCH)
    finally:
        await conn.ensure_closed()
    seconds = statistics.median(passes)
    return {"rows": rows, "batch": batch, "batches": len(batches), "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 1) if seconds > 0 else None,
            "passes_rows_per_s": [round(rows / s, 1) for s in passes if s > 0]}
