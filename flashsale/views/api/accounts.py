"""JSON account routes: register, login, logout, me, password change and reset."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import csrf_token, end_all_sessions, end_session, require_user, start_session
from flashsale.services import accounts
from flashsale.webjson import envelope, read_json
from flashsale.views.common import link_base

routes = web.RouteTableDef()


@routes.post("/api/auth/register")
async def register(request: web.Request) -> web.Response:
    user = await accounts.register(request.app[CTX], await read_json(request), ip=request.remote or "")
    return envelope({"user": user}, status=201, msg="registered")


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    row = await accounts.authenticate(request.app[CTX], await read_json(request), request.remote or "")
    session = await start_session(request, row["id"], row["username"], row["role"], row["session_epoch"])
    return envelope({"user": accounts.user_json(row), "csrf_token": session["csrf"]}, msg="logged in")


@routes.post("/api/auth/logout")
async def logout(request: web.Request) -> web.Response:
    await end_session(request)
    return envelope(None, msg="logged out")


@routes.post("/api/auth/logout-all")
async def logout_all(request: web.Request) -> web.Response:
    """Every session of the user ends (a new epoch, no session rows left), this one included."""
    user = await require_user(request)
    await end_all_sessions(request, user)
    return envelope(None, msg="logged out everywhere")


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    user = await require_user(request)
    row = await accounts.get_user(request.app[CTX], user.id)
    return envelope({"user": accounts.user_json(row), "csrf_token": await csrf_token(request)})


@routes.post("/api/me/password")
async def change_password(request: web.Request) -> web.Response:
    user = await require_user(request)
    epoch = await accounts.change_password(request.app[CTX], user.id, await read_json(request))
    # this session stays; every other session of the user ends
    await start_session(request, user.id, user.username, user.role, epoch)
    return envelope({"csrf_token": await csrf_token(request)}, msg="password changed")


@routes.post("/api/auth/reset-request")
async def reset_request(request: web.Request) -> web.Response:
    await accounts.request_reset(request.app[CTX], await read_json(request), request.remote or "",
                                 link_base(request))
    return envelope(None, status=202, msg="If the account exists, a reset link is on its way.")


@routes.post("/api/auth/reset")
async def reset(request: web.Request) -> web.Response:
    await accounts.reset_password(request.app[CTX], await read_json(request))
    return envelope(None, msg="password changed; please log in")
