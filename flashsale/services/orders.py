"""Ordinary orders and the life cycle every order shares: place, pay, cancel, confirm, hide."""
from __future__ import annotations

import logging
import secrets
from decimal import Decimal
from typing import Any

from asyncmy.errors import IntegrityError
from redis.exceptions import RedisError

from flashsale import db
from flashsale.context import Context
from flashsale.errors import BadStatus, Expired, NotFound, OutOfStock, TooManyPending, Validation
from flashsale.services import seckill, seckill_state
from flashsale.services.goods_photos import photo_url
from flashsale.services import addresses
from flashsale.bodies import Body, Field

log = logging.getLogger(__name__)

STATUSES = ("pending", "paid", "shipped", "completed", "cancelled")
PAYMENT_METHODS = frozenset({"alipay", "wechat", "card"})
MAX_QUANTITY = 99
MAX_ID = 2**63 - 1
MAX_TOTAL = Decimal("99999999.99")  # DECIMAL(10,2)
ORDER_BODY = Body(
    Field.integer("goods_id", 1, MAX_ID),
    Field.integer("quantity", 1, MAX_QUANTITY),
    Field.integer("address_id", 1, MAX_ID, doc="One of the buyer's addresses."),
    Field.choice("payment_method", PAYMENT_METHODS),
)
ORDER_BODY_NO_ADDRESS = ORDER_BODY.without("address_id")  # checkout() with a new address
NEW_ADDRESS_PREFIX = "new_"  # checkout(): a new address's errors, as its form fields are named

ORDER_COLUMNS = """
o.id, o.order_number, o.user_id, o.status, o.goods_id, g.name AS goods_name, g.photo AS goods_photo,
o.flash_sale_id, o.quantity, o.unit_price, o.total_amount, o.payment_method,
o.receiver_name, o.phone, o.province, o.city, o.district, o.detail_address,
o.created_at, o.pay_deadline, o.paid_at, o.shipped_at, o.completed_at, o.cancelled_at,
o.transaction_id, o.deleted_by_user"""

# -> one order row (any owner), or None
ORDER_BY_ID = f"SELECT {ORDER_COLUMNS} FROM orders o JOIN goods g ON g.id = o.goods_id WHERE o.id = %s"
# -> the owner's order rows, newest first. ix_orders_user (user_id, deleted_by_user, status, id) is
# forced, orders first: the optimizer otherwise may start from a small goods table or a status index
OWN_ORDERS = f"""
SELECT {ORDER_COLUMNS} FROM orders o FORCE INDEX (ix_orders_user) STRAIGHT_JOIN goods g ON g.id = o.goods_id
 WHERE o.user_id = %s AND o.deleted_by_user = 0
 ORDER BY o.id DESC LIMIT %s OFFSET %s"""
OWN_ORDERS_BY_STATUS = f"""
SELECT {ORDER_COLUMNS} FROM orders o FORCE INDEX (ix_orders_user) STRAIGHT_JOIN goods g ON g.id = o.goods_id
 WHERE o.user_id = %s AND o.deleted_by_user = 0 AND o.status = %s
 ORDER BY o.id DESC LIMIT %s OFFSET %s"""
# -> how many orders the owner sees (all, or in one status)
COUNT_OWN = "SELECT COUNT(*) FROM orders FORCE INDEX (ix_orders_user) WHERE user_id = %s AND deleted_by_user = 0"
COUNT_OWN_BY_STATUS = """
SELECT COUNT(*) FROM orders FORCE INDEX (ix_orders_user) WHERE user_id = %s AND deleted_by_user = 0 AND status = %s"""
# -> the order's history after its creation (creation_entry), oldest first
ORDER_LOG = """
SELECT from_status, to_status, actor, actor_id, remark, created_at
  FROM order_status_log WHERE order_id = %s ORDER BY id"""
# -> the goods a checkout shows, or None
CHECKOUT_GOODS = "SELECT id, name, price, original_price, stock, photo FROM goods WHERE id = %s"
# -> the buyer's own address to snapshot, or None
BUYER_ADDRESS = """
SELECT id, receiver_name, phone, province, city, district, detail_address
  FROM addresses WHERE id = %s AND user_id = %s"""
