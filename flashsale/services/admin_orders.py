"""Orders for admins: search and filters, the shop's order figures, status changes, remarks, CSV export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from asyncmy.errors import IntegrityError

from flashsale import db
from flashsale.context import Context
from flashsale.errors import BadStatus, NotFound, Validation
from flashsale.jsonio import money, parse_time, utcnow
from flashsale.services import orders
from flashsale.bodies import Body, Field
from flashsale.validate import Fields

MAX_QUERY_LEN = 64
MAX_PREFIX_USERS = 1000  # a search for a prefix that many users share shows the first ones' orders
MAX_REMARK = 1000
MAX_LOG_REMARK = 255  # order_status_log.remark
STATUS_BODY = Body(Field.choice("status", orders.STATUSES),
                   Field.text("remark", min_len=0, max_len=MAX_LOG_REMARK, required=False, default=""))
REMARK_BODY = Body(Field.text("content", max_len=MAX_REMARK))
EXPORT_BATCH = 500
# what an admin may move an order to, from each status; cancelling goes through orders.cancel_order
NEXT_STATUSES = {"pending": ("cancelled",), "paid": ("shipped", "cancelled"), "shipped": ("completed",)}
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ONE_MS = dt.timedelta(milliseconds=1)

ADMIN_ORDER_COLUMNS = orders.ORDER_COLUMNS + ", u.username, u.email AS user_email, u.phone AS user_phone"
# -> a page of orders with their goods and buyer, newest first. STRAIGHT_JOIN reads orders first,
# in primary-key order (or through the filter's index), else the optimizer may start from the small
# goods table and sort every order
LIST_ORDERS = f"""
SELECT {ADMIN_ORDER_COLUMNS}
  FROM orders o STRAIGHT_JOIN goods g ON g.id = o.goods_id STRAIGHT_JOIN users u ON u.id = o.user_id
 {{where}} ORDER BY o.id DESC LIMIT %s OFFSET %s"""
# -> the number of orders matching the same filters
COUNT_ORDERS = "SELECT COUNT(*) FROM orders o {where}"
# -> the next EXPORT_BATCH rows below an id (keyset paging: every batch is one short index read)
EXPORT_ORDERS = f"""
SELECT {ADMIN_ORDER_COLUMNS}
  FROM orders o STRAIGHT_JOIN goods g ON g.id = o.goods_id STRAIGHT_JOIN users u ON u.id = o.user_id
 {{where}} ORDER BY o.id DESC LIMIT %s"""
# the only WHERE fragments an order search is built from
BY_STATUS = "o.status = %s"
BY_NUMBER = "o.order_number LIKE %s"  # uq_orders_number range
# {users} is a list of %s: the buyers whose name starts with q (ix_orders_user), merged with the
# order-number range by an index_merge union
BY_NUMBER_OR_USERS = "(o.order_number LIKE %s OR o.user_id IN ({users}))"
CREATED_FROM = "o.created_at >= %s"  # ix_orders_created
CREATED_BEFORE = "o.created_at < %s"
BELOW_ID = "o.id < %s"
# -> (id) of the users whose name starts with a prefix, at most %s (a range of uq_users_username)
USERS_BY_PREFIX = "SELECT id FROM users WHERE username LIKE %s ORDER BY username LIMIT %s"
# -> one order (hidden by its owner or not) with its buyer, or None
ORDER_BY_ID = f"""
SELECT {ADMIN_ORDER_COLUMNS}
  FROM orders o JOIN goods g ON g.id = o.goods_id JOIN users u ON u.id = o.user_id WHERE o.id = %s"""
# -> the order's history after its creation (orders.creation_entry), oldest first, with the name of
# whoever made each change
ORDER_LOG = """
SELECT l.from_status, l.to_status, l.actor, l.actor_id, l.remark, l.created_at, u.username AS actor_name
  FROM order_status_log l LEFT JOIN users u ON u.id = l.actor_id
 WHERE l.order_id = %s ORDER BY l.id"""
# -> the admins' remarks on an order, oldest first (ix_order_remarks_order)
ORDER_REMARKS = """
SELECT r.id, r.admin_id, r.content, r.created_at, u.username AS admin_name
  FROM order_remarks r LEFT JOIN users u ON u.id = r.admin_id
 WHERE r.order_id = %s ORDER BY r.id"""
# -> one remark, or None
REMARK_BY_ID = """
SELECT r.id, r.admin_id, r.content, r.created_at, u.username AS admin_name
  FROM order_remarks r LEFT JOIN users u ON u.id = r.admin_id WHERE r.id = %s"""
# -> lastrowid; NO_REFERENCED_ROW when the order does not exist
INSERT_REMARK = "INSERT INTO order_remarks (order_id, admin_id, content) VALUES (%s, %s, %s)"
# -> 1 when the order exists
ORDER_EXISTS = "SELECT 1 FROM orders WHERE id = %s"
# 1: shipped by this call; 0: missing, not paid, or lost a race
SHIP_ORDER = """
UPDATE orders SET status = 'shipped', shipped_at = UTC_TIMESTAMP(3) WHERE id = %s AND status = 'paid'"""
# 1: completed by this call; 0: missing, not shipped, or lost a race
COMPLETE_ORDER = """
UPDATE orders SET status = 'completed', completed_at = UTC_TIMESTAMP(3) WHERE id = %s AND status = 'shipped'"""
# -> {month_count, month_amount, today_count, today_amount}: orders created since the month began
# (a range of ix_orders_created); amounts leave cancelled orders out
PERIOD_FIGURES = """
SELECT COUNT(*) AS month_count,
       COALESCE(SUM(IF(status <> 'cancelled', total_amount, 0)), 0) AS month_amount,
       COALESCE(SUM(created_at >= %s), 0) AS today_count,
       COALESCE(SUM(IF(created_at >= %s AND status <> 'cancelled', total_amount, 0)), 0) AS today_amount
  FROM orders FORCE INDEX (ix_orders_created) WHERE created_at >= %s"""
# -> {status, n} for the statuses that need an admin's eye (ranges of ix_orders_status_deadline)
OPEN_COUNTS = """
SELECT status, COUNT(*) AS n FROM orders WHERE status IN ('pending', 'paid', 'cancelled') GROUP BY status"""

TRANSITIONS = {"shipped": ("paid", SHIP_ORDER), "completed": ("shipped", COMPLETE_ORDER)}
CSV_HEADER = ("Order number", "Created (UTC)", "User", "Goods", "Quantity", "Unit price", "Total",
              "Status", "Payment method", "Receiver", "Phone", "Address", "Paid (UTC)",
              "Shipped (UTC)", "Completed (UTC)", "Cancelled (UTC)")
BOM = "\ufeff"  # lets Excel read the file as UTF-8 (Chinese names and addresses)
# a cell starting with one of these is a formula to a spreadsheet: text typed by shoppers
# (names, addresses) must not run when an admin opens the file
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- filters ------------------------------------------------------------------------------------

def clean_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """`status`, `q`, `from` and `to` of an order search; raises one Validation with every error.

    `from`/`to` take a date (whole UTC days, `to` included) or an ISO time with any offset.
    """
    fields = Fields(dict(query))
    try:
        status = orders.clean_status(query.get("status"))
    except Validation as exc:
        fields.errors.update(exc.errors)
        status = ""
    created_from = _bound(fields, query, "from", end=False)
    created_before = _bound(fields, query, "to", end=True)
    if created_from and created_before and created_before <= created_from:
        fields.error("to", "Must be after the start.")
    fields.check()
    q = " ".join(query.get("q", "").split())[:MAX_QUERY_LEN]
    return {"status": status, "q": q, "from": created_from, "before": created_before}


def _bound(fields: Fields, query: Mapping[str, str], name: str, *, end: bool) -> dt.datetime | None:
    """A lower bound (from) or an exclusive upper bound (to) of created_at, or None."""
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    value = parse_time(raw)
    if value is None:
        fields.error(name, "Give a date (2026-11-24) or an ISO time (2026-11-24T12:00:00Z).")
        return None
    if end:
        # a date means the whole day; a time is included (DATETIME(3): the next millisecond is after it)
        return value + (dt.timedelta(days=1) if DATE_ONLY.match(raw) else ONE_MS)
    return value


def filter_query(filters: dict[str, Any], raw: Mapping[str, str]) -> dict[str, str]:
    """The query-string form of clean filters, for links (pages, export) that keep them."""
    out = {"status": filters["status"], "q": filters["q"],
           "from": (raw.get("from") or "").strip(), "to": (raw.get("to") or "").strip()}
    return {k: v for k, v in out.items() if v}


def _prefix(q: str) -> str:
    """A LIKE pattern for values starting with q, wildcards in q taken literally."""
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _users_named(ctx: Context, filters: dict[str, Any]) -> list[int]:
    """The ids of the users whose name starts with q: q then finds their orders too."""
    if not filters["q"]:
        return []
    rows = await db.fetch_all(ctx.db, USERS_BY_PREFIX, (_prefix(filters["q"]), MAX_PREFIX_USERS))
    return [r["id"] for r in rows]


def _where(filters: dict[str, Any], user_ids: list[int], below_id: int | None = None,
           ) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    args: list[Any] = []
    if filters["status"]:
        conditions.append(BY_STATUS)
        args.append(filters["status"])
    if filters["q"]:
        like = _prefix(filters["q"])
        if not user_ids:
            conditions.append(BY_NUMBER)
            args.append(like)
        else:
            conditions.append(BY_NUMBER_OR_USERS.format(users=", ".join(["%s"] * len(user_ids))))
            args += [like, *user_ids]
    if filters["from"] is not None:
        conditions.append(CREATED_FROM)
        args.append(filters["from"])
    if filters["before"] is not None:
        conditions.append(CREATED_BEFORE)
        args.append(filters["before"])
    if below_id is not None:
        conditions.append(BELOW_ID)
        args.append(below_id)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), args


# --- reads --------------------------------------------------------------------------------------

def admin_order_json(row: dict[str, Any]) -> dict[str, Any]:
    """The contract's `order` with its buyer and whether the buyer hid it."""
    return {**orders.order_json(row),
            "user": {"id": row["user_id"], "username": row["username"], "email": row["user_email"],
                     "phone": row["user_phone"]},
            "deleted_by_user": bool(row["deleted_by_user"])}


