"""Rows for a test to stand on: users through the accounts service, the rest by plain SQL; unique names."""
from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.services import accounts, search

from tests.support.isolation import RUN_ID

PASSWORD = "correct horse battery"  # every factory user's password unless a test gives one
_names = itertools.count(1)


def unique(stem: str = "u") -> str:
    """A name no other test of any run uses: the stem, this run's id and a counter."""
    return f"{stem}{RUN_ID}_{next(_names)}"


class Factory:
    """Makes rows: users through the real accounts service (hashed passwords, as login checks them);
    categories, goods and addresses by plain SQL, so a test can set columns the services guard or
    compute (a goods row's sales, an address's default flag) and skips their validation."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    async def user(self, *, role: str = "user", password: str = PASSWORD, **fields) -> dict[str, Any]:
        username = fields.pop("username", None) or unique("u")
        body = {"username": username, "password": password, "email": f"{username}@example.com", **fields}
        user = await accounts.register(self.ctx, body, role=role)
        return {**user, "password": password}

    async def category(self, name: str | None = None) -> int:
        return await _insert(self.ctx, "INSERT INTO categories (name, description) VALUES (%s, %s)",
                             (name or unique("cat"), "test category"))

    async def goods(self, *, category_id: int | None = None, stock: int = 100,
                    price: str = "19.90", name: str | None = None, sales: int = 0) -> int:
        category_id = category_id or await self.category()
        async with db.transaction(self.ctx.db) as cur:
            await cur.execute(
                "INSERT INTO goods (category_id, name, description, price, original_price, stock, sales) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (category_id, name or unique("goods"), "test goods", Decimal(price), Decimal(price) + 10,
                 stock, sales))
            goods_id = cur.lastrowid
            await search.index_goods(cur, goods_id)  # searchable, as the service's goods are
        return goods_id

    async def address(self, user_id: int, *, is_default: bool = True) -> int:
        return await _insert(
            self.ctx,
            "INSERT INTO addresses (user_id, receiver_name, phone, province, city, district, "
            "detail_address, is_default) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (user_id, "Test Receiver", "13800000000", "Zhejiang", "Hangzhou", "Xihu", "1 Test Road",
             int(is_default)))


async def _insert(ctx: Context, sql: str, args) -> int:
    async with db.transaction(ctx.db) as cur:
        await cur.execute(sql, args)
        return cur.lastrowid
