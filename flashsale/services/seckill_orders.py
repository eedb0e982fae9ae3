"""Flash-sale orders from the sale's stream: a batch written in one transaction, or given up.

Both are idempotent by request id (the unique key on orders.request_id), so an entry delivered
twice makes one order. An entry that can never become an order (its address is gone, or it
failed too many deliveries) is recorded in seckill_failures and dead-lettered: its unit goes
back to the sale.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from flashsale import db, outcomes
from flashsale.context import Context
from flashsale.services import stock_notices

# Batches of one sale take its row lock first: they and the dead-lettering of an entry then
# never decide about the same request at the same time.
LOCK_SALE_FOR_ORDERS = "SELECT sold FROM flash_sales WHERE id = %s FOR UPDATE"
# then the goods' row, before the inserts lock the buyers' rows (their foreign keys): the lock
# order of every write, flash_sales -> goods -> users -> addresses -> orders (see services/orders.py)
LOCK_GOODS_FOR_ORDERS = "SELECT id FROM goods WHERE id = %s FOR UPDATE"
# -> the delivery addresses of a batch, for the orders' snapshots
ADDRESSES_OF = """
SELECT id, user_id, receiver_name, phone, province, city, district, detail_address
  FROM addresses WHERE id IN ({marks})"""
# -> the order of each request of the batch: made now (its order_number is this attempt's) or by an
# earlier delivery (MariaDB returns the row found under the unique key unchanged)
INSERT_ORDERS = """
INSERT INTO orders (order_number, user_id, goods_id, flash_sale_id, request_id, quantity,
                    unit_price, total_amount, payment_method, status, address_id, receiver_name,
                    phone, province, city, district, detail_address, pay_deadline)
VALUES {rows}
    ON DUPLICATE KEY UPDATE request_id = orders.request_id