def remark_json(row: dict[str, Any]) -> dict[str, Any]:
    admin = {"id": row["admin_id"], "username": row["admin_name"]} if row["admin_id"] is not None else None
    return {"id": row["id"], "content": row["content"], "admin": admin, "created_at": row["created_at"]}


def log_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**orders.log_json(row), "actor_id": row["actor_id"], "actor_name": row["actor_name"]}


async def list_orders(ctx: Context, filters: dict[str, Any], page: int,
                      per_page: int) -> tuple[list[dict[str, Any]], int]:
    """A page of every buyer's orders (hidden ones too), newest first, and the total that match."""
    where, args = _where(filters, await _users_named(ctx, filters))
    rows = await db.fetch_all(ctx.db, LIST_ORDERS.format(where=where), (*args, per_page, (page - 1) * per_page))
    total = await db.fetch_value(ctx.db, COUNT_ORDERS.format(where=where), args)
    return [admin_order_json(r) for r in rows], int(total)


async def order_stats(ctx: Context, now: dt.datetime | None = None) -> dict[str, Any]:
    """Orders and amounts of today and this month (UTC), and how many wait to be paid, shipped, or
    were cancelled. Amounts leave cancelled orders out."""
    now = now or utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    figures = await db.fetch_one(ctx.db, PERIOD_FIGURES, (today, today, month))
    counts = {r["status"]: int(r["n"]) for r in await db.fetch_all(ctx.db, OPEN_COUNTS)}
    return {
        "today_count": int(figures["today_count"]), "today_amount": money(figures["today_amount"]),
        "month_count": int(figures["month_count"]), "month_amount": money(figures["month_amount"]),
        "pending_count": counts.get("pending", 0), "to_ship_count": counts.get("paid", 0),
        "cancelled_count": counts.get("cancelled", 0),
    }


