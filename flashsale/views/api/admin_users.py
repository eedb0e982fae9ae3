"""Admin JSON routes for users: search, view, edit role, ban flag and contact, delete."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_admin
from flashsale.jsonio import page_data
from flashsale.services import accounts
from flashsale.validate import page_params
from flashsale.webjson import envelope, read_json
from flashsale.views.common import id_of

routes = web.RouteTableDef()


@routes.get("/api/admin/users")
async def list_users(request: web.Request) -> web.Response:
    await require_admin(request)
    page, per_page = page_params(request)
    q = request.query.get("q", "").strip()[:254]
    items, total = await accounts.list_users(request.app[CTX], q, page, per_page)
    return envelope(page_data(items, page, per_page, total))


@routes.get(r"/api/admin/users/{id:[0-9]{1,18}}")
async def get_user(request: web.Request) -> web.Response:
    await require_admin(request)
    row = await accounts.get_user(request.app[CTX], id_of(request))
    return envelope({"user": accounts.admin_user_json(row)})


@routes.put(r"/api/admin/users/{id:[0-9]{1,18}}")
async def update_user(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    user = await accounts.update_user(request.app[CTX], admin.id, id_of(request), await read_json(request))
    return envelope({"user": user}, msg="user updated")


@routes.delete(r"/api/admin/users/{id:[0-9]{1,18}}")
async def delete_user(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    await accounts.delete_user(request.app[CTX], admin.id, id_of(request))
    return envelope(None, msg="user deleted")
