"""The catalog: categories and goods for shoppers, their administration, and goods pictures."""
from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from asyncmy.errors import IntegrityError

from flashsale import db
from flashsale.context import Context
from flashsale.errors import BadImage, InUse, NotFound, Refusal, TooLarge, Validation
from flashsale.jsonio import parse_money
from flashsale.services import search, seckill
from flashsale.settings import Settings
from flashsale.validate import Fields

log = logging.getLogger(__name__)

PLACEHOLDER_URL = "/static/img/placeholder.svg"
UPLOADS_URL = "/static/uploads/"
MAX_PHOTO_BYTES = 5 * 1024 * 1024
# what Pillow reports -> the extension the file is saved with
PHOTO_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MAX_STOCK = 10_000_000
RELATED_COUNT = 4
MAX_QUERY_LEN = 100

SORTS = frozenset({"sales", "price", "new"})
ORDERS = frozenset({"asc", "desc"})
DEFAULT_ORDER = {"sales": "desc", "price": "asc", "new": "desc"}
# (sort, order) -> ORDER BY; each one is read straight off an index (see 0002_catalog_indexes):
# sales: ix_goods_sales / ix_goods_category_sales, price: ix_goods_price / ix_goods_category_price,
# new: PRIMARY / ix_goods_category_new
ORDER_BY = {
    ("sales", "desc"): "g.sales DESC, g.id DESC",
    ("sales", "asc"): "g.sales ASC, g.id ASC",
    ("price", "asc"): "g.price ASC, g.id ASC",
    ("price", "desc"): "g.price DESC, g.id DESC",
    ("new", "desc"): "g.id DESC",
    ("new", "asc"): "g.id ASC",
}
# the only WHERE fragments a goods list is built from
BY_CATEGORY = "g.category_id = %s"
BY_NAME_WORDS = "MATCH (g.name) AGAINST (%s IN BOOLEAN MODE)"  # ft_goods_name
BY_NAME_LIKE = "g.name LIKE %s"  # a scan of the rows left after the other filters

# The FULLTEXT index holds words of at least innodb_ft_min_token_size (3) characters and none of
# InnoDB's default stopwords; a query with a shorter word, a stopword or a non-ASCII word (CJK
# names have no spaces to split on) would miss goods, so it falls back to LIKE.
FULLTEXT_WORD = re.compile(r"^[0-9a-z]{3,}$")
FULLTEXT_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was "
    "what when where who will with und www".split())

SUMMARY_COLUMNS = "g.id, g.name, g.price, g.original_price, g.stock, g.sales, g.photo, g.category_id"
GOODS_COLUMNS = (SUMMARY_COLUMNS + ", g.description, g.brand, g.model, g.weight, g.dimensions, "
                 "g.material, g.warranty, g.created_at, g.updated_at, c.name AS category_name")

# -> every category with its number of goods (ix_goods_category_new per category), by name
LIST_CATEGORIES = """
SELECT c.id, c.name, c.description, c.created_at,
       (SELECT COUNT(*) FROM goods g WHERE g.category_id = c.id) AS goods_count
  FROM categories c ORDER BY c.name"""
# -> one category with its goods count, or None
CATEGORY_BY_ID = """
SELECT c.id, c.name, c.description, c.created_at,
       (SELECT COUNT(*) FROM goods g WHERE g.category_id = c.id) AS goods_count
  FROM categories c WHERE c.id = %s"""
# -> the category's id, locked until the transaction ends, or None
LOCK_CATEGORY = "SELECT id, name, description FROM categories WHERE id = %s FOR UPDATE"
# -> lastrowid; 1062 on uq_categories_name
INSERT_CATEGORY = "INSERT INTO categories (name, description) VALUES (%s, %s)"
# 0 or 1 (0 also when nothing changed: the row was read under lock first); 1062 on the name
UPDATE_CATEGORY = "UPDATE categories SET name = %s, description = %s WHERE id = %s"
# -> 1 when some goods are in the category
CATEGORY_HAS_GOODS = "SELECT 1 FROM goods WHERE category_id = %s LIMIT 1"
# 1: deleted; 1451 when goods still reference it
DELETE_CATEGORY = "DELETE FROM categories WHERE id = %s"