# 1: the units are taken; 0: unknown goods or not enough stock
TAKE_STOCK = "UPDATE goods SET stock = stock - %s, sales = sales + %s WHERE id = %s AND stock >= %s"
# -> {price} of the goods whose row this transaction just locked, or None when it does not exist
GOODS_PRICE = "SELECT price FROM goods WHERE id = %s"
# Lock order of every write transaction, so that two of them never wait on each other in a
# circle: flash_sales -> goods -> users -> addresses -> orders. A placement takes the goods row
# (TAKE_STOCK) first, then the buyer's row; a cancel reads the order, locks its sale or goods row,
# then the order; the flash-sale batch writer locks the sale, then its goods, then inserts.
# -> the buyer's row, locked: serialises one user's placements (the pending count stays true)
LOCK_BUYER = "SELECT id FROM users WHERE id = %s FOR UPDATE"
# -> how many unpaid ordinary orders the buyer holds (ix_orders_user)
PENDING_ORDINARY = """
SELECT COUNT(*) AS n FROM orders
 WHERE user_id = %s AND status = 'pending' AND flash_sale_id IS NULL"""
# -> lastrowid; the pay window starts now
INSERT_ORDER = """
INSERT INTO orders (order_number, user_id, goods_id, quantity, unit_price, total_amount, payment_method,
                    status, address_id, receiver_name, phone, province, city, district, detail_address,
                    pay_deadline)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s,
        UTC_TIMESTAMP(3) + INTERVAL %s SECOND)"""
INSERT_LOG = """
INSERT INTO order_status_log (order_id, from_status, to_status, actor_id, actor, remark)
VALUES (%s, %s, %s, %s, %s, %s)"""
# -> {status, pay_deadline} of an order the owner sees, or None: tells 404 from 409 after a refused transition
OWN_ORDER_STATE = """
SELECT status, pay_deadline, pay_deadline < UTC_TIMESTAMP(3) AS expired
  FROM orders WHERE id = %s AND user_id = %s AND deleted_by_user = 0"""
# 1: paid by this call; 0: not theirs, not pending, past its pay window, or lost a race
PAY_ORDER = """
UPDATE orders SET status = 'paid', paid_at = UTC_TIMESTAMP(3), transaction_id = %s
 WHERE id = %s AND user_id = %s AND deleted_by_user = 0 AND status = 'pending'
   AND (pay_deadline IS NULL OR pay_deadline >= UTC_TIMESTAMP(3))"""
# 1: completed by this call; 0: not theirs, not shipped, or lost a race
CONFIRM_ORDER = """
UPDATE orders SET status = 'completed', completed_at = UTC_TIMESTAMP(3)
 WHERE id = %s AND user_id = %s AND deleted_by_user = 0 AND status = 'shipped'"""
# 1: hidden from its owner by this call; 0: not theirs, already hidden, or still open
HIDE_ORDER = """
UPDATE orders SET deleted_by_user = 1
 WHERE id = %s AND user_id = %s AND deleted_by_user = 0 AND status IN ('cancelled', 'completed')"""
# -> {status} of a row this transaction holds locked
STATUS_OF = "SELECT status FROM orders WHERE id = %s"
# -> what a cancel must lock first (read without a lock), or None
ORDER_TO_CANCEL = "SELECT goods_id, flash_sale_id FROM orders WHERE id = %s"
# the sale's or the goods' row, locked before the order (the lock order above)
LOCK_SALE_ROW = "SELECT id FROM flash_sales WHERE id = %s FOR UPDATE"
LOCK_GOODS_ROW = "SELECT id FROM goods WHERE id = %s FOR UPDATE"
# -> the order to cancel, locked so that two cancels queue and the second sees 'cancelled'
LOCK_ORDER = """
SELECT id, user_id, status, goods_id, flash_sale_id, quantity, request_id FROM orders WHERE id = %s FOR UPDATE"""
LOCK_OWN_ORDER = """
SELECT id, user_id, status, goods_id, flash_sale_id, quantity, request_id FROM orders
 WHERE id = %s AND user_id = %s AND deleted_by_user = 0 FOR UPDATE"""
# 1: cancelled by this call (only from the status the lock saw); 0: lost a race
CANCEL_ORDER = """
UPDATE orders SET status = 'cancelled', cancelled_at = UTC_TIMESTAMP(3)
 WHERE id = %s AND status = %s AND status IN ('pending', 'paid')"""
# 1: cancelled by the sweeper; 0: paid, cancelled or still inside its pay window
CANCEL_EXPIRED = """
UPDATE orders SET status = 'cancelled', cancelled_at = UTC_TIMESTAMP(3)
 WHERE id = %s AND status = 'pending' AND pay_deadline < UTC_TIMESTAMP(3)"""
