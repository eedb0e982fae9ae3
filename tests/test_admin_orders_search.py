"""The admin order search: a prefix of a username or an order number, through indexes only."""
from __future__ import annotations

import asyncio

import asyncmy
import pytest

from flashsale.db import connect_kwargs
from flashsale.migrate import migrate
from flashsale.services import admin_orders
from tests.support.factory import unique
from tests.support.isolation import drop_database, query


async def order_ids(client, headers, q: str) -> list[int]:
    r = await client.get("/api/admin/orders", params={"q": q}, headers=headers)
    assert r.status == 200, await r.text()
    return [o["id"] for o in (await r.json())["data"]["items"]]


async def test_a_username_prefix_finds_every_matching_buyers_orders(admin_client, factory, ctx):
    client, _, headers = admin_client
    stem = unique("pre")
    goods = await factory.goods()
    ann = await factory.user(username=f"{stem}ann")
    anna = await factory.user(username=f"{stem}anna")
    bob = await factory.user(username=f"{stem}bob")
    orders = {}
    for user in (ann, anna, bob):
        orders[user["username"]] = await add_order_of(ctx, user["id"], goods)
    assert await order_ids(client, headers, f"{stem}ann") == [orders[f"{stem}anna"], orders[f"{stem}ann"]]
    assert await order_ids(client, headers, f"{stem}ANNA") == [orders[f"{stem}anna"]]  # any case
    assert await order_ids(client, headers, stem) == sorted(orders.values(), reverse=True)
    assert await order_ids(client, headers, f"{stem}_") == []  # `_` is no wildcard


async def add_order_of(ctx, user_id: int, goods_id: int) -> int:
    from decimal import Decimal

    from flashsale import db

    async with db.transaction(ctx.db) as cur:
        await cur.execute(
            "INSERT INTO orders (order_number, user_id, goods_id, quantity, unit_price, total_amount, "
            "payment_method, receiver_name, phone, province, city, detail_address) "
            "VALUES (%s, %s, %s, 1, %s, %s, 'alipay', 'R', '13800000000', 'P', 'C', 'D')",
            (unique("o")[:32], user_id, goods_id, Decimal("1.00"), Decimal("1.00")))
        return cur.lastrowid


# --- plans on a shop-sized order book -------------------------------------------------------------

FILL = [
    "INSERT INTO users (id, username, password_hash) SELECT seq, CONCAT('buyer', seq), 'x' FROM seq_1_to_5000",
    "INSERT INTO categories (id, name) VALUES (1, 'Cat')",
    "INSERT INTO goods (id, category_id, name, description, price) VALUES (1, 1, 'Teapot', '', 1)",
    """INSERT INTO orders (order_number, user_id, goods_id, quantity, unit_price, total_amount, payment_method,
                           status, receiver_name, phone, province, city, detail_address, created_at)
       SELECT CONCAT('FS', LPAD(seq * 7919 % 1000003, 10, '0')), 1 + seq % 5000, 1, 1, 1, 1, 'alipay',
              ELT(1 + seq % 5, 'pending', 'paid', 'shipped', 'completed', 'cancelled'),
              'R', '1', 'P', 'C', 'D', '2025-01-01' + INTERVAL seq MINUTE
         FROM seq_1_to_50000""",
    "ANALYZE TABLE users, orders",
]


@pytest.fixture(scope="module")
def orders_db(migrated_db):
    settings = migrated_db.replace(db_name=migrated_db.db_name + "_orders")
    asyncio.run(drop_database(settings))
    asyncio.run(migrate(settings))

    async def fill():
        conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings))
        try:
            async with conn.cursor() as cur:
                for statement in FILL:
                    await cur.execute(statement)
                    await cur.fetchall()
        finally:
            await conn.ensure_closed()

    asyncio.run(fill())
    yield settings
    asyncio.run(drop_database(settings))


@pytest.mark.parametrize("q, status", [("buyer123", ""), ("BUYER4", "paid"), ("FS00001", ""),
                                       ("FS000012", "shipped"), ("buyer9999", "")])
async def test_order_search_reads_indexes_never_the_whole_table(orders_db, q, status):
    filters = {"q": q, "status": status, "from": None, "before": None}
    users = await query(orders_db, admin_orders.USERS_BY_PREFIX,
                           (admin_orders._prefix(q), admin_orders.MAX_PREFIX_USERS))
    plan_users = await query(orders_db, "EXPLAIN " + admin_orders.USERS_BY_PREFIX,
                                (admin_orders._prefix(q), admin_orders.MAX_PREFIX_USERS))
    assert plan_users[0]["key"] == "uq_users_username" and plan_users[0]["type"] == "range", plan_users
    where, args = admin_orders._where(filters, [u["id"] for u in users])
    for sql, sql_args in ((admin_orders.LIST_ORDERS.format(where=where), (*args, 20, 0)),
                          (admin_orders.COUNT_ORDERS.format(where=where), args)):
        plan = await query(orders_db, "EXPLAIN " + sql, sql_args)
        first = plan[0]
        assert first["table"] == "o" and first["type"] in ("range", "index_merge"), plan
        # (the one-row goods table of this fill is read whole, as any plan would)
        assert all(p["type"] not in ("ALL", "index") for p in plan if p["table"] in ("o", "u")), plan
