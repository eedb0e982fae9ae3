"""JSON order routes: the logged-in user's own orders only."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_user
from flashsale.jsonio import page_data
from flashsale.services import orders
from flashsale.validate import page_params
from flashsale.webjson import envelope, read_json
from flashsale.views.common import id_of

routes = web.RouteTableDef()


@routes.post("/api/orders")
async def place_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    order = await orders.place_order(request.app[CTX], user.id, await read_json(request))
    return envelope({"order": order}, status=201, msg="order placed")


@routes.get("/api/orders")
async def list_orders(request: web.Request) -> web.Response:
    user = await require_user(request)
    status = orders.clean_status(request.query.get("status"))
    page, per_page = page_params(request)
    items, total = await orders.list_orders(request.app[CTX], user.id, status, page, per_page)
    return envelope(page_data(items, page, per_page, total))


@routes.get(r"/api/orders/{id:[0-9]{1,18}}")
async def get_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    order = await orders.get_order(request.app[CTX], id_of(request), owner_id=user.id)
    return envelope({"order": order})


@routes.post(r"/api/orders/{id:[0-9]{1,18}}/pay")
async def pay_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    order = await orders.pay_order(request.app[CTX], user.id, id_of(request))
    return envelope({"order": order}, msg="paid")


@routes.post(r"/api/orders/{id:[0-9]{1,18}}/cancel")
async def cancel_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    order = await orders.cancel_order(request.app[CTX], id_of(request), owner_id=user.id,
                                      actor="user", actor_id=user.id)
    return envelope({"order": order}, msg="cancelled")


@routes.post(r"/api/orders/{id:[0-9]{1,18}}/confirm")
async def confirm_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    order = await orders.confirm_order(request.app[CTX], user.id, id_of(request))
    return envelope({"order": order}, msg="completed")


@routes.delete(r"/api/orders/{id:[0-9]{1,18}}")
async def delete_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    await orders.hide_order(request.app[CTX], user.id, id_of(request))
    return envelope(None, msg="deleted")
