"""Goods search: parts of words, category names, Chinese text, ranking, suggestions, the n-gram
index kept with every goods write, its backfill, and plans that never scan `goods`."""
from __future__ import annotations

import asyncio
import itertools
import shutil

import asyncmy
import pytest

from flashsale import db
from flashsale.db import connect_kwargs
from flashsale.migrate import MIGRATIONS_DIR, migrate
from flashsale.services import catalog, search
from tests.support.isolation import RUN_ID, drop_database, query

_words = itertools.count(1)


def word(stem: str = "kw") -> str:
    """A word (letters and digits) no other test uses."""
    return f"{stem}{RUN_ID}x{next(_words)}"


async def goods_list(client, **query) -> dict:
    r = await client.get("/api/goods", params={k: str(v) for k, v in query.items()})
    assert r.status == 200, await r.text()
    return (await r.json())["data"]


def ids(data: dict) -> list[int]:
    return [g["id"] for g in data["items"]]


# --- grams ----------------------------------------------------------------------------------------

def test_text_is_folded_and_cut_into_trigrams_start_grams_and_cjk_bigrams():
    assert search.fold("Crème BRÛLÉE ｐｈｏｎｅ") == "creme brulee phone"
    assert search.text_grams("TV") == {" t", " tv", "tv "}
    assert search.text_grams("phone") == {" p", " ph", "pho", "hon", "one", "ne "}
    assert search.text_grams("手机") == {"手", "机", "手机"}
    assert search.text_grams("100%") == {" 1", " 10", "100", "00 ", " %", " % "}


def test_a_query_needs_inner_grams_and_ranks_word_starts_and_whole_words_higher():
    assert search.query_grams("Phone") == (["pho", "hon", "one"], [" ph", "ne "])
    assert search.query_grams("tv") == ([" tv"], ["tv "])
    assert search.query_grams("蓝牙耳机") == (["蓝牙", "牙耳", "耳机"], [])
    assert search.query_grams("机") == (["机"], [])
    assert search.query_grams("  ") == ([], [])


# --- what a shopper finds -------------------------------------------------------------------------

async def test_phone_finds_smartphones_headphones_and_the_phones_category(client, factory):
    phones = await factory.category(word("Phones"))
    in_phones = await factory.goods(category_id=phones, name="Aurora X2 128 GB")
    other = await factory.category(word("Audio"))
    smart = await factory.goods(category_id=other, name="Nimbus Smartphone 5G")
    smart2 = await factory.goods(category_id=other, name="Pebble SMARTPHONE mini")
    head = await factory.goods(category_id=other, name="Hush Headphones")
    unrelated = await factory.goods(category_id=other, name="Kettle 1.7 L")
    found = ids(await goods_list(client, q="phone", per_page=100))
    assert {in_phones, smart, smart2, head} <= set(found)
    assert unrelated not in found
    # a name hit ranks above a goods found through its category's name only
    assert found.index(in_phones) > max(found.index(smart), found.index(smart2), found.index(head))
    assert ids(await goods_list(client, q="phone", category_id=phones)) == [in_phones]


async def test_chinese_text_is_found_without_spaces_between_words(client, factory):
    category = await factory.category(word("cn"))
    earbuds = await factory.goods(category_id=category, name="无线蓝牙耳机 Pro")
    phone = await factory.goods(category_id=category, name="华为手机Mate60")
    phones = await factory.category("手机" + word("c"))
    in_phones = await factory.goods(category_id=phones, name="Aurora X3")
    assert ids(await goods_list(client, q="蓝牙耳机", category_id=category)) == [earbuds]
    assert ids(await goods_list(client, q="耳", category_id=category)) == [earbuds]
    assert ids(await goods_list(client, q="耳蓝", category_id=category)) == []
    assert ids(await goods_list(client, q="mate60", category_id=category)) == [phone]
    found = ids(await goods_list(client, q="手机", per_page=100))
    assert {phone, in_phones} <= set(found) and earbuds not in found


async def test_parts_of_words_accents_and_case_are_found(client, factory):
    category = await factory.category(word("cat"))
    creme = await factory.goods(category_id=category, name="Crème Brûlée Torch")
    watch = await factory.goods(category_id=category, name="Smartwatch Ultra")
    assert ids(await goods_list(client, q="CREME brul", category_id=category)) == [creme]
    assert ids(await goods_list(client, q="artwat", category_id=category)) == [watch]
    assert ids(await goods_list(client, q="ｗａｔｃｈ", category_id=category)) == [watch]
    assert ids(await goods_list(client, q="sm", category_id=category)) == [watch]  # a word start
    assert ids(await goods_list(client, q="watch torch", category_id=category)) == []  # every word


