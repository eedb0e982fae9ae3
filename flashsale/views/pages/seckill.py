"""Flash-sale pages: the list with state tabs, and one sale with its live stock and buy panel."""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX, SALE_CACHE
from flashsale.auth import current_user
from flashsale.errors import NotFound
from flashsale.jsonio import page_data
from flashsale.services import addresses, orders, seckill
from flashsale.validate import int_param
from flashsale.views.common import id_of, tab_of

routes = web.RouteTableDef()

PER_PAGE = 12  # a full grid of 2, 3 or 4 columns
# tab value -> label; "" is the API's default order: live, then upcoming, then the rest
TABS = (("", "All"), ("live", "Live now"), ("upcoming", "Upcoming"), ("ended", "Ended"))
# what the buy panel says, rendered by the page on load and by seckill.js after a click: one source
MESSAGES = {
    "queued": "Queued… your request is in line, hang on.",
    # {deadline} is the pay deadline, in the viewer's time zone (seckill.js fills it in)
    "success": "Got it! Pay by {deadline} to keep it.",
    "bought": "You got one",
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
    tab = tab_of(request, "state", TABS)
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await seckill.list_sales(ctx, tab, page, PER_PAGE)
    return {"sales": page_data(items, page, PER_PAGE, total), "tabs": TABS, "tab": tab,
            "link_query": {"state": tab} if tab else {}, "server_time": await seckill.server_time(ctx)}


async def _earlier_result(ctx, sale_id: int, user_id: int,
                         result: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The user's last purchase in this sale, with the order's status when it made one."""
    if result is None:
        result = await seckill.purchase_result(ctx, sale_id, user_id)
    if result["status"] == "none":
        return None
    if "order_id" in result:  # success, or an order cancelled since (failed / cancelled)
        try:
            order = await orders.get_order(ctx, result["order_id"], owner_id=user_id)
        except NotFound:  # the buyer deleted the order from their list
            return {**result, "order_status": "deleted"}
        return {**result, "order_status": order["status"], "order_number": order["order_number"],
                "pay_deadline": order["pay_deadline"]}
    return result


async def _buyer_part(ctx, sale: dict[str, Any], user_id: int) -> tuple[dict[str, Any] | None, int]:
    """(earlier result, units held) of the buyer: from the sale's Redis state while it is warm.

    A buyer who never bought in a warm sale costs Redis round trips and no MySQL query; one
    with an order reads it (its status and pay deadline) from MySQL."""
    sale_id = sale["id"]
    warm, request_id, outcome, held = await seckill.buyer_state(ctx, sale_id, sale.get("stock_shards", 1), user_id)
    if not warm or (request_id is None and held > 0):
        # cold, or rebuilt from MySQL (the request log is gone): MySQL knows
        earlier = await _earlier_result(ctx, sale_id, user_id)
        return earlier, await seckill.units_held(ctx, sale_id, user_id)
    if request_id is None:
        return None, 0
    earlier = await _earlier_result(ctx, sale_id, user_id, seckill.result_json(request_id, outcome))
    if outcome is None:  # a unit still queued counts in the buyers hash, not yet in an order
        held = await seckill.units_held(ctx, sale_id, user_id)
    return earlier, held


@routes.get(r"/seckill/{id:[0-9]{1,18}}", name="sale")
async def sale_page(request: web.Request) -> web.Response:
    """A warm sale comes from the process's sale cache; the buyer's part from Redis (_buyer_part)."""
    ctx = request.app[CTX]
    cache = request.app[SALE_CACHE]
    try:
        sale = await cache.sale(id_of(request))
    except NotFound:
        return aiohttp_jinja2.render_template("seckill/missing.html", request, {}, status=404)
    user = await current_user(request)
    book: list[dict[str, Any]] = []
    earlier = None
    held = 0
    if user is not None:
        book = await addresses.list_addresses_cached(ctx, user.id)  # default first
        earlier, held = await _buyer_part(ctx, sale, user.id)
    now = await cache.server_time()
    pay_left_s = None
    if earlier and earlier.get("order_status") == "pending" and earlier.get("pay_deadline"):
        pay_left_s = max(0, int((earlier["pay_deadline"] - now.replace(tzinfo=None)).total_seconds()))
    return aiohttp_jinja2.render_template("seckill/sale.html", request, {
        "sale": sale, "sold": sale["total_stock"] - sale["remaining"], "addresses": book, "earlier": earlier,
        # the buyer has their share: the panel shows their order, not a Buy button
        "bought": held >= sale["per_user_limit"], "held": held, "pay_left_s": pay_left_s,
        "messages": MESSAGES, "server_time": now,
    })
