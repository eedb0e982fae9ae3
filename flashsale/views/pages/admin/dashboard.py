"""The admin dashboard: the shop's figures, daily chart, statuses, best sellers and live sales."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.jsonio import dumps
from flashsale.labels import ORDER_STATUS_LABELS
from flashsale.services import admin_orders, admin_stats
from flashsale.validate import int_param
from flashsale.views.common import admin_page

routes = web.RouteTableDef()

DAY_CHOICES = (7, 14, 30, 90)
LIVE_REFRESH_MS = 2000


@routes.get("/admin", name="admin")
@aiohttp_jinja2.template("admin/dashboard.html")
async def dashboard_page(request: web.Request):
    await admin_page(request)
    ctx = request.app[CTX]
    days = int_param(request.query.get("days"), 14, 1, admin_stats.MAX_DAYS)
    stats = await admin_stats.dashboard(ctx, days)
    return {
        "figures": await admin_orders.order_stats(ctx),
        "stats": stats,
        # the charts' data and the status labels; the template puts it in an attribute, so it is
        # escaped like any text
        "chart_data": dumps({"daily": stats["daily"], "status_counts": stats["status_counts"],
                             "status_labels": ORDER_STATUS_LABELS}).decode(),
        "days": days, "day_choices": DAY_CHOICES, "refresh_ms": LIVE_REFRESH_MS,
    }
