"""The shop's catalog: categories, goods lists (filters, sort, pages, search), details and pages."""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from decimal import Decimal

import asyncmy
import pytest
from asyncmy.cursors import DictCursor

from flashsale import db
from flashsale.db import connect_kwargs
from flashsale.jsonio import utcnow
from flashsale.migrate import migrate
from flashsale.services import catalog, catalog_admin
from flashsale.static_files import static_url

from tests.support.isolation import drop_database, RUN_ID

_words = itertools.count(1)


def word(stem: str = "zeta") -> str:
    """A name word no other test uses, made of letters and digits only (a FULLTEXT token)."""
    return f"{stem}{RUN_ID}q{next(_words)}"


async def goods_list(client, **query) -> dict:
    r = await client.get("/api/goods", params={k: str(v) for k, v in query.items()})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["code"] == 200
    return body["data"]


def ids(data: dict) -> list[int]:
    return [g["id"] for g in data["items"]]


async def set_photo(ctx, goods_id: int, photo: str | None) -> None:
    await db.execute(ctx.db, "UPDATE goods SET photo = %s WHERE id = %s", (photo, goods_id))


async def add_sale(ctx, goods_id: int, *, starts_in_s: int, lasts_s: int = 3600, price: str = "9.90") -> int:
    start = utcnow() + dt.timedelta(seconds=starts_in_s)
    async with db.transaction(ctx.db) as cur:
        await cur.execute(
            "INSERT INTO flash_sales (goods_id, price, total_stock, per_user_limit, start_time, end_time) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (goods_id, Decimal(price), 50, 1, start, start + dt.timedelta(seconds=lasts_s)))
        return cur.lastrowid


# --- categories -----------------------------------------------------------------------------------

async def test_categories_list_names_each_with_its_goods_count(client, factory):
    full = await factory.category(name=word("cat"))
    empty = await factory.category(name=word("cat"))
    for _ in range(3):
        await factory.goods(category_id=full)
    r = await client.get("/api/categories")
    assert r.status == 200
    body = await r.json()
    mine = {c["id"]: c for c in body["data"]["items"] if c["id"] in (full, empty)}
    assert mine[full]["goods_count"] == 3
    assert mine[empty] == {"id": empty, "name": mine[empty]["name"], "description": "test category",
                           "goods_count": 0}
    # sorted by name as MySQL's collation compares them; punctuation (other tests' "_" names) sorts
    # differently there than in Python, so the order is checked on plain names
    names = [c["name"] for c in body["data"]["items"] if c["name"].replace(" ", "").isalnum() and c["name"].isascii()]
    assert len(names) >= 2 and names == sorted(names, key=str.lower)


# --- goods list -----------------------------------------------------------------------------------

async def test_goods_list_items_are_summaries(client, factory):
    category = await factory.category()
    goods_id = await factory.goods(category_id=category, price="19.90", stock=7, sales=3, name="Summary test")
    data = await goods_list(client, category_id=category)
    assert data == {
        "items": [{"id": goods_id, "name": "Summary test", "price": "19.90", "original_price": "29.90",
                   "stock": 7, "sales": 3, "photo_url": "/static/img/placeholder.svg",
                   "category_id": category}],
        "page": 1, "per_page": 20, "total": 1, "pages": 1,
    }


async def test_goods_list_filters_by_category(client, factory):
    mine, other = await factory.category(), await factory.category()
    a = await factory.goods(category_id=mine)
    b = await factory.goods(category_id=mine)
    await factory.goods(category_id=other)
    data = await goods_list(client, category_id=mine, sort="new")
    assert ids(data) == [b, a]
    assert data["total"] == 2


async def test_goods_list_sorts_by_sales_by_default_best_first(client, factory):
    category = await factory.category()
    low = await factory.goods(category_id=category, sales=1)
    high = await factory.goods(category_id=category, sales=50)
    tie_old = await factory.goods(category_id=category, sales=10)
    tie_new = await factory.goods(category_id=category, sales=10)
    assert ids(await goods_list(client, category_id=category)) == [high, tie_new, tie_old, low]
    assert ids(await goods_list(client, category_id=category, sort="sales", order="asc")) == [
        low, tie_old, tie_new, high]


async def test_goods_list_sorts_by_price_cheapest_first_or_dearest_with_order_desc(client, factory):
    category = await factory.category()
    mid = await factory.goods(category_id=category, price="20.00")
    cheap = await factory.goods(category_id=category, price="5.50")
    dear = await factory.goods(category_id=category, price="199.00")
    assert ids(await goods_list(client, category_id=category, sort="price")) == [cheap, mid, dear]
    assert ids(await goods_list(client, category_id=category, sort="price", order="desc")) == [dear, mid, cheap]


async def test_goods_list_sorts_by_newest(client, factory):
    category = await factory.category()
    made = [await factory.goods(category_id=category) for _ in range(3)]
    assert ids(await goods_list(client, category_id=category, sort="new")) == made[::-1]


async def test_goods_list_sorts_the_whole_shop_without_a_category(client, factory):
    await factory.goods(sales=5)
    await factory.goods(sales=7)
    data = await goods_list(client, per_page=100)
    sales = [g["sales"] for g in data["items"]]
    assert sales == sorted(sales, reverse=True)
    prices = [Decimal(g["price"]) for g in (await goods_list(client, sort="price", per_page=100))["items"]]
    assert prices == sorted(prices)
    newest = ids(await goods_list(client, sort="new", per_page=100))
    assert newest == sorted(newest, reverse=True)


async def test_goods_list_pages_through_all_items_once(client, factory):
    category = await factory.category()
    made = [await factory.goods(category_id=category) for _ in range(5)]
    pages = [await goods_list(client, category_id=category, sort="new", per_page=2, page=n) for n in (1, 2, 3)]
    assert [ids(p) for p in pages] == [made[4:2:-1], made[2:0:-1], made[:1]]
    assert [(p["page"], p["per_page"], p["total"], p["pages"]) for p in pages] == [
        (1, 2, 5, 3), (2, 2, 5, 3), (3, 2, 5, 3)]
    beyond = await goods_list(client, category_id=category, per_page=2, page=4)
    assert beyond["items"] == [] and beyond["total"] == 5


async def test_goods_list_caps_per_page_at_100(client, factory):
    data = await goods_list(client, per_page=1000)
    assert data["per_page"] == 100


async def test_goods_list_refuses_unknown_sort_order_and_bad_category(client):
    r = await client.get("/api/goods", params={"sort": "cheapest", "order": "up", "category_id": "x"})
    assert r.status == 400, await r.text()
    body = await r.json()
    assert body["data"]["reason"] == "validation"
    assert set(body["data"]["errors"]) == {"sort", "order", "category_id"}


async def test_unknown_category_lists_nothing(client):
    data = await goods_list(client, category_id=4_000_000_000)
    assert data == {"items": [], "page": 1, "per_page": 20, "total": 0, "pages": 0}


# --- search ---------------------------------------------------------------------------------------

async def test_search_finds_goods_by_word_prefix_in_any_case(client, factory):
    brand = word("aurora")
    category = await factory.category()
    phone = await factory.goods(category_id=category, name=f"{brand.capitalize()} Smartphone 256 GB")
    case = await factory.goods(category_id=category, name=f"{brand} phone case")
    await factory.goods(category_id=category, name="Something else entirely")
    assert sorted(ids(await goods_list(client, q=brand.upper()))) == [phone, case]
    assert ids(await goods_list(client, q=f"{brand} smartph")) == [phone]
    assert ids(await goods_list(client, q=brand[:-1])) != []  # a prefix of the word
    assert ids(await goods_list(client, q=f"{brand} missingword")) == []


async def test_search_combines_with_category_and_sort(client, factory):
    brand = word("nimbus")
    mine, other = await factory.category(), await factory.category()
    cheap = await factory.goods(category_id=mine, name=f"{brand} tablet", price="10.00")
    dear = await factory.goods(category_id=mine, name=f"{brand} laptop", price="99.00")
    await factory.goods(category_id=other, name=f"{brand} keyboard")
    data = await goods_list(client, q=brand, category_id=mine, sort="price", order="desc")
    assert ids(data) == [dear, cheap]
    assert data["total"] == 2


async def test_search_with_short_or_non_latin_words_matches_inside_names(client, factory):
    category = await factory.category()
    tv = await factory.goods(category_id=category, name="Wall mount for a TV")
    earbuds = await factory.goods(category_id=category, name="无线蓝牙耳机 Pro")
    assert ids(await goods_list(client, q="tv", category_id=category)) == [tv]
    assert ids(await goods_list(client, q="蓝牙", category_id=category)) == [earbuds]
    assert ids(await goods_list(client, q="for a", category_id=category)) == [tv]


async def test_search_treats_like_wildcards_as_plain_characters(client, factory):
    category = await factory.category(word("cat"))  # no `_` in it: category names are searched too
    percent = await factory.goods(category_id=category, name="Cotton 100% shirt")
    underscore = await factory.goods(category_id=category, name="snake_case mug")
    await factory.goods(category_id=category, name="Cotton 1000 shirt")
    assert ids(await goods_list(client, q="%", category_id=category)) == [percent]
    assert ids(await goods_list(client, q="_", category_id=category)) == [underscore]


@pytest.mark.parametrize("q, fragment, argument", [
    ("Aurora phone", catalog.BY_NAME_WORDS, "+aurora* +phone*"),
    ("  USB   charger ", catalog.BY_NAME_WORDS, "+usb* +charger*"),
    ("tv", catalog.BY_NAME_LIKE, "%tv%"),
    ("stand for the hall", catalog.BY_NAME_LIKE, "%stand for the hall%"),
    ("蓝牙耳机", catalog.BY_NAME_LIKE, "%蓝牙耳机%"),
    ("USB-C", catalog.BY_NAME_LIKE, "%USB-C%"),
    ("50%_off\\", catalog.BY_NAME_LIKE, "%50\\%\\_off\\\\%"),
    ('"+evil* -(xyz)', catalog.BY_NAME_WORDS, "+evil* +xyz*"),
])
def test_name_search_uses_the_fulltext_index_only_for_indexed_words(q, fragment, argument):
    assert catalog.name_condition(" ".join(q.split())) == (fragment, argument)


# a shop-sized catalog: on a handful of rows every plan is as good, so plans are checked on 20,000
FILL_CATALOG = [
    "INSERT INTO categories (name, description) SELECT CONCAT('cat', seq), '' FROM seq_1_to_20",
    """INSERT INTO goods (category_id, name, description, price, stock, sales)
       SELECT 1 + seq % 20,
              CONCAT(ELT(1 + seq % 4, 'Aurora phone ', 'Nimbus laptop ', 'Pebble speaker ', 'Hush headset '), seq),
              '', (seq * 37) % 5000 + 0.99, 100, (seq * 91) % 3000
         FROM seq_1_to_20000""",
    "ANALYZE TABLE goods",
]


async def _fill(settings) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings))
    try:
        async with conn.cursor() as cur:
            for statement in FILL_CATALOG:
                await cur.execute(statement)
                await cur.fetchall()
    finally:
        await conn.ensure_closed()


