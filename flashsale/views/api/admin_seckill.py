"""Admin JSON routes for flash sales: list, create, edit, cancel."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_admin
from flashsale.errors import Validation
from flashsale.jsonio import page_data
from flashsale.services import seckill
from flashsale.validate import page_params
from flashsale.views.api.seckill import STATES, sale_id_of
from flashsale.webjson import envelope, read_json

routes = web.RouteTableDef()


@routes.get("/api/admin/seckill")
async def list_sales(request: web.Request) -> web.Response:
    await require_admin(request)
    state = request.query.get("state", "")
    if state and state not in STATES:
        raise Validation({"state": "Must be one of: ended, live, upcoming."})
    page, per_page = page_params(request)
    items, total = await seckill.list_sales(request.app[CTX], state, page, per_page)
    return envelope(page_data(items, page, per_page, total))


@routes.post("/api/admin/seckill")
async def create_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    sale = await seckill.create_sale(request.app[CTX], await read_json(request))
    return envelope(sale, status=201, msg="sale scheduled")


@routes.get(r"/api/admin/seckill/{id:[0-9]{1,18}}")
async def get_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    return envelope(await seckill.get_sale(request.app[CTX], sale_id_of(request)))


@routes.put(r"/api/admin/seckill/{id:[0-9]{1,18}}")
async def update_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    sale = await seckill.update_sale(request.app[CTX], sale_id_of(request), await read_json(request))
    return envelope(sale, msg="sale updated")


@routes.post(r"/api/admin/seckill/{id:[0-9]{1,18}}/cancel")
async def cancel_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    return envelope(await seckill.cancel_sale(request.app[CTX], sale_id_of(request)), msg="sale cancelled")
