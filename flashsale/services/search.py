"""Goods search through an n-gram index of our own: parts of words, category names, Chinese text.

MariaDB has no n-gram FULLTEXT parser, and InnoDB's FULLTEXT index finds whole words (or their
prefixes) of 3+ letters only. So every goods' searchable text (name, brand and model, category
name) is cut into grams kept in `goods_search` (gram, goods_id, field), whose primary key answers
a query: the goods that hold every gram of the query, scored by where the grams were found, then
their rows are read by primary key. No search ever reads `goods` from end to end.

Text is lowercased and accent-folded (NFKD without marks; full-width letters become ASCII).
- a word of letters or digits, padded with a space on each side, gives its trigrams plus its
  first letter after the space (" phone " -> " p", " ph", "pho", "hon", "one", "ne ");
  so a query word of 3+ letters matches inside words, and a shorter one matches word starts;
- any other symbol (`%`, `_`, `-`) is a one-character word of its own;
- CJK text (no spaces between words) gives its bigrams and its single characters.
The index is written in the same transaction as the goods (index_goods, reindex_category); rows go
with their goods through the foreign key's ON DELETE CASCADE.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from flashsale import db
from flashsale.context import Context

# field -> score of one gram found in it: a name hit outranks a brand hit, which outranks a category's
NAME, MAKE, CATEGORY = 1, 2, 3
WEIGHTS = {NAME: 10, MAKE: 4, CATEGORY: 2}
INSERT_BATCH = 5000  # grams per INSERT statement
BACKFILL_BATCH = 500  # goods per backfill step
SUGGESTIONS = 4
MAX_QUERY_GRAMS = 60  # a longer query is cut: its first grams already pick the goods

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
TOKENS = re.compile(rf"(?P<cjk>[{CJK}]+)|(?P<word>[^\W_{CJK}]+)|(?P<symbol>[^\s\w]|_)")

_SCORE = "SUM(ELT(s.field, {}))".format(", ".join(str(WEIGHTS[f]) for f in (NAME, MAKE, CATEGORY)))
# -> (goods_id, score) of the goods holding every required gram: a range read of the primary key
# per gram; {grams} and {required} are lists of %s. Required gram i sets bit i (FIELD gives 0 to a
# bonus gram: bit 0, shifted away); a bit mask is far cheaper than COUNT(DISTINCT) per group
MATCHES = f"""
SELECT s.goods_id, {_SCORE} AS score
  FROM goods_search s
 WHERE s.gram IN ({{grams}})
 GROUP BY s.goods_id
