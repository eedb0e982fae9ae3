"""Admin JSON routes for orders: search with the shop's figures, one order, status, remarks, CSV export."""
from __future__ import annotations

import logging

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_admin
from flashsale.jsonio import page_data, utcnow
from flashsale.services import admin_orders
from flashsale.validate import page_params
from flashsale.webjson import envelope, read_json
from flashsale.views.common import id_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/admin/orders")
async def list_orders(request: web.Request) -> web.Response:
    await require_admin(request)
    ctx = request.app[CTX]
    filters = admin_orders.clean_filters(request.query)
    page, per_page = page_params(request)
    items, total = await admin_orders.list_orders(ctx, filters, page, per_page)
    return envelope({**page_data(items, page, per_page, total), "stats": await admin_orders.order_stats(ctx)})


@routes.get("/api/admin/orders/export.csv")
async def export_orders(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    filters = admin_orders.clean_filters(request.query)  # refused before anything is sent
    name = f"orders-{utcnow():%Y%m%dT%H%M%SZ}.csv"
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    })
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in admin_orders.export_csv(request.app[CTX], filters):
            await response.write(chunk)
    except ConnectionResetError:
        raise  # the admin went away
    except Exception as exc:
        # the headers are out, so no error envelope can follow: break the connection, and the
        # download fails instead of looking complete (the error middleware lets this one through)
        log.exception("CSV export of orders broke off")
        raise ConnectionResetError("CSV export broke off") from exc
    await response.write_eof()
    return response


@routes.get(r"/api/admin/orders/{id:[0-9]{1,18}}")
async def get_order(request: web.Request) -> web.Response:
    await require_admin(request)
    return envelope({"order": await admin_orders.get_order(request.app[CTX], id_of(request))})


@routes.post(r"/api/admin/orders/{id:[0-9]{1,18}}/status")
async def set_status(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    order = await admin_orders.set_status(request.app[CTX], admin.id, id_of(request), await read_json(request))
    return envelope({"order": order}, msg=f"order {order['status']}")


@routes.post(r"/api/admin/orders/{id:[0-9]{1,18}}/remarks")
async def add_remark(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    remark = await admin_orders.add_remark(request.app[CTX], admin.id, id_of(request), await read_json(request))
    return envelope({"remark": remark}, status=201, msg="remark added")
