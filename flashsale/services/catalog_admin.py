"""Catalog administration: creating, changing and deleting categories and goods, and goods pictures."""
from __future__ import annotations

from typing import Any

from asyncmy.errors import IntegrityError

from flashsale import db
from flashsale.context import Context
from flashsale.errors import InUse, NotFound, Refusal, Validation
from flashsale.bodies import Body, Field
from flashsale.services import catalog, catalog_revision, goods_photos, search
from flashsale.validate import Fields

MAX_STOCK = 10_000_000
MAX_DESCRIPTION = 5000
MONEY_MESSAGE = "Must be an amount like 19.90 (at most two decimals, below 100000000)."
CATEGORY_BODY = Body(Field.text("name", max_len=64),
                     Field.text("description", min_len=0, max_len=500, required=False, default=""))
# a PUT sends any of these; the ones left out keep their value
GOODS_BODY = Body(
    Field.integer("category_id", 1, 2**32 - 1),
    Field.text("name", max_len=200),
    Field.text("description", min_len=0, max_len=MAX_DESCRIPTION, required=False, default=""),
    Field.money("price", message=MONEY_MESSAGE),
    Field.money("original_price", required=False, message=MONEY_MESSAGE, doc="Not below the price."),
    Field.integer("stock", 0, MAX_STOCK, required=False, default=0),
    *(Field.text(name, min_len=0, max_len=max_len, required=False, default="")
      for name, max_len in catalog.SPEC_FIELDS),
)
GOODS_FIELDS = frozenset(field.name for field in GOODS_BODY.fields)

# -> the category's id, locked until the transaction ends, or None
LOCK_CATEGORY = "SELECT id, name, description FROM categories WHERE id = %s FOR UPDATE"
# -> lastrowid; DUP_ENTRY on uq_categories_name
INSERT_CATEGORY = "INSERT INTO categories (name, description) VALUES (%s, %s)"
# 0 or 1 (0 also when nothing changed: the row was read under lock first); DUP_ENTRY on the name
UPDATE_CATEGORY = "UPDATE categories SET name = %s, description = %s WHERE id = %s"
# -> 1 when some goods are in the category
CATEGORY_HAS_GOODS = "SELECT 1 FROM goods WHERE category_id = %s LIMIT 1"
# 1: deleted; ROW_IS_REFERENCED when goods still reference it
DELETE_CATEGORY = "DELETE FROM categories WHERE id = %s"
# -> the goods row, locked until the transaction ends, or None
LOCK_GOODS = """
SELECT id, category_id, name, description, price, original_price, stock, photo,
       brand, model, weight, dimensions, material, warranty
  FROM goods WHERE id = %s FOR UPDATE"""
