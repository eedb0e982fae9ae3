"""Shop pages: the home page with the goods grid, the categories and one goods' page."""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.errors import Validation
from flashsale.jsonio import page_data
from flashsale.services import catalog, seckill
from flashsale.validate import page_params
from flashsale.views.common import id_of

routes = web.RouteTableDef()

PER_PAGE = 12  # a full grid of 2, 3 or 4 columns
SALES_STRIP = 8
# the page's sort select: value -> (sort, order, label)
SORT_CHOICES = {
    "sales": ("sales", "desc", "Best selling"),
    "price-asc": ("price", "asc", "Price: low to high"),
    "price-desc": ("price", "desc", "Price: high to low"),
    "new": ("new", "desc", "Newest"),
}


def shop_filters(query) -> dict[str, Any]:
    """The home page's filters; a bad value is dropped instead of failing the page."""
    raw = dict(query)
    choice = raw.get("sort", "sales")
    if choice not in SORT_CHOICES:
        choice = "sales"
    raw["sort"], raw["order"], _ = SORT_CHOICES[choice]
    try:
        filters = catalog.goods_filters(raw)
    except Validation as exc:
        filters = catalog.goods_filters({k: v for k, v in raw.items() if k not in exc.errors})
    return {**filters, "choice": choice}


async def sales_strip(ctx) -> list[dict[str, Any]]:
    """Live sales, then upcoming ones, at most SALES_STRIP."""
    live, _ = await seckill.list_sales(ctx, "live", 1, SALES_STRIP)
    upcoming: list[dict[str, Any]] = []
    if len(live) < SALES_STRIP:
        upcoming, _ = await seckill.list_sales(ctx, "upcoming", 1, SALES_STRIP - len(live))
    return live + upcoming


@routes.get("/", name="home")
@aiohttp_jinja2.template("shop/home.html")
async def home(request: web.Request):
    ctx = request.app[CTX]
    filters = shop_filters(request.query)
    page, _ = page_params(request)
    items, total = await catalog.list_goods(
        ctx, category_id=filters["category_id"], q=filters["q"], sort=filters["sort"],
        order=filters["order"], page=page, per_page=PER_PAGE)
    categories = await catalog.list_categories(ctx)
    # the query of the current view without the page: pagination and pills build on it
    link_query = {k: v for k, v in (("q", filters["q"]), ("category_id", filters["category_id"]),
                                    ("sort", filters["choice"] if filters["choice"] != "sales" else None))
                  if v}
    current = next((c for c in categories if c["id"] == filters["category_id"]), None)
    return {
        "goods": page_data(items, page, PER_PAGE, total), "categories": categories,
        "current_category": current, "filters": filters, "link_query": link_query,
        "pill_query": {k: v for k, v in link_query.items() if k != "category_id"},
        "sort_choices": [(value, label) for value, (_, _, label) in SORT_CHOICES.items()],
        "sales": await sales_strip(ctx),
        "suggestions": (await catalog.best_sellers(ctx, filters["category_id"])
                        if filters["q"] and not total else []),
    }


@routes.get("/categories", name="categories")
@aiohttp_jinja2.template("shop/categories.html")
async def categories_page(request: web.Request):
    return {"categories": await catalog.list_categories(request.app[CTX])}


@routes.get(r"/goods/{id:[0-9]{1,18}}", name="goods")
@aiohttp_jinja2.template("shop/goods.html")
async def goods_page(request: web.Request):
    goods = await catalog.get_goods(request.app[CTX], id_of(request))
    return {"goods": goods, "max_quantity": max(1, min(99, goods["stock"]))}
