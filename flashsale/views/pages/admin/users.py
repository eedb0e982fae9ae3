"""Admin user pages: search, role changes, bans and deletion (the service's refusals as messages)."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.jsonio import page_data
from flashsale.services import accounts
from flashsale.validate import int_param
from flashsale.views.common import act, admin_page, back_to, form_body, id_of

routes = web.RouteTableDef()

PER_PAGE = 20
# the fields a user row's buttons post -> the message after it
CHANGES = {
    ("role", "admin"): "{name} is now an admin.",
    ("role", "user"): "{name} is no longer an admin.",
    ("is_active", "0"): "{name} is banned and logged out everywhere.",
    ("is_active", "1"): "{name} may log in again.",
}


@routes.get("/admin/users", name="admin_users")
@aiohttp_jinja2.template("admin/users.html")
async def users_page(request: web.Request):
    admin = await admin_page(request)
    q = request.query.get("q", "").strip()[:254]
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await accounts.list_users(request.app[CTX], q, page, PER_PAGE)
    return {"users": page_data(items, page, PER_PAGE, total), "q": q, "link_query": {"q": q} if q else {},
            "me": admin.id}


@routes.post(r"/admin/users/{id:[0-9]{1,18}}")
async def change_user(request: web.Request) -> web.Response:
    """One change per button: role, or the ban flag."""
    admin = await admin_page(request)
    ctx = request.app[CTX]
    body = await form_body(request)
    change = {k: body[k] for k in ("role", "is_active") if k in body}
    user = await accounts.get_user(ctx, id_of(request))
    key = next(iter(change.items()), None)
    done = CHANGES.get(key, "{name} saved.").format(name=user["username"])
    return await act(request, accounts.update_user(ctx, admin.id, user["id"], change), done,
                     back_to(body, "/admin/users"))


@routes.post(r"/admin/users/{id:[0-9]{1,18}}/delete")
async def delete_user(request: web.Request) -> web.Response:
    admin = await admin_page(request)
    ctx = request.app[CTX]
    body = await form_body(request)
    user = await accounts.get_user(ctx, id_of(request))
    return await act(request, accounts.delete_user(ctx, admin.id, user["id"]),
                     f"{user['username']} deleted.", back_to(body, "/admin/users"))