# -> 1 when the category exists
CATEGORY_EXISTS = "SELECT 1 FROM categories WHERE id = %s"
# -> lastrowid; NO_REFERENCED_ROW when the category vanished meanwhile
INSERT_GOODS = """
INSERT INTO goods (category_id, name, description, price, original_price, stock,
                   brand, model, weight, dimensions, material, warranty)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
# 0 or 1 (0 also when nothing changed: the row was read under lock first)
UPDATE_GOODS = """
UPDATE goods SET category_id = %s, name = %s, description = %s, price = %s, original_price = %s,
       stock = %s, brand = %s, model = %s, weight = %s, dimensions = %s, material = %s, warranty = %s
 WHERE id = %s"""
# -> 1 when an order (of any status, kept for admins) names the goods (ix_orders_goods)
GOODS_HAS_ORDERS = "SELECT 1 FROM orders WHERE goods_id = %s LIMIT 1"
# -> 1 when a flash sale (of any status) is of the goods (ix_flash_sales_goods)
GOODS_HAS_SALES = "SELECT 1 FROM flash_sales WHERE goods_id = %s LIMIT 1"
# 1: deleted; ROW_IS_REFERENCED when an order or a sale references it
DELETE_GOODS = "DELETE FROM goods WHERE id = %s"
# 0 or 1: the picture path is set
SET_PHOTO = "UPDATE goods SET photo = %s WHERE id = %s"


class NameTaken(Refusal):
    reason, message = "name_taken", "A category with that name already exists."


# --- categories ------------------------------------------------------------------------------

def _clean_category(body: dict[str, Any]) -> tuple[str, str]:
    clean = CATEGORY_BODY.clean(body)
    return clean["name"], clean["description"]


async def create_category(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    name, description = _clean_category(body)
    try:
        async def work(cur) -> int:
            await cur.execute(INSERT_CATEGORY, (name, description))
            return cur.lastrowid

        category_id = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.DUP_ENTRY:
            raise NameTaken() from None
        raise
    return catalog.admin_category_json(await catalog.get_category(ctx, category_id))


async def update_category(ctx: Context, category_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Change the name and/or description; fields left out keep their value."""
    try:
        async def work(cur) -> None:
            await cur.execute(LOCK_CATEGORY, (category_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("No such category.")
            name, description = _clean_category({
                "name": body.get("name", current["name"]),
                "description": body.get("description", current["description"])})
            if await cur.execute(UPDATE_CATEGORY, (name, description, category_id)):
                await search.reindex_category(cur, category_id)

        await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.DUP_ENTRY:
            raise NameTaken() from None
        raise
    return catalog.admin_category_json(await catalog.get_category(ctx, category_id))


async def delete_category(ctx: Context, category_id: int) -> None:
    """Delete an empty category; one that still has goods is refused with in_use."""
    try:
        async def work(cur) -> None:
            await cur.execute(LOCK_CATEGORY, (category_id,))
            if await cur.fetchone() is None:
                raise NotFound("No such category.")
            await cur.execute(CATEGORY_HAS_GOODS, (category_id,))
            if await cur.fetchone():
                raise InUse("The category still has goods; move or delete them first.")
            await cur.execute(DELETE_CATEGORY, (category_id,))

        await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.ROW_IS_REFERENCED:  # goods added meanwhile: the foreign key says no
            raise InUse("The category still has goods; move or delete them first.") from None
        raise


# --- goods -----------------------------------------------------------------------------------

def _clean_goods(body: dict[str, Any]) -> tuple[dict[str, Any], Fields]:
    """Every goods field of body, checked; the caller adds the category check, then `check()`s."""
    clean, fields = GOODS_BODY.read(body)
    if (clean["price"] is not None and clean["original_price"] is not None
            and clean["original_price"] < clean["price"]):
        fields.error("original_price", "Must not be below the price.")
    return clean, fields


def _goods_args(clean: dict[str, Any]) -> tuple[Any, ...]:
    return (clean["category_id"], clean["name"], clean["description"], clean["price"],
            clean["original_price"], clean["stock"], *(clean[name] for name, _ in catalog.SPEC_FIELDS))


async def _check_category(cur, fields: Fields, category_id: int | None) -> None:
    """Record an error when the (otherwise valid) category does not exist; then raise them all."""
    if category_id is not None:
        await cur.execute(CATEGORY_EXISTS, (category_id,))
        if await cur.fetchone() is None:
            fields.error("category_id", "No such category.")
    fields.check()


def _missing_category(exc: IntegrityError) -> bool:
    return db.errno(exc) == db.NO_REFERENCED_ROW


async def create_goods(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    clean, fields = _clean_goods(body)
    try:
        async def work(cur) -> int:
            await _check_category(cur, fields, clean["category_id"])
            await cur.execute(INSERT_GOODS, _goods_args(clean))
            goods_id = cur.lastrowid
            await search.index_goods(cur, goods_id)
            return goods_id

        goods_id = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if _missing_category(exc):  # deleted between the check and the insert
            raise Validation({"category_id": "No such category."}) from None
        raise
    return await catalog.admin_get_goods(ctx, goods_id)


async def update_goods(ctx: Context, goods_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Change any goods fields; fields left out keep their value. Sales and picture are not set here."""
    try:
        async def work(cur) -> None:
            # locked: an order taking stock waits, so the stock written here is not stale
            await cur.execute(LOCK_GOODS, (goods_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("That item does not exist.")
            merged = {name: current[name] for name in GOODS_FIELDS}
            merged.update({k: v for k, v in body.items() if k in GOODS_FIELDS})
            clean, fields = _clean_goods(merged)
            changed = clean["category_id"] != current["category_id"]
            await _check_category(cur, fields, clean["category_id"] if changed else None)
            if await cur.execute(UPDATE_GOODS, (*_goods_args(clean), goods_id)):
                await search.index_goods(cur, goods_id)

        await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if _missing_category(exc):
            raise Validation({"category_id": "No such category."}) from None
        raise
    await catalog_revision.bump(ctx)  # its sales' pages show the goods' name, picture and price
    return await catalog.admin_get_goods(ctx, goods_id)


async def delete_goods(ctx: Context, goods_id: int) -> None:
    """Delete goods no order or flash sale names (else in_use), and then its picture."""
    in_use = InUse("Orders or flash sales refer to these goods; they cannot be deleted.")
    try:
        async def work(cur) -> dict[str, Any]:
            await cur.execute(LOCK_GOODS, (goods_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("That item does not exist.")
            for check in (GOODS_HAS_ORDERS, GOODS_HAS_SALES):
                await cur.execute(check, (goods_id,))
                if await cur.fetchone():
                    raise in_use
            await cur.execute(DELETE_GOODS, (goods_id,))
            return current

        current = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.ROW_IS_REFERENCED:  # an order came in meanwhile
            raise in_use from None
        raise
    await goods_photos.remove_photo(ctx.settings, current["photo"])


async def set_goods_photo(ctx: Context, goods_id: int, data: bytes) -> dict[str, Any]:
    """Store a JPEG, PNG or WebP picture (checked by content) as the goods' picture."""
    photo, path = await goods_photos.store_photo(ctx.settings, data)
    try:
        async def work(cur) -> dict[str, Any]:
            await cur.execute(LOCK_GOODS, (goods_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("That item does not exist.")
            await cur.execute(SET_PHOTO, (photo, goods_id))
            return current

        current = await db.run_transaction(ctx.db, work)
    except BaseException:
        path.unlink(missing_ok=True)  # not awaited: this runs on cancellation too
        raise
    await catalog_revision.bump(ctx)
    await goods_photos.remove_photo(ctx.settings, current["photo"])
    return await catalog.admin_get_goods(ctx, goods_id)