HAVING BIT_OR(1 << FIELD(s.gram, {{required}})) >> 1 = %s"""
# -> a page of the matching goods with `total`, the number of them all; STRAIGHT_JOIN reads the
# matches first and each goods row by its primary key (forced: with a category filter the optimizer
# would rather read the whole category for each match). {columns} and {order} come from the caller
# (catalog's constants), {where} only from the fragment below
FIND_GOODS = """
SELECT {columns}, COUNT(*) OVER () AS total
  FROM ({matches}) m STRAIGHT_JOIN goods g FORCE INDEX (PRIMARY) ON g.id = m.goods_id
 {where} ORDER BY {order} LIMIT %s OFFSET %s"""
# -> the number of matching goods (asked only when a page lies past the last one)
COUNT_FOUND = """
SELECT COUNT(*) FROM ({matches}) m STRAIGHT_JOIN goods g FORCE INDEX (PRIMARY) ON g.id = m.goods_id
 {where}"""
BY_CATEGORY = "WHERE g.category_id = %s"
# the ORDER BY head that ranks matches by relevance
BY_SCORE = "m.score DESC"
# -> the shop's (or a category's) best sellers (ix_goods_sales, ix_goods_category_sales)
BEST_SELLERS = "SELECT {columns} FROM goods g {where} ORDER BY g.sales DESC, g.id DESC LIMIT %s"

# -> {name, brand, model, category} of one goods, or None
GOODS_TEXT = """
SELECT g.name, g.brand, g.model, c.name AS category
  FROM goods g JOIN categories c ON c.id = g.category_id WHERE g.id = %s"""
# -> the next goods after an id with their text, for the backfill (keyset paging on PRIMARY)
GOODS_TEXT_AFTER = """
SELECT g.id, g.name, g.brand, g.model, c.name AS category
  FROM goods g JOIN categories c ON c.id = g.category_id WHERE g.id > %s ORDER BY g.id LIMIT %s"""
# -> the category's name, or None
CATEGORY_NAME = "SELECT name FROM categories WHERE id = %s"
# -> (id,) of every goods of a category (ix_goods_category_new)
CATEGORY_GOODS = "SELECT id FROM goods WHERE category_id = %s"
# every gram of one goods (ix_goods_search_goods)
DELETE_GOODS_GRAMS = "DELETE FROM goods_search WHERE goods_id = %s"
# the category grams of every goods of a category
DELETE_CATEGORY_GRAMS = """
DELETE s FROM goods_search s JOIN goods g ON g.id = s.goods_id
 WHERE g.category_id = %s AND s.field = %s"""
# {rows} is a list of (%s, %s, %s)
INSERT_GRAMS = "INSERT IGNORE INTO goods_search (gram, goods_id, field) VALUES {rows}"


# --- text to grams ------------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lowercase, without accents, full-width forms made plain (NFKC keeps Hangul whole)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", bare).casefold()


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, token) of folded text: kind is 'cjk', 'word' or 'symbol' (a symbol is a word too)."""
    found = []
    for match in TOKENS.finditer(fold(text)):
        kind = match.lastgroup
        found.append(("cjk" if kind == "cjk" else "word", match.group()))
    return found


def text_grams(text: str) -> set[str]:
    """Every gram the index keeps for a text."""
    grams: set[str] = set()
    for kind, token in tokens(text):
        if kind == "cjk":
            grams.update(token)
            grams.update(token[i:i + 2] for i in range(len(token) - 1))
        else:
            padded = f" {token} "
            grams.add(padded[:2])
            grams.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return grams


def query_grams(q: str) -> tuple[list[str], list[str]]:
    """(required, bonus) grams of a query: a match holds every required gram; bonus grams (a word's
    start and end) score a word that starts with, or is, the query word higher."""
    required: list[str] = []
    bonus: list[str] = []
    for kind, token in tokens(q):
        if kind == "cjk":
            required += [token] if len(token) == 1 else [token[i:i + 2] for i in range(len(token) - 1)]
        elif len(token) >= 3:
            required += [token[i:i + 3] for i in range(len(token) - 2)]
            bonus += [f" {token[:2]}", f"{token[-2:]} "]
        elif len(token) == 2:
            required.append(f" {token}")
            bonus.append(f"{token} ")
        else:
            required.append(f" {token}")
            bonus.append(f" {token} ")
    required = list(dict.fromkeys(required))[:MAX_QUERY_GRAMS]
    bonus = [g for g in dict.fromkeys(bonus) if g not in required][:MAX_QUERY_GRAMS]
    return required, bonus


def goods_grams(name: str, brand: str, model: str, category: str) -> set[tuple[str, int]]:
    """(gram, field) rows of one goods; a gram in the name is not repeated for the make."""
    name_grams = text_grams(name)
    make_grams = text_grams(f"{brand} {model}") - name_grams
    return ({(g, NAME) for g in name_grams} | {(g, MAKE) for g in make_grams}
            | {(g, CATEGORY) for g in text_grams(category)})


# --- writes (inside the caller's transaction) ---------------------------------------------------

async def _insert(cur, rows: Sequence[tuple[str, int, int]]) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start:start + INSERT_BATCH]
        sql = INSERT_GRAMS.format(rows=", ".join(["(%s, %s, %s)"] * len(batch)))
        await cur.execute(sql, [value for row in batch for value in row])


def _rows(goods_id: int, grams: Iterable[tuple[str, int]]) -> list[tuple[str, int, int]]:
    return [(gram, goods_id, field) for gram, field in sorted(grams)]