@pytest.fixture(scope="module")
def plan_db(migrated_db):
    """A database of its own, built by the real migrations and filled like a real shop."""
    settings = migrated_db.replace(db_name=migrated_db.db_name + "_plan")
    asyncio.run(drop_database(settings))
    asyncio.run(migrate(settings))
    asyncio.run(_fill(settings))
    yield settings
    asyncio.run(drop_database(settings))


EXPLAINED = [
    # (filters, the index that must serve the page query)
    ({"sort": "sales"}, "ix_goods_sales"),
    ({"sort": "price"}, "ix_goods_price"),
    ({"sort": "price", "order": "desc"}, "ix_goods_price"),
    ({"sort": "new"}, "PRIMARY"),
    ({"sort": "sales", "category_id": 3}, "ix_goods_category_sales"),
    ({"sort": "price", "category_id": 3}, "ix_goods_category_price"),
    ({"sort": "price", "order": "desc", "category_id": 3}, "ix_goods_category_price"),
    ({"sort": "new", "category_id": 3}, "ix_goods_category_new"),
    ({"sort": "sales", "q": "aurora"}, "ft_goods_name"),
    ({"sort": "sales", "q": "aurora", "category_id": 3}, "ft_goods_name"),
]


@pytest.mark.parametrize("filters, index", EXPLAINED)
async def test_each_goods_list_query_reads_an_index_without_sorting(plan_db, filters, index):
    sort = filters["sort"]
    order_by = catalog.ORDER_BY[(sort, filters.get("order", catalog.DEFAULT_ORDER[sort]))]
    where, args = catalog._where(filters.get("category_id"), filters.get("q", ""))
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(plan_db))
    try:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute("EXPLAIN " + catalog.LIST_GOODS.format(where=where, order=order_by),
                              (*args, 20, 40))
            plan = await cur.fetchone()
            await cur.execute("EXPLAIN " + catalog.COUNT_GOODS.format(where=where), args)
            count_plan = await cur.fetchone()
    finally:
        await conn.ensure_closed()
    assert plan["key"] == index, plan
    assert count_plan["key"] is not None, count_plan
    if "q" not in filters:  # a name search sorts its matches; every other list reads them in order
        assert "filesort" not in (plan["Extra"] or ""), plan
        assert plan["type"] in ("index", "ref"), plan


