"""The catalog as shoppers and admins read it: categories, goods lists and search, goods pages.

Changes are in catalog_admin.py, pictures on disk in goods_photos.py."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.errors import NotFound
from flashsale.services import search, seckill
from flashsale.services.goods_photos import photo_url
from flashsale.bodies import Body, Field

RELATED_COUNT = 4
MAX_QUERY_LEN = 100

SORTS = frozenset({"sales", "price", "new"})
ORDERS = frozenset({"asc", "desc"})
# the goods list's query string (besides q, page and per_page)
GOODS_QUERY = Body(Field.integer("category_id", 1, 2**32 - 1, required=False),
                   Field.choice("sort", SORTS, required=False, default="sales"),
                   Field.choice("order", ORDERS, required=False, doc="Default: desc, but asc for price."))
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

# specification columns: name, max length
SPEC_FIELDS = (("brand", 100), ("model", 100), ("weight", 64), ("dimensions", 100),
               ("material", 100), ("warranty", 100))


# --- JSON shapes -----------------------------------------------------------------------------

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
    clean = GOODS_QUERY.clean(query)
    category_id, sort, order = clean["category_id"], clean["sort"], clean["order"]
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


# --- admin reads -------------------------------------------------------------------------------

async def get_category(ctx: Context, category_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, CATEGORY_BY_ID, (category_id,))
    if row is None:
        raise NotFound("No such category.")
    return row


async def admin_list_categories(ctx: Context) -> list[dict[str, Any]]:
    return [admin_category_json(r) for r in await db.fetch_all(ctx.db, LIST_CATEGORIES)]


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
