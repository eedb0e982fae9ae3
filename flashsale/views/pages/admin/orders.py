"""Admin order pages: filters with the shop's figures and CSV export, one order with its history,
remarks and the status changes it allows."""
from __future__ import annotations

from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.errors import Validation
from flashsale.jsonio import page_data
from flashsale.labels import ORDER_STATUS_LABELS
from flashsale.services import admin_orders
from flashsale.validate import int_param
from flashsale.views.common import act, admin_page, form_body, id_of

routes = web.RouteTableDef()

PER_PAGE = 20
# the shop's labels, but what a paid order waits for is the admin's shipping
TABS = (("", "All"), *{**ORDER_STATUS_LABELS, "paid": "To ship"}.items())
# the buttons of each status change: status -> (label, icon, style, question before it)
STATUS_ACTIONS = {
    "shipped": ("Mark shipped", "bi-truck", "btn-danger", None),
    "completed": ("Mark completed", "bi-check2-circle", "btn-success", None),
    "cancelled": ("Cancel order", "bi-x-circle", "btn-outline-secondary",
                  "Cancel this order? Its units go back to stock."),
}
DONE = {"shipped": "Order marked as shipped.", "completed": "Order marked as completed.",
        "cancelled": "Order cancelled; its units are back in stock."}


@routes.get("/admin/orders", name="admin_orders")
async def orders_page(request: web.Request) -> web.Response:
    await admin_page(request)
    ctx = request.app[CTX]
    raw = {k: request.query.get(k, "").strip() for k in ("status", "q", "from", "to")}
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    errors, status = {}, 200
    try:
        filters = admin_orders.clean_filters(raw)
    except Validation as exc:
        errors, status = exc.errors, exc.status
        filters = None
    if filters is None:
        items, total, link_query = [], 0, {}
    else:
        items, total = await admin_orders.list_orders(ctx, filters, page, PER_PAGE)
        link_query = admin_orders.filter_query(filters, raw)
    tab_query = {k: v for k, v in link_query.items() if k != "status"}
    return aiohttp_jinja2.render_template("admin/orders.html", request, {
        "orders": page_data(items, page, PER_PAGE, total), "figures": await admin_orders.order_stats(ctx),
        "tabs": TABS, "tab": raw["status"] if raw["status"] in dict(TABS) else "", "form": raw,
        "errors": errors, "link_query": link_query, "tab_query": tab_query,
        "export_url": "/api/admin/orders/export.csv" + ("?" + urlencode(link_query) if link_query else ""),
    }, status=status)


@routes.get(r"/admin/orders/{id:[0-9]{1,18}}", name="admin_order")
@aiohttp_jinja2.template("admin/order.html")
async def order_page(request: web.Request):
    await admin_page(request)
    order = await admin_orders.get_order(request.app[CTX], id_of(request))
    return {"order": order, "actions": [(s, *STATUS_ACTIONS[s]) for s in order["next_statuses"]],
            "max_remark": admin_orders.MAX_REMARK, "max_log_remark": admin_orders.MAX_LOG_REMARK}


@routes.post(r"/admin/orders/{id:[0-9]{1,18}}/status")
async def status_submit(request: web.Request) -> web.Response:
    admin = await admin_page(request)
    order_id = id_of(request)
    body = await form_body(request)
    return await act(request, admin_orders.set_status(request.app[CTX], admin.id, order_id, body),
                     DONE.get(body.get("status", ""), "Order updated."), f"/admin/orders/{order_id}")


@routes.post(r"/admin/orders/{id:[0-9]{1,18}}/remarks")
async def remark_submit(request: web.Request) -> web.Response:
    admin = await admin_page(request)
    order_id = id_of(request)
    body = await form_body(request)
    return await act(request, admin_orders.add_remark(request.app[CTX], admin.id, order_id, body),
                     "Remark added.", f"/admin/orders/{order_id}#remarks")