async def test_matches_rank_by_relevance_then_sales_unless_sorted_by_price(client, factory):
    u = word("rk")
    home = await factory.category(word("cat"))
    exact_few = await factory.goods(category_id=home, name=f"{u} stand", sales=5, price="30.00")
    exact_many = await factory.goods(category_id=home, name=f"Mini {u}", sales=50, price="40.00")
    inside = await factory.goods(category_id=home, name=f"super{u}er", sales=900, price="10.00")
    by_category = await factory.goods(category_id=await factory.category(f"{u} things"), sales=999,
                                      price="20.00")
    data = await goods_list(client, q=u)
    assert ids(data) == [exact_many, exact_few, inside, by_category]
    assert data["total"] == 4 and "suggestions" not in data
    cheap_first = await goods_list(client, q=u, sort="price")
    assert ids(cheap_first) == [inside, by_category, exact_few, exact_many]
    page2 = await goods_list(client, q=u, per_page=3, page=2)
    assert ids(page2) == [by_category] and page2["total"] == 4 and page2["pages"] == 2
    past_end = await goods_list(client, q=u, per_page=3, page=5)
    assert ids(past_end) == [] and past_end["total"] == 4


async def test_nothing_found_says_so_and_suggests_best_sellers(client, factory):
    category = await factory.category(word("cat"))
    low = await factory.goods(category_id=category, name="Low seller", sales=1)
    top = await factory.goods(category_id=category, name="Top seller", sales=10**6)
    q = word("nothing")
    r = await client.get("/api/goods", params={"q": q, "category_id": str(category)})
    body = await r.json()
    assert r.status == 200 and q in body["msg"]
    assert body["data"]["total"] == 0 and body["data"]["items"] == []
    assert [g["id"] for g in body["data"]["suggestions"]] == [top, low]
    shop_wide = await goods_list(client, q=q)
    best = await goods_list(client, sort="sales", per_page=search.SUGGESTIONS)
    assert [g["id"] for g in shop_wide["suggestions"]] == ids(best)
    html = await (await client.get("/", params={"q": q})).text()
    assert 'data-testid="no-goods"' in html and 'data-testid="suggestions"' in html
    assert f"No goods match “{q}” — best sellers:" in html and f'href="/goods/{ids(best)[0]}"' in html


# --- the index follows every write ----------------------------------------------------------------

async def test_goods_and_category_writes_keep_the_index_in_step(admin_client, ctx):
    client, _, headers = admin_client
    old, new, cat_old, cat_new = word("old"), word("new"), word("co"), word("cn")
    r = await client.post("/api/admin/categories", json={"name": cat_old}, headers=headers)
    category = (await r.json())["data"]["category"]["id"]
    r = await client.post("/api/admin/goods", headers=headers, json={
        "category_id": category, "name": f"{old} lamp", "price": "9.90", "brand": word("brand")})
    assert r.status == 201, await r.text()
    goods = (await r.json())["data"]["goods"]
    assert ids(await goods_list(client, q=old)) == [goods["id"]]
    assert ids(await goods_list(client, q=goods["brand"][2:])) == [goods["id"]]  # brand, inside a word

    r = await client.put(f"/api/admin/goods/{goods['id']}", json={"name": f"{new} lamp"}, headers=headers)
    assert r.status == 200, await r.text()
    assert ids(await goods_list(client, q=old)) == []
    assert ids(await goods_list(client, q=new)) == [goods["id"]]

    assert ids(await goods_list(client, q=cat_old)) == [goods["id"]]
    r = await client.put(f"/api/admin/categories/{category}", json={"name": cat_new}, headers=headers)
    assert r.status == 200, await r.text()
    assert ids(await goods_list(client, q=cat_old)) == []
    assert ids(await goods_list(client, q=cat_new)) == [goods["id"]]

    r = await client.delete(f"/api/admin/goods/{goods['id']}", headers=headers)
    assert r.status == 200, await r.text()
    assert ids(await goods_list(client, q=new)) == []
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM goods_search WHERE goods_id = %s",
                                (goods["id"],)) == 0


# --- the migration's backfill and the plans at shop size -----------------------------------------

GOODS_COUNT = 5000
FILL = [
    "INSERT INTO categories (id, name, description) SELECT seq, CONCAT('Cat', seq), '' FROM seq_1_to_19",
    "INSERT INTO categories (id, name, description) VALUES (20, 'Phones', ''), (21, '手机', '')",
    f"""INSERT INTO goods (category_id, name, description, price, stock, sales, brand)
        SELECT 1 + seq % 21,
               CONCAT(ELT(1 + seq % 5, 'Aurora Smartphone ', 'Nimbus laptop ', 'Pebble speaker ',
                                     'Hush Headphones ', '无线蓝牙耳机 '), seq),
               '', (seq * 37) % 5000 + 0.99, 100, (seq * 91) % 3000, ELT(1 + seq % 3, 'Acme', 'Zeta', '')
          FROM seq_1_to_{GOODS_COUNT}""",
]