async def get_order(ctx: Context, order_id: int) -> dict[str, Any]:
    """One order with its buyer, history and remarks, whether or not the buyer hid it."""
    row = await db.fetch_one(ctx.db, ORDER_BY_ID, (order_id,))
    if row is None:
        raise NotFound("No such order.")
    log = [{**orders.creation_entry(row), "actor_name": row["username"]},
           *await db.fetch_all(ctx.db, ORDER_LOG, (order_id,))]
    remarks = await db.fetch_all(ctx.db, ORDER_REMARKS, (order_id,))
    return {**admin_order_json(row), "log": [log_json(r) for r in log],
            "remarks": [remark_json(r) for r in remarks],
            "next_statuses": list(NEXT_STATUSES.get(row["status"], ()))}


# --- changes ------------------------------------------------------------------------------------

async def set_status(ctx: Context, admin_id: int, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Paid to shipped, shipped to completed, pending or paid to cancelled (units returned once);
    each change is one conditional UPDATE with its log row. Anything else is bad_status."""
    clean = STATUS_BODY.clean(body)
    status, remark = clean["status"], clean["remark"]
    if status == "cancelled":
        await orders.cancel_order(ctx, order_id, owner_id=None, actor="admin", actor_id=admin_id, remark=remark)
        return await get_order(ctx, order_id)
    if status not in TRANSITIONS:
        if await db.fetch_value(ctx.db, ORDER_EXISTS, (order_id,)) is None:
            raise NotFound("No such order.")
        raise BadStatus(f"An order cannot be moved to {status} by hand.")
    from_status, update = TRANSITIONS[status]
    async def work(cur) -> None:
        if await cur.execute(update, (order_id,)) != 1:
            await cur.execute(ORDER_EXISTS, (order_id,))
            if await cur.fetchone() is None:
                raise NotFound("No such order.")
            raise BadStatus(f"Only a {from_status} order can become {status}.")
        await cur.execute(orders.INSERT_LOG, (order_id, from_status, status, admin_id, "admin", remark))

    await db.run_transaction(ctx.db, work)
    return await get_order(ctx, order_id)


async def add_remark(ctx: Context, admin_id: int, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """An admin's note on an order (the buyer never sees it)."""
    content = REMARK_BODY.clean(body)["content"]
    try:
        async def work(cur) -> int:
            await cur.execute(INSERT_REMARK, (order_id, admin_id, content))
            return cur.lastrowid

        remark_id = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.NO_REFERENCED_ROW:  # fk_order_remarks_order: no such order
            raise NotFound("No such order.") from None
        raise
    return remark_json(await db.fetch_one(ctx.db, REMARK_BY_ID, (remark_id,)))


# --- CSV export ---------------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def csv_row(row: dict[str, Any]) -> tuple[Any, ...]:
    address = " ".join(p for p in (row["province"], row["city"], row["district"], row["detail_address"]) if p)
    return (row["order_number"], _time(row["created_at"]), _cell(row["username"]), _cell(row["goods_name"]),
            row["quantity"], money(row["unit_price"]), money(row["total_amount"]), row["status"],
            row["payment_method"], _cell(row["receiver_name"]), _cell(row["phone"]), _cell(address),
            _time(row["paid_at"]), _time(row["shipped_at"]), _time(row["completed_at"]),
            _time(row["cancelled_at"]))


async def export_csv(ctx: Context, filters: dict[str, Any], batch: int = EXPORT_BATCH) -> AsyncIterator[bytes]:
    """The matching orders as UTF-8 CSV with a BOM, newest first, one chunk per batch of rows read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # QUOTE_MINIMAL: commas, quotes and line breaks are quoted; \r\n rows
    buffer.write(BOM)
    writer.writerow(CSV_HEADER)
    user_ids = await _users_named(ctx, filters)
    below_id = None
    while True:
        where, args = _where(filters, user_ids, below_id)
        rows = await db.fetch_all(ctx.db, EXPORT_ORDERS.format(where=where), (*args, batch))
        for row in rows:
            writer.writerow(csv_row(row))
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < batch:
            return
        below_id = rows[-1]["id"]