# -> a page of goods summaries; {where} and {order} come only from the fragments above
LIST_GOODS = f"SELECT {SUMMARY_COLUMNS} FROM goods g {{where}} ORDER BY {{order}} LIMIT %s OFFSET %s"
# -> the number of goods matching the same filters
COUNT_GOODS = "SELECT COUNT(*) FROM goods g {where}"
# -> a page of full goods rows with their category's name, newest first (admin); STRAIGHT_JOIN
# reads goods first, in index order, else the optimizer starts from the small categories table
# and sorts every goods row
ADMIN_LIST_GOODS = f"""
SELECT {GOODS_COLUMNS} FROM goods g STRAIGHT_JOIN categories c ON c.id = g.category_id
 {{where}} ORDER BY g.id DESC LIMIT %s OFFSET %s"""
# -> one full goods row with its category's name, or None
GOODS_BY_ID = f"SELECT {GOODS_COLUMNS} FROM goods g JOIN categories c ON c.id = g.category_id WHERE g.id = %s"
# -> the best sellers of a category other than the given goods (ix_goods_category_sales)
RELATED_GOODS = f"""
SELECT {SUMMARY_COLUMNS} FROM goods g WHERE g.category_id = %s AND g.id <> %s
 ORDER BY g.sales DESC, g.id DESC LIMIT {RELATED_COUNT}"""
# -> the goods row, locked until the transaction ends, or None
LOCK_GOODS = """
SELECT id, category_id, name, description, price, original_price, stock, photo,
       brand, model, weight, dimensions, material, warranty
  FROM goods WHERE id = %s FOR UPDATE"""
# -> 1 when the category exists
CATEGORY_EXISTS = "SELECT 1 FROM categories WHERE id = %s"
# -> lastrowid; 1452 when the category vanished meanwhile
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
# 1: deleted; 1451 when an order or a sale references it
DELETE_GOODS = "DELETE FROM goods WHERE id = %s"
# 0 or 1: the picture path is set
SET_PHOTO = "UPDATE goods SET photo = %s WHERE id = %s"

CATEGORY_TEXT = (("name", 1, 64, True), ("description", 0, 500, False))
# specification columns: name, max length
SPEC_FIELDS = (("brand", 100), ("model", 100), ("weight", 64), ("dimensions", 100),
               ("material", 100), ("warranty", 100))
GOODS_FIELDS = frozenset({"category_id", "name", "description", "price", "original_price", "stock",
                          *(name for name, _ in SPEC_FIELDS)})
MAX_DESCRIPTION = 5000


class NameTaken(Refusal):
    reason, message = "name_taken", "A category with that name already exists."


# --- JSON shapes -----------------------------------------------------------------------------

def photo_url(photo: str | None) -> str:
    """The public URL of a goods picture (stored relative to settings.upload_dir)."""
    return UPLOADS_URL + photo if photo else PLACEHOLDER_URL


def category_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"],
            "goods_count": int(row["goods_count"])}


def admin_category_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**category_json(row), "created_at": row["created_at"]}


def goods_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "price": row["price"],
        "original_price": row["original_price"], "stock": row["stock"], "sales": row["sales"],
        "photo_url": photo_url(row["photo"]), "category_id": row["category_id"],
    }


def goods_json(row: dict[str, Any]) -> dict[str, Any]:
    """A goods row with its description, specifications and category, as admins edit it."""
    summary = goods_summary(row)
    del summary["category_id"]
    return {
        **summary, "description": row["description"],
        **{name: row[name] for name, _ in SPEC_FIELDS},
        "category": {"id": row["category_id"], "name": row["category_name"]},
    }