async def _run(settings, statements) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings))
    try:
        async with conn.cursor() as cur:
            for statement in statements:
                await cur.execute(statement)
    finally:
        await conn.ensure_closed()


@pytest.fixture(scope="module")
def plan_db(migrated_db, tmp_path_factory):
    """Goods made before 0003, then `migrate` up to date: the backfill must index them."""
    settings = migrated_db.replace(db_name=migrated_db.db_name + "_search")
    before = tmp_path_factory.mktemp("migrations")
    for path in MIGRATIONS_DIR.glob("000[12]_*.sql"):
        shutil.copy(path, before)
    asyncio.run(drop_database(settings))
    asyncio.run(migrate(settings, before))
    asyncio.run(_run(settings, FILL))
    asyncio.run(migrate(settings))
    asyncio.run(_run(settings, ["ANALYZE TABLE goods, goods_search"]))
    yield settings
    asyncio.run(drop_database(settings))


def _find(q, category_id=None, sort="sales", order=None):
    order_by = catalog.ORDER_BY[(sort, order or catalog.DEFAULT_ORDER[sort])]
    return search.find_query(q, columns=catalog.SUMMARY_COLUMNS, order_by=order_by,
                             relevance_first=sort == "sales", category_id=category_id)


async def test_migration_indexes_the_goods_already_there(plan_db):
    like = await query(plan_db, "SELECT COUNT(*) AS n FROM goods g JOIN categories c ON c.id = g.category_id "
                                 "WHERE g.name LIKE %s OR c.name LIKE %s", ("%phone%", "%phone%"))
    page_sql, _, args = _find("phone")
    rows = await query(plan_db, page_sql, (*args, 20, 0))
    # Smartphone and Headphones goods, and the Phones category's other goods
    assert int(rows[0]["total"]) == like[0]["n"] > 2 * GOODS_COUNT // 5
    assert {r["name"].split()[1] for r in rows} <= {"Smartphone", "Headphones"}  # name hits first
    _, count_sql, args = _find("蓝牙耳机")
    assert list((await query(plan_db, count_sql, args))[0].values()) == [GOODS_COUNT // 5]


SEARCHES = [
    {"q": "phone"}, {"q": "artpho"}, {"q": "蓝牙耳机"}, {"q": "耳"}, {"q": "手机"}, {"q": "Phones"},
    {"q": "tv"}, {"q": "acme spea"}, {"q": "phone", "category_id": 3},
    {"q": "phone", "sort": "price"}, {"q": "phone", "sort": "price", "order": "desc"},
    {"q": "phone", "sort": "new"}, {"q": "phone", "sort": "sales", "order": "asc"},
    {"q": "laptop", "category_id": 5, "sort": "new"},
]


@pytest.mark.parametrize("filters", SEARCHES, ids=lambda f: "-".join(map(str, f.values())))
async def test_no_search_scans_goods(plan_db, filters):
    page_sql, count_sql, args = _find(**filters)
    for sql, sql_args in ((page_sql, (*args, 20, 40)), (count_sql, args)):
        plan = await query(plan_db, "EXPLAIN " + sql, sql_args)
        tables = {p["table"]: p for p in plan}
        # each match's goods row by its primary key, one row per match
        goods = tables["g"]
        assert goods["type"] == "eq_ref" and goods["key"] == "PRIMARY", plan
        assert goods["ref"].endswith("m.goods_id") and int(goods["rows"]) == 1, plan
        assert tables["s"]["type"] in ("range", "ref") and tables["s"]["key"] == "PRIMARY", plan
        assert all(p["type"] not in ("ALL", "index") for p in plan if p["table"] in ("g", "s")), plan
        assert set(tables) <= {"g", "s"} | {p["table"] for p in plan if p["table"].startswith("<derived")}


async def test_suggestions_read_the_best_sellers_index(plan_db):
    for category_id, index in ((None, "ix_goods_sales"), (3, "ix_goods_category_sales")):
        where, args = ("WHERE g.category_id = %s", [category_id]) if category_id else ("", [])
        plan = await query(plan_db, "EXPLAIN " + search.BEST_SELLERS.format(
            columns=catalog.SUMMARY_COLUMNS, where=where), (*args, search.SUGGESTIONS))
        assert plan[0]["key"] == index and "filesort" not in (plan[0]["Extra"] or ""), plan
