"""Orders for a test to stand on: written straight into MySQL (any status, any time) or placed through
the real services; and what an order took from its goods."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.jsonio import utcnow
from flashsale.services import orders

from tests.support.factory import unique

# the fields of Factory.address, as an order's address snapshot shows them
ADDRESS = {"receiver_name": "Test Receiver", "phone": "13800000000", "province": "Zhejiang",
           "city": "Hangzhou", "district": "Xihu", "detail_address": "1 Test Road"}

INSERT_ORDER = """
INSERT INTO orders (order_number, user_id, goods_id, flash_sale_id, quantity, unit_price, total_amount,
                    payment_method, status, receiver_name, phone, province, city, district, detail_address,
                    created_at, paid_at, shipped_at, completed_at, cancelled_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""


def utc_now() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def insert_order(ctx: Context, *, user_id: int, goods_id: int, status: str = "pending",
                       created_at: dt.datetime | None = None, unit_price: str = "19.90", quantity: int = 1,
                       number: str | None = None, flash_sale_id: int | None = None,
                       receiver_name: str = "Test Receiver", phone: str = "13800000000",
                       province: str = "Zhejiang", city: str = "Hangzhou", district: str = "Xihu",
                       detail_address: str = "1 Test Road", payment_method: str = "alipay") -> int:
    """An order row with its first log entry; the status's own time is set to created_at."""
    created_at = created_at or utc_now()
    times = {s: (created_at if status == s else None) for s in ("paid", "shipped", "completed", "cancelled")}
    if status in ("shipped", "completed"):
        times["paid"] = created_at
    if status == "completed":
        times["shipped"] = created_at
    price = Decimal(unit_price)
    async with db.transaction(ctx.db) as cur:
        await cur.execute(INSERT_ORDER, (
            number or unique("N"), user_id, goods_id, flash_sale_id, quantity, price, price * quantity,
            payment_method, status, receiver_name, phone, province, city, district, detail_address,
            created_at, times["paid"], times["shipped"], times["completed"], times["cancelled"]))
    return cur.lastrowid  # its creation is in its log from the row itself


async def placed_order(ctx: Context, factory, *, user: dict[str, Any] | None = None, goods_id: int | None = None,
                       quantity: int = 1, pay: bool = False) -> dict[str, Any]:
    """An ordinary order placed (and paid) through the real services: stock really taken."""
    user = user or await factory.user()
    address_id = await factory.address(user["id"])
    goods_id = goods_id or await factory.goods()
    order = await orders.place_order(ctx, user["id"], {
        "goods_id": goods_id, "quantity": quantity, "address_id": address_id, "payment_method": "alipay"})
    if pay:
        order = await orders.pay_order(ctx, user["id"], order["id"])
    return order


async def goods_stock(ctx: Context, goods_id: int) -> int:
    return int(await db.fetch_value(ctx.db, "SELECT stock FROM goods WHERE id = %s", (goods_id,)))


async def goods_row(ctx, goods_id) -> dict:
    return await db.fetch_one(ctx.db, "SELECT stock, sales FROM goods WHERE id = %s", (goods_id,))


async def order_count(ctx, goods_id) -> int:
    return await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM orders WHERE goods_id = %s", (goods_id,))


async def set_status(ctx, order_id, status) -> None:
    await db.execute(ctx.db, "UPDATE orders SET status = %s WHERE id = %s", (status, order_id))


async def flash_order(ctx, user_id, goods_id, *, quantity=1, deadline_s=900, sold=None) -> tuple[int, int]:
    """A flash-sale order as the engine's consumer writes it: (order_id, sale_id)."""
    now = utcnow()
    async with db.transaction(ctx.db) as cur:
        await cur.execute(
            "INSERT INTO flash_sales (goods_id, price, total_stock, sold, per_user_limit, start_time, end_time) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (goods_id, "9.90", 10, quantity if sold is None else sold, 5, now - dt.timedelta(hours=1),
             now + dt.timedelta(hours=1)))
        sale_id = cur.lastrowid
        await cur.execute(
            "INSERT INTO orders (order_number, user_id, goods_id, flash_sale_id, request_id, quantity, unit_price, "
            "total_amount, payment_method, status, receiver_name, phone, province, city, district, "
            "detail_address, pay_deadline) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'alipay', 'pending', "
            "%s, %s, %s, %s, %s, %s, %s)",
            (ctx.order_numbers.next(), user_id, goods_id, sale_id, f"req-{sale_id}", quantity, "9.90",
             f"{9.9 * quantity:.2f}", *ADDRESS.values(), now + dt.timedelta(seconds=deadline_s)))
        order_id = cur.lastrowid  # its creation is in its log from the row itself
    return order_id, sale_id