@pytest.mark.parametrize("category_id, q, index", [
    (None, "", "PRIMARY"), (3, "", "ix_goods_category_new"), (None, "aurora", "ft_goods_name"),
])
async def test_admin_goods_list_reads_goods_first_in_index_order(plan_db, category_id, q, index):
    where, args = catalog._where(category_id, q)
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(plan_db))
    try:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute("EXPLAIN " + catalog.ADMIN_LIST_GOODS.format(where=where), (*args, 20, 0))
            plan = await cur.fetchall()
    finally:
        await conn.ensure_closed()
    assert [(p["table"], p["key"]) for p in plan] == [("g", index), ("c", "PRIMARY")], plan
    if not q:
        assert "filesort" not in (plan[0]["Extra"] or ""), plan


# --- goods details --------------------------------------------------------------------------------

async def test_goods_detail_has_details_category_related_and_no_sale(client, ctx, factory):
    category = await factory.category(name=word("cat"))
    goods = await catalog_admin.create_goods(ctx, {
        "category_id": category, "name": "Hush Pro Headphones", "description": "Quiet.", "price": "1999.00",
        "original_price": "2499.00", "stock": 110, "brand": "Hush", "model": "Pro", "weight": "250 g",
        "dimensions": "190 x 170 x 80 mm", "material": "Leather", "warranty": "2 years"})
    await set_photo(ctx, goods["id"], "goods/abc.png")
    r = await client.get(f"/api/goods/{goods['id']}")
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "ok", "data": {
        "id": goods["id"], "name": "Hush Pro Headphones", "description": "Quiet.", "price": "1999.00",
        "original_price": "2499.00", "stock": 110, "sales": 0, "photo_url": "/static/uploads/goods/abc.png",
        "brand": "Hush", "model": "Pro", "weight": "250 g", "dimensions": "190 x 170 x 80 mm",
        "material": "Leather", "warranty": "2 years",
        "category": {"id": category, "name": (await r.json())["data"]["category"]["name"]},
        "related": [], "flash_sale": None,
    }}


