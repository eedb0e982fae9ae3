"""Order pages: checkout, the order list with status tabs, one order with its actions."""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import CurrentUser, require_user
from flashsale.errors import NotFound, Refusal, Validation
from flashsale.jsonio import page_data
from flashsale.labels import ORDER_STATUS_LABELS
from flashsale.services import addresses, orders
from flashsale.templating import flash
from flashsale.validate import int_param
from flashsale.views.common import form_body, id_of, tab_of

routes = web.RouteTableDef()

PER_PAGE = 10
NEW_ADDRESS = "new"
# the inline address form's fields: new_receiver_name, new_phone, ...
NEW_PREFIX = orders.NEW_ADDRESS_PREFIX
TABS = (("all", "All"), *ORDER_STATUS_LABELS.items())
# action -> the flash message after it; every action is a POST form on the order page
ACTIONS = {
    "pay": "Payment received. Thank you!",
    "cancel": "Order cancelled.",
    "confirm": "Receipt confirmed. Enjoy!",
    "delete": "Order deleted.",
}


async def _render_checkout(request: web.Request, user: CurrentUser, goods: dict[str, Any],
                           form: dict[str, Any], *, errors: dict[str, str] | None = None,
                           error: str | None = None, status: int = 200) -> web.Response:
    book = await addresses.list_addresses(request.app[CTX], user.id)
    if not form.get("address_id") or (form["address_id"] != NEW_ADDRESS
                                      and not any(str(a["id"]) == str(form["address_id"]) for a in book)):
        form["address_id"] = str(book[0]["id"]) if book else NEW_ADDRESS  # default first in the list
    quantity = int_param(str(form.get("quantity", "")), 1, 1, orders.MAX_QUANTITY)
    return aiohttp_jinja2.render_template("shop/checkout.html", request, {
        "goods": goods, "form": form, "quantity": quantity, "total": goods["price"] * quantity,
        "addresses": book, "errors": errors or {}, "error": error, "new_address": NEW_ADDRESS,
        "address_limit": addresses.MAX_PER_USER,
    }, status=status)


@routes.get(r"/checkout/{goods_id:[0-9]{1,18}}", name="checkout")
async def checkout_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    goods = await orders.checkout_goods(request.app[CTX], id_of(request, "goods_id"))
    quantity = int_param(request.query.get("quantity"), 1, 1, orders.MAX_QUANTITY)
    return await _render_checkout(request, user, goods, {"quantity": quantity, "payment_method": "alipay"})


@routes.post(r"/checkout/{goods_id:[0-9]{1,18}}")
async def checkout_submit(request: web.Request) -> web.Response:
    user = await require_user(request)
    ctx = request.app[CTX]
    goods = await orders.checkout_goods(ctx, id_of(request, "goods_id"))
    body = {**await form_body(request), "goods_id": goods["id"]}
    use_new = body.get("address_id") == NEW_ADDRESS
    new_body = {k.removeprefix(NEW_PREFIX): v for k, v in body.items() if k.startswith(NEW_PREFIX)}
    try:
        order = await orders.checkout(ctx, user.id, body, new_body if use_new else None)
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {}
        return await _render_checkout(request, user, goods, body, errors=errors, error=exc.message,
                                      status=exc.status)
    await flash(request, f"Order {order['order_number']} placed. Pay now to complete it.")
    raise web.HTTPSeeOther(f"/orders/{order['id']}")


@routes.get("/orders", name="orders")
@aiohttp_jinja2.template("shop/orders.html")
async def orders_page(request: web.Request):
    user = await require_user(request)
    tab = tab_of(request, "status", TABS, "all")
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await orders.list_orders(request.app[CTX], user.id, orders.clean_status(tab), page, PER_PAGE)
    return {"orders": page_data(items, page, PER_PAGE, total), "tabs": TABS, "tab": tab}


@routes.get(r"/orders/{id:[0-9]{1,18}}", name="order")
@aiohttp_jinja2.template("shop/order.html")
async def order_page(request: web.Request):
    user = await require_user(request)
    return {"order": await orders.get_order(request.app[CTX], id_of(request), owner_id=user.id)}


@routes.post(r"/orders/{id:[0-9]{1,18}}/{action:pay|cancel|confirm|delete}")
async def order_action(request: web.Request) -> web.Response:
    user = await require_user(request)
    ctx = request.app[CTX]
    order_id, action = id_of(request), request.match_info["action"]
    try:
        if action == "pay":
            await orders.pay_order(ctx, user.id, order_id)
        elif action == "cancel":
            await orders.cancel_order(ctx, order_id, owner_id=user.id, actor="user", actor_id=user.id)
        elif action == "confirm":
            await orders.confirm_order(ctx, user.id, order_id)
        else:
            await orders.hide_order(ctx, user.id, order_id)
    except NotFound:
        raise
    except Refusal as exc:
        await flash(request, exc.message, "danger")
        raise web.HTTPSeeOther(f"/orders/{order_id}") from None
    await flash(request, ACTIONS[action])
    raise web.HTTPSeeOther("/orders" if action == "delete" else f"/orders/{order_id}")
