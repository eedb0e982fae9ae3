"""Flash-sale pages: the list with state tabs, and one sale with its live stock and buy panel."""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import current_user
from flashsale.errors import NotFound
from flashsale.jsonio import page_data
from flashsale.services import addresses, orders, seckill
from flashsale.validate import int_param
from flashsale.views.pages.orders import PAYMENT_CHOICES

routes = web.RouteTableDef()

PER_PAGE = 12  # a full grid of 2, 3 or 4 columns
# tab value -> label; "" is the API's default order: live, then upcoming, then the rest
TABS = (("", "All"), ("live", "Live now"), ("upcoming", "Upcoming"), ("ended", "Ended"))
# what the buy panel says, rendered by the page on load and by seckill.js after a click: one source
MESSAGES = {
    "queued": "Queued… your request is in line, hang on.",
    "success": "Got it! Pay within the pay window to keep it.",
    "sold_out": "Sold out: every unit is taken. Units of unpaid orders come back later, so check again.",
    "already_purchased": "You already have your share of this sale.",
    "not_started": "The sale has not started yet: the button opens when the countdown ends.",
    "ended": "Sorry, this sale has ended.",
    "rate_limited": "Too many tries, wait a second.",
    "address_missing": "Your delivery address was deleted before the order was written. "
                       "Choose another address and try again.",
    "undeliverable": "We could not write your order. Please try again.",
    "failed": "Your purchase did not go through.",
    "slow": "Still in the queue: this takes longer than usual. Look at My orders in a moment.",
    "network": "Network problem: check your connection and try again.",
    "error": "Something went wrong. Please try again.",
}


@routes.get("/seckill", name="seckill")
@aiohttp_jinja2.template("seckill/list.html")
async def sales_page(request: web.Request):
    ctx = request.app[CTX]
    tab = request.query.get("state", "")
    if tab not in dict(TABS):
        tab = ""
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await seckill.list_sales(ctx, tab, page, PER_PAGE)
    return {"sales": page_data(items, page, PER_PAGE, total), "tabs": TABS, "tab": tab,
            "link_query": {"state": tab} if tab else {}, "server_time": await seckill.server_time(ctx)}


async def _earlier_result(ctx, sale_id: int, user_id: int) -> dict[str, Any] | None:
    """The user's last purchase in this sale, with the order's status when it made one."""
    result = await seckill.purchase_result(ctx, sale_id, user_id)
    if result["status"] == "none":
        return None
    if result["status"] == "success":
        try:
            order = await orders.get_order(ctx, result["order_id"], owner_id=user_id)
        except NotFound:  # the buyer deleted the order from their list
            return {**result, "order_status": "deleted"}
        return {**result, "order_status": order["status"], "order_number": order["order_number"]}
    return result


@routes.get(r"/seckill/{id:[0-9]{1,18}}", name="sale")
async def sale_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        sale = await seckill.get_sale(ctx, int(request.match_info["id"]))
    except NotFound:
        return aiohttp_jinja2.render_template("seckill/missing.html", request, {}, status=404)
    user = await current_user(request)
    book: list[dict[str, Any]] = []
    earlier = None
    if user is not None:
        book = await addresses.list_addresses(ctx, user.id)  # default first
        earlier = await _earlier_result(ctx, sale["id"], user.id)
    return aiohttp_jinja2.render_template("seckill/sale.html", request, {
        "sale": sale, "sold": sale["total_stock"] - sale["remaining"], "addresses": book, "earlier": earlier,
        "payment_choices": PAYMENT_CHOICES, "messages": MESSAGES, "server_time": await seckill.server_time(ctx),
    })