def admin_goods_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**goods_json(row), "category_id": row["category_id"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


# --- shopper reads -----------------------------------------------------------------------------

async def list_categories(ctx: Context) -> list[dict[str, Any]]:
    return [category_json(r) for r in await db.fetch_all(ctx.db, LIST_CATEGORIES)]


def goods_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """`category_id`, `q`, `sort` and `order` of a goods list query; raises Validation."""
    fields = Fields(dict(query))
    category_id = fields.integer("category_id", low=1, high=2**32 - 1, required=False)
    sort = fields.choice("sort", SORTS, required=False, default="sales")
    order = fields.choice("order", ORDERS, required=False, default=None)
    fields.check()
    q = " ".join(query.get("q", "").split())[:MAX_QUERY_LEN]
    return {"category_id": category_id, "q": q, "sort": sort, "order": order or DEFAULT_ORDER[sort]}


def name_condition(q: str) -> tuple[str, str]:
    """The WHERE fragment and its argument that find goods whose name matches q."""
    words = re.split(r"[^\w]+", q.lower())
    words = [w for w in words if w]
    if words and all(FULLTEXT_WORD.match(w) and w not in FULLTEXT_STOPWORDS for w in words):
        # every word must start a word of the name: `+aurora* +pho*`
        return BY_NAME_WORDS, " ".join(f"+{w}*" for w in words)
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return BY_NAME_LIKE, f"%{escaped}%"


def _where(category_id: int | None, q: str) -> tuple[str, list[Any]]:
    conditions, args = [], []
    if category_id is not None:
        conditions.append(BY_CATEGORY)
        args.append(category_id)
    if q:
        condition, arg = name_condition(q)
        conditions.append(condition)
        args.append(arg)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), args


async def list_goods(ctx: Context, *, category_id: int | None = None, q: str = "", sort: str = "sales",
                     order: str | None = None, page: int = 1, per_page: int = 20,
                     ) -> tuple[list[dict[str, Any]], int]:
    """A page of goods summaries and the total that match."""
    order_by = ORDER_BY[(sort, order or DEFAULT_ORDER[sort])]
    if q:  # the n-gram index; best-selling ranks by relevance first
        rows, total = await search.find_goods(
            ctx, q, columns=SUMMARY_COLUMNS, order_by=order_by, relevance_first=sort == "sales",
            category_id=category_id, page=page, per_page=per_page)
        return [goods_summary(r) for r in rows], total
    where, args = _where(category_id, q)
    rows = await db.fetch_all(ctx.db, LIST_GOODS.format(where=where, order=order_by),
                              (*args, per_page, (page - 1) * per_page))
    total = await db.fetch_value(ctx.db, COUNT_GOODS.format(where=where), args)
    return [goods_summary(r) for r in rows], int(total)


async def best_sellers(ctx: Context, category_id: int | None = None) -> list[dict[str, Any]]:
    """What a search that found nothing suggests: the category's best sellers, else the shop's."""
    rows = await search.best_sellers(ctx, columns=SUMMARY_COLUMNS, category_id=category_id)
    if not rows and category_id is not None:
        rows = await search.best_sellers(ctx, columns=SUMMARY_COLUMNS)
    return [goods_summary(r) for r in rows]


async def get_goods(ctx: Context, goods_id: int) -> dict[str, Any]:
    """The goods page's data: details, four related goods and its live or next flash sale."""
    row = await db.fetch_one(ctx.db, GOODS_BY_ID, (goods_id,))
    if row is None:
        raise NotFound("That item does not exist.")
    related = await db.fetch_all(ctx.db, RELATED_GOODS, (row["category_id"], goods_id))
    return {**goods_json(row), "related": [goods_summary(r) for r in related],
            "flash_sale": await seckill.sale_for_goods(ctx, goods_id)}


# --- categories administration -----------------------------------------------------------------

def _clean_category(body: dict[str, Any]) -> tuple[str, str]:
    fields = Fields(body)
    name = fields.text("name", max_len=64)
    description = fields.text("description", min_len=0, max_len=500, required=False, default="")
    fields.check()
    return name, description


async def get_category(ctx: Context, category_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, CATEGORY_BY_ID, (category_id,))
    if row is None:
        raise NotFound("No such category.")
    return row


async def admin_list_categories(ctx: Context) -> list[dict[str, Any]]:
    return [admin_category_json(r) for r in await db.fetch_all(ctx.db, LIST_CATEGORIES)]