# 1: an ordinary order's units are back on the shelf (sales never below zero)
RETURN_STOCK = "UPDATE goods SET stock = stock + %s, sales = GREATEST(sales, %s) - %s WHERE id = %s"
# 1: a flash-sale order's units are back in the sale (goods.stock is not the sale's stock)
RETURN_SALE_UNITS = "UPDATE flash_sales SET sold = GREATEST(sold, %s) - %s WHERE id = %s"
UNCOUNT_SALES = "UPDATE goods SET sales = GREATEST(sales, %s) - %s WHERE id = %s"
# -> ids of pending orders (ordinary and flash-sale) past their pay window (ix_orders_status_deadline)
EXPIRED_UNPAID = """
SELECT id FROM orders
 WHERE status = 'pending' AND pay_deadline < UTC_TIMESTAMP(3)
 ORDER BY pay_deadline LIMIT %s"""


def order_json(row: dict[str, Any]) -> dict[str, Any]:
    """The contract's `order` object."""
    return {
        "id": row["id"], "order_number": row["order_number"], "status": row["status"],
        "goods": {"id": row["goods_id"], "name": row["goods_name"], "photo_url": photo_url(row["goods_photo"])},
        "flash_sale_id": row["flash_sale_id"], "quantity": row["quantity"],
        "unit_price": row["unit_price"], "total_amount": row["total_amount"],
        "payment_method": row["payment_method"],
        "address": {
            "receiver_name": row["receiver_name"], "phone": row["phone"], "province": row["province"],
            "city": row["city"], "district": row["district"], "detail_address": row["detail_address"],
        },
        "created_at": row["created_at"], "pay_deadline": row["pay_deadline"], "paid_at": row["paid_at"],
        "shipped_at": row["shipped_at"], "completed_at": row["completed_at"],
        "cancelled_at": row["cancelled_at"], "transaction_id": row["transaction_id"],
    }


def log_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"from": row["from_status"], "to": row["to_status"], "at": row["created_at"],
            "by": row["actor"], "remark": row["remark"]}


def creation_entry(order: dict[str, Any]) -> dict[str, Any]:
    """The first entry of every order's log, its creation, read off the order row itself:
    order_status_log holds the changes after it, so that the flash-sale drain writes one row per
    order, not two, under the sale's lock."""
    return {"from_status": None, "to_status": "pending", "actor": "user", "actor_id": order["user_id"],
            "remark": "flash sale" if order["flash_sale_id"] is not None else "", "created_at": order["created_at"]}


def clean_order(body: dict[str, Any], *, need_address: bool = True) -> dict[str, Any]:
    """The order fields of a body, checked; raises Validation with every error."""
    if need_address:
        return ORDER_BODY.clean(body)
    return {**ORDER_BODY_NO_ADDRESS.clean(body), "address_id": None}


def clean_status(raw: str | None) -> str:
    """A list filter: '' (or 'all') for every status, else one of STATUSES."""
    if raw in (None, "", "all"):
        return ""
    if raw not in STATUSES:
        raise Validation({"status": "Must be one of: all, " + ", ".join(STATUSES) + "."})
    return raw


async def checkout_goods(ctx: Context, goods_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, CHECKOUT_GOODS, (goods_id,))
    if row is None:
        raise NotFound("No such goods.")
    return {**row, "photo_url": photo_url(row["photo"])}