async def index_goods(cur, goods_id: int) -> None:
    """(Re)write one goods' grams from its current row: call it after every insert or update of
    goods, with the cursor of that write's transaction."""
    await cur.execute(DELETE_GOODS_GRAMS, (goods_id,))
    await cur.execute(GOODS_TEXT, (goods_id,))
    row = await cur.fetchone()
    if row is not None:
        await _insert(cur, _rows(goods_id, goods_grams(row["name"], row["brand"], row["model"],
                                                        row["category"])))


async def reindex_category(cur, category_id: int) -> None:
    """Rewrite the category grams of a category's goods: call it after a rename, in its transaction."""
    await cur.execute(CATEGORY_NAME, (category_id,))
    row = await cur.fetchone()
    await cur.execute(DELETE_CATEGORY_GRAMS, (category_id, CATEGORY))
    if row is None:
        return
    grams = sorted(text_grams(row["name"]))
    await cur.execute(CATEGORY_GOODS, (category_id,))
    goods_ids = [r["id"] for r in await cur.fetchall()]
    await _insert(cur, [(gram, goods_id, CATEGORY) for goods_id in goods_ids for gram in grams])


async def backfill(conn) -> int:
    """Index every goods (a migration step: 0003 made the table); returns how many were indexed."""
    from asyncmy.cursors import DictCursor

    done, last_id = 0, 0
    async with conn.cursor(DictCursor) as cur:
        while True:
            await cur.execute(GOODS_TEXT_AFTER, (last_id, BACKFILL_BATCH))
            batch = await cur.fetchall()
            if not batch:
                return done
            rows = []
            for r in batch:
                rows += _rows(r["id"], goods_grams(r["name"], r["brand"], r["model"], r["category"]))
            await _insert(cur, rows)
            done += len(batch)
            last_id = batch[-1]["id"]


# --- reads --------------------------------------------------------------------------------------

def find_query(q: str, *, columns: str, order_by: str, relevance_first: bool, category_id: int | None,
               ) -> tuple[str, str, list[Any]] | None:
    """(page SQL, count SQL, their arguments before LIMIT/OFFSET) of a search, or None when the
    query has nothing to search for (only spaces)."""
    required, bonus = query_grams(q)
    if not required:
        return None
    matches = MATCHES.format(grams=", ".join(["%s"] * (len(required) + len(bonus))),
                             required=", ".join(["%s"] * len(required)))
    args: list[Any] = [g.encode() for g in (*required, *bonus)]
    args += [g.encode() for g in required]
    args.append((1 << len(required)) - 1)
    where = ""
    if category_id is not None:
        where = BY_CATEGORY
        args.append(category_id)
    order = f"{BY_SCORE}, {order_by}" if relevance_first else order_by
    return (FIND_GOODS.format(columns=columns, matches=matches, where=where, order=order),
            COUNT_FOUND.format(matches=matches, where=where), args)


async def find_goods(ctx: Context, q: str, *, columns: str, order_by: str, relevance_first: bool,
                     category_id: int | None, page: int, per_page: int,
                     ) -> tuple[list[dict[str, Any]], int]:
    """A page of goods rows (`columns` of `goods g`) matching q, and how many match in all.
    relevance_first ranks by score before order_by (the best-selling sort)."""
    query = find_query(q, columns=columns, order_by=order_by, relevance_first=relevance_first,
                       category_id=category_id)
    if query is None:
        return [], 0
    page_sql, count_sql, args = query
    rows = await db.fetch_all(ctx.db, page_sql, (*args, per_page, (page - 1) * per_page))
    if rows:
        total = int(rows[0]["total"])
    elif page > 1:
        total = int(await db.fetch_value(ctx.db, count_sql, args))
    else:
        total = 0
    return rows, total


async def best_sellers(ctx: Context, *, columns: str, category_id: int | None = None,
                       limit: int = SUGGESTIONS) -> list[dict[str, Any]]:
    """What to suggest when nothing matches: the best sellers of the category, or of the shop."""
    where, args = ("WHERE g.category_id = %s", [category_id]) if category_id is not None else ("", [])
    return await db.fetch_all(ctx.db, BEST_SELLERS.format(columns=columns, where=where), (*args, limit))