async def test_related_goods_are_four_best_sellers_of_the_same_category_but_itself(client, factory):
    category = await factory.category()
    goods_id = await factory.goods(category_id=category, sales=1000)
    others = [await factory.goods(category_id=category, sales=s) for s in (5, 40, 10, 30, 20)]
    await factory.goods(sales=5000)  # another category
    r = await client.get(f"/api/goods/{goods_id}")
    related = (await r.json())["data"]["related"]
    assert [g["id"] for g in related] == [others[1], others[3], others[4], others[2]]
    assert set(related[0]) == {"id", "name", "price", "original_price", "stock", "sales", "photo_url",
                               "category_id"}


async def test_goods_detail_carries_its_live_flash_sale(client, ctx, factory):
    goods_id = await factory.goods()
    await add_sale(ctx, goods_id, starts_in_s=-60, lasts_s=30)  # ended: not shown
    sale_id = await add_sale(ctx, goods_id, starts_in_s=-60)
    r = await client.get(f"/api/goods/{goods_id}")
    sale = (await r.json())["data"]["flash_sale"]
    assert sale["id"] == sale_id
    assert sale["state"] == "live"
    assert sale["price"] == "9.90"


@pytest.mark.parametrize("path", ["/api/goods/999999999", "/api/goods/abc", "/api/goods/-1"])
async def test_unknown_or_malformed_goods_id_is_not_found(client, path):
    r = await client.get(path)
    assert r.status == 404
    assert (await r.json())["data"] == {"reason": "not_found"}


# --- pages ----------------------------------------------------------------------------------------

async def test_home_page_shows_a_goods_grid_with_filters(client, factory):
    category = await factory.category(name=word("Homecat"))
    goods_id = await factory.goods(category_id=category, name="Pebble Speaker", price="299.00", sales=12)
    r = await client.get("/", params={"category_id": category})
    assert r.status == 200
    html = await r.text()
    assert f'data-testid="goods-card-{goods_id}"' in html
    assert "Pebble Speaker" in html and "¥299.00" in html and "¥309.00" in html and "12 sold" in html
    assert 'name="q"' in html and 'name="sort"' in html
    assert f'href="/?category_id={category}"' in html
    assert f'href="/goods/{goods_id}"' in html