async def create_category(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    name, description = _clean_category(body)
    try:
        async with db.transaction(ctx.db) as cur:
            await cur.execute(INSERT_CATEGORY, (name, description))
            category_id = cur.lastrowid
    except IntegrityError as exc:
        if exc.args and exc.args[0] == 1062:
            raise NameTaken() from None
        raise
    return admin_category_json(await get_category(ctx, category_id))


async def update_category(ctx: Context, category_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Change the name and/or description; fields left out keep their value."""
    try:
        async with db.transaction(ctx.db) as cur:
            await cur.execute(LOCK_CATEGORY, (category_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("No such category.")
            name, description = _clean_category({
                "name": body.get("name", current["name"]),
                "description": body.get("description", current["description"])})
            if await cur.execute(UPDATE_CATEGORY, (name, description, category_id)):
                await search.reindex_category(cur, category_id)
    except IntegrityError as exc:
        if exc.args and exc.args[0] == 1062:
            raise NameTaken() from None
        raise
    return admin_category_json(await get_category(ctx, category_id))


async def delete_category(ctx: Context, category_id: int) -> None:
    """Delete an empty category; one that still has goods is refused with in_use."""
    try:
        async with db.transaction(ctx.db) as cur:
            await cur.execute(LOCK_CATEGORY, (category_id,))
            if await cur.fetchone() is None:
                raise NotFound("No such category.")
            await cur.execute(CATEGORY_HAS_GOODS, (category_id,))
            if await cur.fetchone():
                raise InUse("The category still has goods; move or delete them first.")
            await cur.execute(DELETE_CATEGORY, (category_id,))
    except IntegrityError as exc:
        if exc.args and exc.args[0] == 1451:  # goods added meanwhile: the foreign key says no
            raise InUse("The category still has goods; move or delete them first.") from None
        raise


# --- goods administration ----------------------------------------------------------------------

async def admin_list_goods(ctx: Context, *, category_id: int | None, q: str, page: int, per_page: int,
                           ) -> tuple[list[dict[str, Any]], int]:
    """A page of full goods rows, newest first, and the total that match."""
    where, args = _where(category_id, q)
    rows = await db.fetch_all(ctx.db, ADMIN_LIST_GOODS.format(where=where),
                              (*args, per_page, (page - 1) * per_page))
    total = await db.fetch_value(ctx.db, COUNT_GOODS.format(where=where), args)
    return [admin_goods_json(r) for r in rows], int(total)


async def admin_get_goods(ctx: Context, goods_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, GOODS_BY_ID, (goods_id,))
    if row is None:
        raise NotFound("That item does not exist.")
    return admin_goods_json(row)


def _money(fields: Fields, name: str, *, required: bool) -> Decimal | None:
    raw = fields.body.get(name)
    if raw is None or raw == "":
        if required:
            fields.error(name, "This field is required.")
        return None
    value = parse_money(raw)
    if value is None:
        fields.error(name, "Must be an amount like 19.90 (at most two decimals, below 100000000).")
    return value


def _clean_goods(body: dict[str, Any]) -> tuple[dict[str, Any], Fields]:
    """Every goods field of body, checked; the caller adds the category check, then `check()`s."""
    fields = Fields(body)
    clean: dict[str, Any] = {
        "category_id": fields.integer("category_id", low=1, high=2**32 - 1),
        "name": fields.text("name", max_len=200),
        "description": fields.text("description", min_len=0, max_len=MAX_DESCRIPTION, required=False,
                                   default=""),
        "price": _money(fields, "price", required=True),
        "original_price": _money(fields, "original_price", required=False),
        "stock": fields.integer("stock", low=0, high=MAX_STOCK, required=False, default=0),
    }
    for name, max_len in SPEC_FIELDS:
        clean[name] = fields.text(name, min_len=0, max_len=max_len, required=False, default="")
    if (clean["price"] is not None and clean["original_price"] is not None
            and clean["original_price"] < clean["price"]):
        fields.error("original_price", "Must not be below the price.")
    return clean, fields


def _goods_args(clean: dict[str, Any]) -> tuple[Any, ...]:
    return (clean["category_id"], clean["name"], clean["description"], clean["price"],
            clean["original_price"], clean["stock"], *(clean[name] for name, _ in SPEC_FIELDS))


async def _check_category(cur, fields: Fields, category_id: int | None) -> None:
    """Record an error when the (otherwise valid) category does not exist; then raise them all."""
    if category_id is not None:
        await cur.execute(CATEGORY_EXISTS, (category_id,))
        if await cur.fetchone() is None:
            fields.error("category_id", "No such category.")
    fields.check()


def _missing_category(exc: IntegrityError) -> bool:
    return bool(exc.args) and exc.args[0] == 1452


async def create_goods(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    clean, fields = _clean_goods(body)
    try:
        async with db.transaction(ctx.db) as cur:
            await _check_category(cur, fields, clean["category_id"])
            await cur.execute(INSERT_GOODS, _goods_args(clean))
            goods_id = cur.lastrowid
            await search.index_goods(cur, goods_id)
    except IntegrityError as exc:
        if _missing_category(exc):  # deleted between the check and the insert
            raise Validation({"category_id": "No such category."}) from None
        raise
    return await admin_get_goods(ctx, goods_id)


async def update_goods(ctx: Context, goods_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Change any goods fields; fields left out keep their value. Sales and picture are not set here."""
    try:
        async with db.transaction(ctx.db) as cur:
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
    except IntegrityError as exc:
        if _missing_category(exc):
            raise Validation({"category_id": "No such category."}) from None
        raise
    return await admin_get_goods(ctx, goods_id)


async def delete_goods(ctx: Context, goods_id: int) -> None:
    """Delete goods no order or flash sale names (else in_use), and then its picture."""
    in_use = InUse("Orders or flash sales refer to these goods; they cannot be deleted.")
    try:
        async with db.transaction(ctx.db) as cur:
            await cur.execute(LOCK_GOODS, (goods_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("That item does not exist.")
            for check in (GOODS_HAS_ORDERS, GOODS_HAS_SALES):
                await cur.execute(check, (goods_id,))
                if await cur.fetchone():
                    raise in_use
            await cur.execute(DELETE_GOODS, (goods_id,))
    except IntegrityError as exc:
        if exc.args and exc.args[0] == 1451:  # an order came in meanwhile
            raise in_use from None
        raise
    await _remove_photo(ctx.settings, current["photo"])


# --- pictures ----------------------------------------------------------------------------------

def upload_root(settings: Settings) -> Path:
    """settings.upload_dir, made if missing (it is served under /static/uploads/)."""
    root = Path(settings.upload_dir)
    (root / "goods").mkdir(parents=True, exist_ok=True)
    return root


def detect_photo_format(data: bytes) -> str | None:
    """'JPEG', 'PNG' or 'WEBP' when the bytes are a well-formed picture of that kind, else None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()  # checks the structure (and PNG checksums) without decoding pixels
    except Exception:  # Pillow raises many kinds (UnidentifiedImageError, SyntaxError, OSError...)
        return None
    return kind if kind in PHOTO_FORMATS else None


def _stored_path(settings: Settings, photo: str) -> Path | None:
    """The file of a stored picture path, only when it lies inside the upload directory."""
    root = Path(settings.upload_dir).resolve()
    path = (root / photo).resolve()
    return path if path.is_relative_to(root) and path != root else None


async def _remove_photo(settings: Settings, photo: str | None) -> None:
    path = _stored_path(settings, photo) if photo else None
    if path is None:
        return
    try:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    except OSError:
        log.warning("could not remove the old picture %s", path, exc_info=True)


async def set_goods_photo(ctx: Context, goods_id: int, data: bytes) -> dict[str, Any]:
    """Store a JPEG, PNG or WebP picture (checked by content) as the goods' picture."""
    if len(data) > MAX_PHOTO_BYTES:
        raise TooLarge("The picture is larger than 5 MB.")
    kind = await asyncio.to_thread(detect_photo_format, data)
    if kind is None:
        raise BadImage()
    photo = f"goods/{secrets.token_hex(16)}.{PHOTO_FORMATS[kind]}"
    path = upload_root(ctx.settings) / photo
    await asyncio.to_thread(path.write_bytes, data)
    try:
        async with db.transaction(ctx.db) as cur:
            await cur.execute(LOCK_GOODS, (goods_id,))
            current = await cur.fetchone()
            if current is None:
                raise NotFound("That item does not exist.")
            await cur.execute(SET_PHOTO, (photo, goods_id))
    except BaseException:
        path.unlink(missing_ok=True)  # not awaited: this runs on cancellation too
        raise
    await _remove_photo(ctx.settings, current["photo"])
    return await admin_get_goods(ctx, goods_id)
