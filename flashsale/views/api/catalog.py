"""Catalog JSON routes for shoppers: categories, the goods list and one goods' details."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.jsonio import page_data
from flashsale.services import catalog
from flashsale.validate import page_params
from flashsale.webjson import envelope
from flashsale.views.common import id_of

routes = web.RouteTableDef()


@routes.get("/api/categories")
async def list_categories(request: web.Request) -> web.Response:
    return envelope({"items": await catalog.list_categories(request.app[CTX])})


@routes.get("/api/goods")
async def list_goods(request: web.Request) -> web.Response:
    filters = catalog.goods_filters(request.query)
    page, per_page = page_params(request)
    items, total = await catalog.list_goods(request.app[CTX], **filters, page=page, per_page=per_page)
    data = page_data(items, page, per_page, total)
    if filters["q"] and not total:  # say so, and suggest the best sellers instead
        data["suggestions"] = await catalog.best_sellers(request.app[CTX], filters["category_id"])
        return envelope(data, msg=f"No goods match “{filters['q']}”; here are our best sellers.")
    return envelope(data)


@routes.get(r"/api/goods/{id:[0-9]{1,18}}")
async def get_goods(request: web.Request) -> web.Response:
    return envelope(await catalog.get_goods(request.app[CTX], id_of(request)))