RETURNING id, request_id, order_number"""
ORDER_ROW = ("(%s, %s, %s, %s, %s, 1, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s,"
             " UTC_TIMESTAMP(3) + INTERVAL %s SECOND)")
ORDER_ROW_VALUES = ORDER_ROW.count("%s")
SLICE_ROWS = 100  # rows escaped between two turns of the event loop (about a millisecond)
ORDER_ROWS = {n: ", ".join([ORDER_ROW] * n) for n in range(1, SLICE_ROWS + 1)}
# -> the orders of these requests, made now or by an earlier delivery
ORDERS_OF_REQUESTS = "SELECT id, request_id, order_number FROM orders WHERE request_id IN ({marks})"
# -> {any_failed}: 1 when the sale has a recorded failure (ix_seckill_failures_sale), almost never
ANY_FAILURE = "SELECT EXISTS (SELECT 1 FROM seckill_failures WHERE flash_sale_id = %s) AS any_failed"
# Sales this process saw with a failure: their batches ask before they insert (a hint only,
# every batch asks under the lock; failures are never removed)
SALES_WITH_FAILURES: set[int] = set()
# -> the recorded failures of these requests
FAILURES_OF_REQUESTS = "SELECT request_id, reason FROM seckill_failures WHERE request_id IN ({marks})"
# the sale's sold count and its goods' sales moved by the orders this attempt made (both rows are
# locked already; the CHECK sold <= total_stock guards)
ADD_SOLD = """
UPDATE flash_sales f JOIN goods g ON g.id = f.goods_id
   SET f.sold = f.sold + %s, g.sales = g.sales + %s
 WHERE f.id = %s"""
# rowcount 1: recorded now; 0: an earlier delivery recorded it
INSERT_FAILURE = """
INSERT INTO seckill_failures (request_id, flash_sale_id, user_id, reason, detail)
VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE request_id = request_id"""
FAILURE_DETAILS = {
    "address_missing": "the delivery address was deleted before the order was written",
    "undeliverable": "the request failed too many deliveries",
}


@dataclass(frozen=True)
class Entry:
    entry_id: str
    request_id: str
    user_id: int
    address_id: int
    payment_method: str
    price: str
    home: int | None = None  # the buyer's home shard when take.lua admitted it on another one

    @classmethod
    def parse(cls, entry_id: str, fields: dict[str, str]) -> "Entry":
        home = fields.get("h")
        return cls(entry_id, fields["r"], int(fields["u"]), int(fields["a"]), fields["m"], fields["p"],
                   None if home is None else int(home))


@dataclass
class BatchOutcome:
    orders: dict[str, int]  # request id -> order id
    acked: list[str]  # entry ids that have their order
    failed: list[tuple[Entry, str]]  # entries that ended as an explicit failure, with the reason
    inserted: int


async def _settle(cur, sale: dict[str, Any], entries: list[Entry], new_failure: str,
                  found: dict[str, dict] | None = None, made: int = 0) -> BatchOutcome:
    """Inside a transaction holding the sale's lock: find each entry's order (`found` holds those
    the INSERT returned; `made` of them are new) or failure; record `new_failure` for entries that
    have neither."""
    found = dict(found or {})
    unknown = [e.request_id for e in entries if e.request_id not in found]
    if unknown:  # entries left out of the INSERT may still have an order from an earlier delivery
        await cur.execute(ORDERS_OF_REQUESTS.format(marks=", ".join(["%s"] * len(unknown))), unknown)
        found.update((r["request_id"], r) for r in await cur.fetchall())
    without_order = [e for e in entries if e.request_id not in found]
    failed: list[tuple[Entry, str]] = []
    if without_order:
        await cur.execute(FAILURES_OF_REQUESTS.format(marks=", ".join(["%s"] * len(without_order))),
                          [e.request_id for e in without_order])
        known = {r["request_id"]: r["reason"] for r in await cur.fetchall()}
        for e in without_order:
            reason = known.get(e.request_id)
            if reason is None:
                reason = new_failure
                await cur.execute(INSERT_FAILURE, (e.request_id, sale["id"], e.user_id, reason,
                                                   FAILURE_DETAILS.get(reason, "")))
            failed.append((e, reason))
    return BatchOutcome({rid: r["id"] for rid, r in found.items()},
                        [e.entry_id for e in entries if e.request_id in found], failed, made)


async def write_batch(ctx: Context, sale: dict[str, Any], entries: list[Entry]) -> BatchOutcome:
    """Write the orders of a batch in one transaction; idempotent by request id.

    An entry whose request already failed, or whose address is gone (or is not the buyer's),
    makes no order; _settle records the latter as a failure. The addresses are read before the
    sale's lock is taken (the lock serializes the batches of every consumer): one deleted meanwhile
    fails the INSERT on its foreign key, and the batch is then written entry by entry (consumers.py),
    where that entry finds no address."""
    address_ids = sorted({e.address_id for e in entries})
    addresses = {r["id"]: r for r in await db.fetch_all(
        ctx.db, ADDRESSES_OF.format(marks=", ".join(["%s"] * len(address_ids))), address_ids)}

    async def insert_of(cur, numbers: dict[str, str], skip: set[str]) -> str | None:
        """The batch's INSERT with its values in (escaped by the driver), or None: no row to write.

        Built in slices, giving the event loop a turn between them: the other consumer's batch
        may hold the sale's lock meanwhile, and its answer from MySQL must not wait for this."""
        rows: list[str] = []
        args: list[Any] = []
        for e in entries:
            ad = addresses.get(e.address_id)
            if e.request_id in skip or ad is None or ad["user_id"] != e.user_id:
                continue
            args += [numbers[e.request_id], e.user_id, sale["goods_id"], sale["id"], e.request_id, e.price,
                     e.price, e.payment_method, ad["id"], ad["receiver_name"], ad["phone"], ad["province"],
                     ad["city"], ad["district"], ad["detail_address"], ctx.settings.pay_window_s]
            if len(args) == SLICE_ROWS * ORDER_ROW_VALUES:
                rows.append(cur.mogrify(ORDER_ROWS[SLICE_ROWS], args))
                args = []
                await asyncio.sleep(0)
        if args:
            rows.append(cur.mogrify(ORDER_ROWS[len(args) // ORDER_ROW_VALUES], args))
        return INSERT_ORDERS.format(rows=", ".join(rows)) if rows else None

    async def work(cur) -> BatchOutcome:
        # numbers made per attempt: after a commit whose answer was lost, the retry finds the
        # first attempt's orders under other numbers and counts them as earlier, not new
        numbers = dict(zip((e.request_id for e in entries), ctx.order_numbers.next_many(len(entries))))
        # the INSERT is built before the lock (most of a batch's Python work); under the lock go
        # BEGIN, the locks, the question whether the sale has any failure at all and (as a rule)
        # the orders, in one round trip; then the counts with COMMIT in one more
        insert = await insert_of(cur, numbers, set())
        lock = cur.mogrify(";".join((db.BEGIN, LOCK_SALE_FOR_ORDERS, LOCK_GOODS_FOR_ORDERS, ANY_FAILURE)),
                           [sale["id"], sale["goods_id"], sale["id"]])
        if insert is not None and sale["id"] not in SALES_WITH_FAILURES:
            results = await db.run_statements(cur, f"{lock};{insert}")
            if not results[3][1][0]["any_failed"]:
                return await finish(cur, numbers, results[4][1])
            # the sale has a failure (seen under its lock): nothing of this was kept
            SALES_WITH_FAILURES.add(sale["id"])
            await cur.execute(db.ROLLBACK)
        if (await db.run_statements(cur, lock))[3][1][0]["any_failed"]:
            # a request of the sale was given up; is one of this batch's among them?
            await cur.execute(FAILURES_OF_REQUESTS.format(marks=", ".join(["%s"] * len(entries))),
                              [e.request_id for e in entries])
            failed_before = {r["request_id"] for r in await cur.fetchall()}
            if failed_before:
                insert = await insert_of(cur, numbers, failed_before)
        rows: list[dict] = []
        if insert is not None:
            await cur.execute(insert)
            rows = list(await cur.fetchall())
        return await finish(cur, numbers, rows)

    async def finish(cur, numbers: dict[str, str], rows: list[dict]) -> BatchOutcome:
        """Settle the batch from the rows the INSERT returned, then the counts and COMMIT."""
        found = {r["request_id"]: r for r in rows}
        # made now: those under this attempt's number (an earlier delivery's order keeps its own)
        made = sum(1 for rid, r in found.items() if r["order_number"] == numbers[rid])
        outcome = await _settle(cur, sale, entries, "address_missing", found, made)
        counts = [cur.mogrify(ADD_SOLD, (made, made, sale["id"]))] if made else []
        await db.run_statements(cur, ";".join((*counts, db.COMMIT)))
        return outcome

    # idempotent by request id: a retry after a lost COMMIT answer makes no second order; the
    # transaction's BEGIN goes with the locks and its COMMIT with the counts
    return await db.run_transaction(ctx.db, work, idempotent=True, bounds_in_work=True)


async def give_up(ctx: Context, sale: dict[str, Any], entries: list[Entry], reason: str) -> BatchOutcome:
    """Record entries that failed too often as failures, unless an order exists for them already."""
    async def work(cur) -> BatchOutcome:
        await cur.execute(LOCK_SALE_FOR_ORDERS, (sale["id"],))
        return await _settle(cur, sale, entries, reason)

    # idempotent: INSERT_FAILURE is keyed by request id, and an existing failure is only read
    return await db.run_transaction(ctx.db, work, idempotent=True)


async def dead_letter(ctx: Context, sale_id: int, entry: Entry, reason: str, deliveries: int,
                      shard: int = 0) -> bool:
    """Acknowledge a failed entry of a shard's stream and give its unit back (once) to that
    shard's stock; the buyer learns `failed: reason`. An entry admitted away from the buyer's
    home shard gets its slot and result there (after the stream's shard: a crash in between
    keeps the slot held, the safe side of the per-user limit). True when this call gave the unit
    back (and told every process that stock returned)."""
    k = ctx.keys
    away = entry.home is not None and entry.home != shard
    given_back = await ctx.scripts.fail(
        keys=[k.sale_stock(sale_id, shard), k.sale_buyers(sale_id, shard), k.sale_released(sale_id, shard),
              k.sale_results(sale_id, shard), k.sale_dead(sale_id, shard), k.sale_stream(sale_id, shard)],
        args=[k.consumer_group(), entry.entry_id, entry.user_id, entry.request_id, reason, deliveries,
              "0" if away else "1"])
    if away:
        await ctx.scripts.unhold(
            keys=[k.sale_buyers(sale_id, entry.home), k.sale_results(sale_id, entry.home),
                  k.sale_stats(sale_id, entry.home)],
            args=[entry.user_id, 1 if given_back else 0, entry.request_id, f"failed:{reason}", ""])
    await outcomes.publish(ctx, sale_id, {entry.request_id: f"failed:{reason}"})
    if given_back:
        await stock_notices.publish(ctx, sale_id)
    return bool(given_back)