async def place_order(ctx: Context, user_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Take the stock and write the order with its address snapshot and pay deadline, all in one
    transaction; a buyer holding settings.max_pending_orders unpaid orders is refused."""
    clean = clean_order(body)
    quantity = clean["quantity"]

    async def work(cur) -> dict[str, Any]:
        taken = await cur.execute(TAKE_STOCK, (quantity, quantity, clean["goods_id"], quantity))
        await cur.execute(GOODS_PRICE, (clean["goods_id"],))
        goods = await cur.fetchone()
        if goods is None:
            raise Validation({"goods_id": "No such goods."})
        await cur.execute(LOCK_BUYER, (user_id,))
        if await cur.fetchone() is None:
            raise NotFound("No such user.")
        await cur.execute(BUYER_ADDRESS, (clean["address_id"], user_id))
        address = await cur.fetchone()
        if address is None:
            raise Validation({"address_id": "Choose one of your addresses."})
        if taken != 1:
            raise OutOfStock()
        await cur.execute(PENDING_ORDINARY, (user_id,))
        if (await cur.fetchone())["n"] >= ctx.settings.max_pending_orders:
            raise TooManyPending(f"You have {ctx.settings.max_pending_orders} unpaid orders; "
                                 "pay or cancel one first.")
        unit_price = goods["price"]
        total = unit_price * quantity
        if total > MAX_TOTAL:
            raise Validation({"quantity": "The total is too large for one order."})
        await cur.execute(INSERT_ORDER, (
            ctx.order_numbers.next(), user_id, clean["goods_id"], quantity, unit_price, total,
            clean["payment_method"], address["id"], address["receiver_name"], address["phone"],
            address["province"], address["city"], address["district"], address["detail_address"],
            ctx.settings.pay_window_s))
        await cur.execute(ORDER_BY_ID, (cur.lastrowid,))  # its creation is in its log from the row itself
        return await cur.fetchone()

    try:
        row = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.NO_REFERENCED_ROW:  # the address was deleted while we wrote the order
            raise Validation({"address_id": "Choose one of your addresses."}) from None
        raise
    return order_json(row)


async def checkout(ctx: Context, user_id: int, body: dict[str, Any],
                   new_address: dict[str, Any] | None = None) -> dict[str, Any]:
    """Place an order, first adding `new_address` to the book when the buyer typed one instead of
    choosing: both are checked before either is written, so a bad order keeps no new address.

    One Validation carries every error, a new address's under NEW_ADDRESS_PREFIX. Once the address is
    written, `body["address_id"]` is its id, so a form shown again after a refusal has it chosen.
    """
    errors: dict[str, str] = {}
    try:
        clean_order(body, need_address=new_address is None)
    except Validation as exc:
        errors.update(exc.errors)
    if new_address is not None:
        try:
            addresses.clean_address(new_address)
        except Validation as exc:
            errors.update({NEW_ADDRESS_PREFIX + k: v for k, v in exc.errors.items()})
    if errors:
        raise Validation(errors)
    if new_address is not None:
        address = await addresses.create_address(ctx, user_id, new_address)
        body["address_id"] = str(address["id"])
    return await place_order(ctx, user_id, body)


async def list_orders(ctx: Context, user_id: int, status: str, page: int,
                      per_page: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the owner's visible orders, newest first, and how many there are in all."""
    offset = (page - 1) * per_page
    if status:
        rows = await db.fetch_all(ctx.db, OWN_ORDERS_BY_STATUS, (user_id, status, per_page, offset))
        total = await db.fetch_value(ctx.db, COUNT_OWN_BY_STATUS, (user_id, status))
    else:
        rows = await db.fetch_all(ctx.db, OWN_ORDERS, (user_id, per_page, offset))
        total = await db.fetch_value(ctx.db, COUNT_OWN, (user_id,))
    return [order_json(r) for r in rows], int(total)


async def get_order(ctx: Context, order_id: int, *, owner_id: int | None) -> dict[str, Any]:
    """One order with its log; owner_id None (admins) also sees orders the owner hid."""
    row = await db.fetch_one(ctx.db, ORDER_BY_ID, (order_id,))
    if row is None or (owner_id is not None and (row["user_id"] != owner_id or row["deleted_by_user"])):
        raise NotFound("No such order.")
    entries = await db.fetch_all(ctx.db, ORDER_LOG, (order_id,))
    return {**order_json(row), "log": [log_json(e) for e in (creation_entry(row), *entries)]}


async def _order(ctx: Context, order_id: int) -> dict[str, Any]:
    return order_json(await db.fetch_one(ctx.db, ORDER_BY_ID, (order_id,)))


async def _refusal(cur, order_id: int, user_id: int, *, paying: bool = False) -> Exception:
    """Why a transition of the owner's order changed nothing: missing, expired or wrong state."""
    await cur.execute(OWN_ORDER_STATE, (order_id, user_id))
    state = await cur.fetchone()
    if state is None:
        return NotFound("No such order.")
    if paying and state["status"] == "pending" and state["expired"]:
        return Expired()
    return BadStatus()


async def pay_order(ctx: Context, user_id: int, order_id: int) -> dict[str, Any]:
    """Pending to paid with a simulated payment; a flash-sale order past its window is expired."""
    transaction_id = "SIM" + secrets.token_hex(12).upper()

    async def work(cur) -> None:
        if await cur.execute(PAY_ORDER, (transaction_id, order_id, user_id)) != 1:
            raise await _refusal(cur, order_id, user_id, paying=True)
        await cur.execute(INSERT_LOG, (order_id, "pending", "paid", user_id, "user",
                                       f"transaction {transaction_id}"))

    await db.run_transaction(ctx.db, work)
    return await _order(ctx, order_id)


async def confirm_order(ctx: Context, user_id: int, order_id: int) -> dict[str, Any]:
    """Shipped to completed: the buyer confirms receipt."""
    async def work(cur) -> None:
        if await cur.execute(CONFIRM_ORDER, (order_id, user_id)) != 1:
            raise await _refusal(cur, order_id, user_id)
        await cur.execute(INSERT_LOG, (order_id, "shipped", "completed", user_id, "user", ""))

    await db.run_transaction(ctx.db, work)
    return await _order(ctx, order_id)


async def hide_order(ctx: Context, user_id: int, order_id: int) -> None:
    """A cancelled or completed order leaves the owner's list; admins still see it."""
    async def work(cur) -> None:
        if await cur.execute(HIDE_ORDER, (order_id, user_id)) != 1:
            raise await _refusal(cur, order_id, user_id)
        await cur.execute(STATUS_OF, (order_id,))
        status = (await cur.fetchone())["status"]
        await cur.execute(INSERT_LOG, (order_id, status, status, user_id, "user",
                                       "deleted from the customer's order list"))

    await db.run_transaction(ctx.db, work)


async def cancel_order(ctx: Context, order_id: int, *, owner_id: int | None, actor: str,
                       actor_id: int | None, remark: str = "", only_if_expired: bool = False) -> dict[str, Any]:
    """Pending or paid to cancelled, returning the units exactly once; shared by the owner, the
    admins and the pay-window sweeper. owner_id None acts on any owner's order."""
    async def work(cur) -> dict[str, Any]:
        # the sale's or goods' row first, then the order: the same order as placements and batches
        await cur.execute(ORDER_TO_CANCEL, (order_id,))
        target = await cur.fetchone()
        if target is None:
            raise NotFound("No such order.")
        if target["flash_sale_id"] is not None:
            await cur.execute(LOCK_SALE_ROW, (target["flash_sale_id"],))
        await cur.execute(LOCK_GOODS_ROW, (target["goods_id"],))
        if owner_id is None:
            await cur.execute(LOCK_ORDER, (order_id,))
        else:
            await cur.execute(LOCK_OWN_ORDER, (order_id, owner_id))
        order = await cur.fetchone()
        if order is None:
            raise NotFound("No such order.")
        if only_if_expired:
            changed = await cur.execute(CANCEL_EXPIRED, (order_id,))
        else:
            changed = await cur.execute(CANCEL_ORDER, (order_id, order["status"]))
        if changed != 1:
            raise BadStatus()
        q, sale_id = order["quantity"], order["flash_sale_id"]
        if sale_id is None:
            await cur.execute(RETURN_STOCK, (q, q, q, order["goods_id"]))
        else:
            await cur.execute(RETURN_SALE_UNITS, (q, q, sale_id))
            await cur.execute(UNCOUNT_SALES, (q, q, order["goods_id"]))
        await cur.execute(INSERT_LOG, (order_id, order["status"], "cancelled", actor_id, actor, remark[:255]))
        return order

    # the Redis give-back runs once, after the commit, never inside the retried transaction
    order = await db.run_transaction(ctx.db, work)
    q, sale_id = order["quantity"], order["flash_sale_id"]
    if sale_id is not None:
        try:
            await seckill_state.release_units(ctx, sale_id, order["user_id"], q)
        except RedisError:
            # the cancel stands (MySQL holds the truth); say so loudly rather than answer a failure
            log.exception("order %s cancelled but its units did not reach sale %s in Redis", order_id, sale_id)
        if order.get("request_id"):
            try:
                await seckill.mark_cancelled(ctx, sale_id, order["user_id"], order["request_id"], order_id)
            except RedisError:
                log.exception("order %s cancelled but its purchase result still says success", order_id)
    return await _order(ctx, order_id)


async def expired_unpaid(ctx: Context, limit: int) -> list[int]:
    """Ids of pending flash-sale orders whose pay window has closed, oldest deadline first."""
    return [r["id"] for r in await db.fetch_all(ctx.db, EXPIRED_UNPAID, (limit,))]
