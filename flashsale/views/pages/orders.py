"""Order pages: checkout, the order list with status tabs, one order with its actions."""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import CurrentUser, require_user
from flashsale.errors import NotFound, Refusal, Validation
from flashsale.jsonio import page_data
from flashsale.services import addresses, orders
from flashsale.templating import flash
from flashsale.validate import int_param
from flashsale.views.pages.accounts import form_body

routes = web.RouteTableDef()

PER_PAGE = 10
NEW_ADDRESS = "new"
NEW_PREFIX = "new_"  # the inline address form's fields: new_receiver_name, new_phone, ...
TABS = (("all", "All"), ("pending", "To pay"), ("paid", "Paid"), ("shipped", "Shipped"),
        ("completed", "Completed"), ("cancelled", "Cancelled"))
PAYMENT_CHOICES = (("alipay", "Alipay", "bi-wallet2"), ("wechat", "WeChat Pay", "bi-wechat"),
                   ("card", "Bank card", "bi-credit-card"))
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
        "goods": goods, "form": form, "quantity": quantity, "total": goods["price"] * quantity, "addresses": book, "errors": errors or {}, "error": error,
        "payment_choices": PAYMENT_CHOICES, "new_address": NEW_ADDRESS,
        "address_limit": addresses.MAX_PER_USER,
    }, status=status)


@routes.get(r"/checkout/{goods_id:[0-9]{1,18}}", name="checkout")
async def checkout_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    goods = await orders.checkout_goods(request.app[CTX], int(request.match_info["goods_id"]))
    quantity = int_param(request.query.get("quantity"), 1, 1, orders.MAX_QUANTITY)
    return await _render_checkout(request, user, goods, {"quantity": quantity, "payment_method": "alipay"})


@routes.post(r"/checkout/{goods_id:[0-9]{1,18}}")
async def checkout_submit(request: web.Request) -> web.Response:
    user = await require_user(request)
    ctx = request.app[CTX]
    goods = await orders.checkout_goods(ctx, int(request.match_info["goods_id"]))
    body = {**await form_body(request), "goods_id": goods["id"]}
    use_new = body.get("address_id") == NEW_ADDRESS
    new_body = {k.removeprefix(NEW_PREFIX): v for k, v in body.items() if k.startswith(NEW_PREFIX)}

    # check everything before writing anything: the new address is kept only with a valid order form
    errors: dict[str, str] = {}
    try:
        orders.clean_order(body, need_address=not use_new)
    except Validation as exc:
        errors.update(exc.errors)
    if use_new:
        try:
            addresses.clean_address(new_body)
        except Validation as exc:
            errors.update({NEW_PREFIX + k: v for k, v in exc.errors.items()})
    if errors:
        return await _render_checkout(request, user, goods, body, errors=errors,
                                      error=Validation.message, status=400)
    try:
        if use_new:
            address = await addresses.create_address(ctx, user.id, new_body)
            body["address_id"] = str(address["id"])
        order = await orders.place_order(ctx, user.id, body)
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
    tab = request.query.get("status", "all")
    if tab not in dict(TABS):
        tab = "all"
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await orders.list_orders(request.app[CTX], user.id, orders.clean_status(tab), page, PER_PAGE)
    return {"orders": page_data(items, page, PER_PAGE, total), "tabs": TABS, "tab": tab}


@routes.get(r"/orders/{id:[0-9]{1,18}}", name="order")
@aiohttp_jinja2.template("shop/order.html")
async def order_page(request: web.Request):
    user = await require_user(request)
    order = await orders.get_order(request.app[CTX], int(request.match_info["id"]), owner_id=user.id)
    return {"order": order, "payment_labels": {value: label for value, label, _ in PAYMENT_CHOICES}}


@routes.post(r"/orders/{id:[0-9]{1,18}}/{action:pay|cancel|confirm|delete}")
async def order_action(request: web.Request) -> web.Response:
    user = await require_user(request)
    ctx = request.app[CTX]
    order_id, action = int(request.match_info["id"]), request.match_info["action"]
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
