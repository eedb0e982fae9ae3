"""Admin flash-sale pages: the list with live stock and sold units, create, edit, cancel."""
from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX, SALE_CACHE
from flashsale.errors import NotFound, Refusal, Validation
from flashsale.jsonio import page_data, parse_time
from flashsale.services import admin_stats, catalog, seckill
from flashsale.templating import flash
from flashsale.validate import int_param
from flashsale.views.common import act, admin_page, back_to, form_body, id_of, tab_of

routes = web.RouteTableDef()

PER_PAGE = 20
GOODS_CHOICES = 500  # the newest goods offered in the form's select
TABS = (("", "All"), ("live", "Live"), ("upcoming", "Upcoming"), ("ended", "Ended"))
TIME_FIELDS = ("start_time", "end_time")
# once a sale is live, the service lets only these change
LIVE_FIELDS = ("total_stock", "end_time")
FORM_FIELDS = ("goods_id", "price", "total_stock", "per_user_limit", *TIME_FIELDS)


def local_input(value: dt.datetime | None) -> str:
    """A UTC time as a datetime-local input's value."""
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value else ""


def sale_body(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields for the service. app.js posts each time as NAME_utc (the admin types it in
    their own zone); without it, the datetime-local value carries no zone and means UTC."""
    body: dict[str, Any] = {k: v for k, v in form.items() if not k.endswith("_utc")}
    for name in TIME_FIELDS:
        if name not in form:  # a locked field is not posted
            continue
        raw = (form.get(f"{name}_utc") or form.get(name) or "").strip()
        if raw and raw[-1] not in "Zz" and "+" not in raw[10:] and "-" not in raw[10:]:
            raw += "Z"
        body[name] = raw
    return body


def form_again(form: dict[str, str]) -> dict[str, Any]:
    """A posted form to show again: its times back in UTC, as the inputs always carry them."""
    again: dict[str, Any] = {k: v for k, v in form.items() if not k.endswith("_utc")}
    for name in TIME_FIELDS:
        utc = parse_time(form.get(f"{name}_utc"))
        if utc is not None:
            again[name] = local_input(utc)
    return again


@routes.get("/admin/seckill", name="admin_seckill")
@aiohttp_jinja2.template("admin/seckill.html")
async def sales_page(request: web.Request):
    await admin_page(request)
    ctx = request.app[CTX]
    tab = tab_of(request, "state", TABS)
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await seckill.list_sales(ctx, tab, page, PER_PAGE)
    sold = await admin_stats.sold_of_sales(ctx, [s["id"] for s in items])
    for sale in items:
        sale["sold"] = sold.get(sale["id"], 0)
    return {"sales": page_data(items, page, PER_PAGE, total), "tabs": TABS, "tab": tab,
            "link_query": {"state": tab} if tab else {}}


async def _goods_choices(ctx, chosen: Any) -> list[dict[str, Any]]:
    """The newest goods, and the chosen one when it is older."""
    goods, _ = await catalog.admin_list_goods(ctx, category_id=None, q="", page=1, per_page=GOODS_CHOICES)
    try:
        chosen_id = int(chosen)
    except (TypeError, ValueError):
        return goods
    if chosen_id > 0 and all(g["id"] != chosen_id for g in goods):
        try:
            goods.insert(0, await catalog.admin_get_goods(ctx, chosen_id))
        except NotFound:
            pass
    return goods


async def _render_form(request: web.Request, *, sale: dict[str, Any] | None, form: dict[str, Any],
                       errors=None, error=None, status: int = 200) -> web.Response:
    ctx = request.app[CTX]
    closed = bool(sale and sale["state"] in ("ended", "cancelled"))
    editable = set(LIVE_FIELDS) if sale and sale["state"] == "live" else None
    locked = set(FORM_FIELDS) if closed else (set(FORM_FIELDS) - editable if editable else set())
    return aiohttp_jinja2.render_template("admin/sale_form.html", request, {
        "sale": sale, "form": form, "errors": errors or {}, "error": error,
        "goods": await _goods_choices(ctx, form.get("goods_id")),
        # what the form lets change: everything before the start, only the stock and end once live
        "editable": editable, "closed": closed, "locked": locked,
        "max_stock": seckill.MAX_STOCK, "max_limit": seckill.MAX_LIMIT,
    }, status=status)


def _sale_form(sale: dict[str, Any]) -> dict[str, Any]:
    return {"goods_id": sale["goods"]["id"], "price": sale["price"], "total_stock": sale["total_stock"],
            "per_user_limit": sale["per_user_limit"], "start_time": local_input(sale["start_time"]),
            "end_time": local_input(sale["end_time"])}


@routes.get("/admin/seckill/new", name="admin_sale_new")
async def new_sale_page(request: web.Request) -> web.Response:
    await admin_page(request)
    return await _render_form(request, sale=None, form={
        "goods_id": request.query.get("goods_id", ""), "per_user_limit": "1"})


@routes.post("/admin/seckill")
async def create_sale(request: web.Request) -> web.Response:
    await admin_page(request)
    form = await form_body(request)
    try:
        sale = await seckill.create_sale(request.app[CTX], sale_body(form))
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {}
        return await _render_form(request, sale=None, form=form_again(form), errors=errors, error=exc.message,
                                  status=exc.status)
    await flash(request, f"Flash sale #{sale['id']} of “{sale['goods']['name']}” scheduled.")
    raise web.HTTPSeeOther("/admin/seckill")


@routes.get(r"/admin/seckill/{id:[0-9]{1,18}}", name="admin_sale_edit")
async def edit_sale_page(request: web.Request) -> web.Response:
    await admin_page(request)
    sale = await seckill.get_sale(request.app[CTX], id_of(request))
    return await _render_form(request, sale=sale, form=_sale_form(sale))


@routes.post(r"/admin/seckill/{id:[0-9]{1,18}}")
async def update_sale(request: web.Request) -> web.Response:
    await admin_page(request)
    ctx = request.app[CTX]
    sale = await seckill.get_sale(ctx, id_of(request))
    form = await form_body(request)
    try:
        await seckill.update_sale(ctx, sale["id"], sale_body(form))
        request.app[SALE_CACHE].forget(sale["id"])
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {}
        sale = await seckill.get_sale(ctx, sale["id"])  # its state may have moved on meanwhile
        return await _render_form(request, sale=sale, form={**_sale_form(sale), **form_again(form)}, errors=errors,
                                  error=exc.message, status=exc.status)
    await flash(request, f"Flash sale #{sale['id']} saved.")
    raise web.HTTPSeeOther("/admin/seckill")


@routes.post(r"/admin/seckill/{id:[0-9]{1,18}}/cancel")
async def cancel_sale(request: web.Request) -> web.Response:
    await admin_page(request)
    body = await form_body(request)
    async def cancel():
        await seckill.cancel_sale(request.app[CTX], id_of(request))
        request.app[SALE_CACHE].forget(id_of(request))  # its pages show the cancel at once

    return await act(request, cancel(),
                     "Flash sale cancelled: no new purchases; orders already made stay.",
                     back_to(body, "/admin/seckill"))
