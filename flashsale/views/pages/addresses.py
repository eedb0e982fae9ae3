"""Address book pages: list, add, edit, delete and choose the default."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_user
from flashsale.errors import Refusal, Validation
from flashsale.services import addresses
from flashsale.templating import flash
from flashsale.redirects import safe_next
from flashsale.views.common import form_body, id_of

routes = web.RouteTableDef()


def _back(next_raw: str | None) -> str:
    """Where to go after a change: a same-site `next` (e.g. the checkout) or the list."""
    return safe_next(next_raw) if next_raw else "/addresses"


async def _render_list(request: web.Request, user_id: int, *, form=None, errors=None, error=None,
                       next_url: str = "", status: int = 200) -> web.Response:
    items = await addresses.list_addresses(request.app[CTX], user_id)
    return aiohttp_jinja2.render_template("account/addresses.html", request, {
        "addresses": items, "form": form or {}, "errors": errors or {}, "error": error,
        "next": next_url, "limit": addresses.MAX_PER_USER,
    }, status=status)


@routes.get("/addresses", name="addresses")
async def addresses_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    return await _render_list(request, user.id, next_url=safe_next(request.query.get("next"), default=""))


@routes.post("/addresses")
async def add_address(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await form_body(request)
    try:
        await addresses.create_address(request.app[CTX], user.id, body)
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {}
        return await _render_list(request, user.id, form=body, errors=errors, error=exc.message,
                                  next_url=safe_next(body.get("next"), default=""), status=exc.status)
    await flash(request, "Address added.")
    raise web.HTTPSeeOther(_back(body.get("next")))


@routes.get(r"/addresses/{id:[0-9]{1,18}}/edit", name="address_edit")
async def edit_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    address = await addresses.get_address(request.app[CTX], user.id, id_of(request))
    return aiohttp_jinja2.render_template("account/address_edit.html", request, {
        "address": address, "form": address, "errors": {},
    })


@routes.post(r"/addresses/{id:[0-9]{1,18}}")
async def edit_submit(request: web.Request) -> web.Response:
    user = await require_user(request)
    ctx = request.app[CTX]
    address = await addresses.get_address(ctx, user.id, id_of(request))
    body = await form_body(request)
    try:
        await addresses.update_address(ctx, user.id, address["id"], body)
    except Validation as exc:
        return aiohttp_jinja2.render_template("account/address_edit.html", request, {
            "address": address, "form": body, "errors": exc.errors, "error": exc.message,
        }, status=exc.status)
    await flash(request, "Address saved.")
    raise web.HTTPSeeOther("/addresses")


@routes.post(r"/addresses/{id:[0-9]{1,18}}/delete")
async def delete_submit(request: web.Request) -> web.Response:
    user = await require_user(request)
    await addresses.delete_address(request.app[CTX], user.id, id_of(request))
    await flash(request, "Address deleted.")
    raise web.HTTPSeeOther("/addresses")


@routes.post(r"/addresses/{id:[0-9]{1,18}}/default")
async def default_submit(request: web.Request) -> web.Response:
    user = await require_user(request)
    await addresses.set_default(request.app[CTX], user.id, id_of(request))
    await flash(request, "Default address changed.")
    raise web.HTTPSeeOther("/addresses")