async def test_home_page_filters_searches_and_pages(client, factory):
    brand = word("pebble")
    category = await factory.category()
    made = [await factory.goods(category_id=category, name=f"{brand} item {n}") for n in range(13)]
    r = await client.get("/", params={"q": brand, "sort": "new"})
    html = await r.text()
    assert f"goods-card-{made[12]}" in html and f"goods-card-{made[1]}" in html
    assert f"goods-card-{made[0]}" not in html  # 12 a page: the oldest is on page 2
    assert f"?q={brand}&amp;sort=new&amp;page=2" in html
    r = await client.get("/", params={"q": brand, "sort": "new", "page": "2"})
    html = await r.text()
    assert f"goods-card-{made[0]}" in html and f"goods-card-{made[1]}" not in html


async def test_home_page_sorts_by_price_descending(client, factory):
    category = await factory.category()
    cheap = await factory.goods(category_id=category, price="1.00")
    dear = await factory.goods(category_id=category, price="2.00")
    html = await (await client.get("/", params={"category_id": category, "sort": "price-desc"})).text()
    assert html.index(f"goods-card-{dear}") < html.index(f"goods-card-{cheap}")
    assert '<option value="price-desc" selected>' in html


async def test_home_page_ignores_bad_filters(client):
    r = await client.get("/", params={"sort": "nonsense", "category_id": "abc", "page": "x"})
    assert r.status == 200


async def test_home_page_says_when_nothing_matches(client):
    html = await (await client.get("/", params={"q": word("nothing")})).text()
    assert 'data-testid="no-goods"' in html


async def test_home_page_shows_the_live_sales_strip(client, ctx, factory):
    goods_id = await factory.goods()
    sale_id = await add_sale(ctx, goods_id, starts_in_s=-5)
    html = await (await client.get("/")).text()
    assert 'data-testid="sales-strip"' in html
    assert f'href="/seckill/{sale_id}"' in html


async def test_categories_page_links_each_category_with_its_count(client, factory):
    category = await factory.category(name=word("Pagecat"))
    await factory.goods(category_id=category)
    html = await (await client.get("/categories")).text()
    assert f'href="/?category_id={category}"' in html
    assert "1 item<" in html


async def test_goods_page_shows_details_buy_form_and_related(client, ctx, factory):
    category = await factory.category()
    goods = await catalog_admin.create_goods(ctx, {
        "category_id": category, "name": "Morning Kettle", "description": "Boils water.", "price": "199.00",
        "original_price": "259.00", "stock": 5, "brand": "HomeJoy", "warranty": "1 year"})
    related = await factory.goods(category_id=category)
    html = await (await client.get(f"/goods/{goods['id']}")).text()
    assert "Morning Kettle" in html and "¥199.00" in html and "¥259.00" in html
    assert "HomeJoy" in html and "1 year" in html and "Boils water." in html
    assert f'action="/checkout/{goods["id"]}"' in html and 'method="get"' in html
    assert 'name="quantity"' in html and 'max="5"' in html and "Buy now" in html
    assert f"goods-card-{related}" in html
    assert "/static/img/placeholder.svg" in html
    assert 'data-testid="flash-sale-box"' not in html


async def test_goods_page_of_sold_out_goods_disables_buying(client, factory):
    goods_id = await factory.goods(stock=0)
    html = await (await client.get(f"/goods/{goods_id}")).text()
    assert "Sold out" in html and "Out of stock" in html


async def test_goods_page_shows_its_upcoming_flash_sale_with_a_countdown(client, ctx, factory):
    goods_id = await factory.goods()
    sale_id = await add_sale(ctx, goods_id, starts_in_s=600, price="4.50")
    html = await (await client.get(f"/goods/{goods_id}")).text()
    assert 'data-testid="flash-sale-box"' in html
    assert f'href="/seckill/{sale_id}"' in html and "¥4.50" in html
    assert 'data-countdown="' in html and static_url("js/shop.js") in html


async def test_unknown_goods_page_is_a_404_page(client):
    r = await client.get("/goods/999999999")
    assert r.status == 404
    assert "That item does not exist." in await r.text()


async def test_placeholder_picture_is_served(client):
    r = await client.get("/static/img/placeholder.svg")
    assert r.status == 200
    assert "<svg" in await r.text()
