"""Admin JSON routes for flash sales: create, edit, cancel (the list is in seckill.py, beside the shoppers' one)."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX, SALE_CACHE
from flashsale.auth import require_admin
from flashsale.services import seckill
from flashsale.webjson import envelope, read_json

from flashsale.views.common import id_of

routes = web.RouteTableDef()


@routes.post("/api/admin/seckill")
async def create_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    sale = await seckill.create_sale(request.app[CTX], await read_json(request))
    return envelope(sale, status=201, msg="sale scheduled")


@routes.get(r"/api/admin/seckill/{id:[0-9]{1,18}}")
async def get_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    return envelope(await seckill.get_sale(request.app[CTX], id_of(request)))


@routes.put(r"/api/admin/seckill/{id:[0-9]{1,18}}")
async def update_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    sale = await seckill.update_sale(request.app[CTX], id_of(request), await read_json(request))
    request.app[SALE_CACHE].forget(sale["id"])
    return envelope(sale, msg="sale updated")


@routes.post(r"/api/admin/seckill/{id:[0-9]{1,18}}/cancel")
async def cancel_sale(request: web.Request) -> web.Response:
    await require_admin(request)
    sale = await seckill.cancel_sale(request.app[CTX], id_of(request))
    request.app[SALE_CACHE].forget(sale["id"])
    return envelope(sale, msg="sale cancelled")
