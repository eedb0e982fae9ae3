"""Account pages: log in, register, log out, change and reset the password."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import current_user, end_all_sessions, end_session, require_user, start_session
from flashsale.errors import Refusal, Validation
from flashsale.redirects import safe_next
from flashsale.services import accounts
from flashsale.templating import flash
from flashsale.views.common import form_body, link_base

routes = web.RouteTableDef()


def form_errors(exc: Refusal) -> tuple[str, dict[str, str]]:
    return exc.message, (exc.errors if isinstance(exc, Validation) else {})


@routes.get("/login", name="login")
@aiohttp_jinja2.template("account/login.html")
async def login_page(request: web.Request):
    if await current_user(request):
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return {"next": safe_next(request.query.get("next")), "form": {}, "errors": {}}


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    body = await form_body(request)
    next_url = safe_next(body.get("next"))
    try:
        row = await accounts.authenticate(request.app[CTX], body, request.remote or "")
    except Refusal as exc:
        message, errors = form_errors(exc)
        response = aiohttp_jinja2.render_template(
            "account/login.html", request,
            {"next": next_url, "form": {"username": body.get("username", "")}, "errors": errors,
             "error": message}, status=exc.status)
        response.headers.update(exc.headers)
        return response
    await start_session(request, row["id"], row["username"], row["role"], row["session_epoch"])
    await flash(request, f"Welcome back, {row['username']}!")
    raise web.HTTPSeeOther(next_url)


@routes.get("/register", name="register")
@aiohttp_jinja2.template("account/register.html")
async def register_page(request: web.Request):
    return {"form": {}, "errors": {}}


@routes.post("/register")
async def register_submit(request: web.Request) -> web.Response:
    body = await form_body(request)
    ctx = request.app[CTX]
    try:
        await accounts.register(ctx, body, confirm=True, ip=request.remote or "")
        row = await accounts.authenticate(ctx, body, request.remote or "")
    except Refusal as exc:
        message, errors = form_errors(exc)
        if not errors and exc.reason.endswith("_taken"):
            # said once, beside the field it is about
            errors, message = {exc.reason.removesuffix("_taken"): exc.message}, None
        form = {k: v for k, v in body.items() if "password" not in k}
        return aiohttp_jinja2.render_template(
            "account/register.html", request, {"form": form, "errors": errors, "error": message},
            status=exc.status)
    await start_session(request, row["id"], row["username"], row["role"], row["session_epoch"])
    await flash(request, "Your account is ready. Welcome to FlashSale!")
    raise web.HTTPSeeOther("/")


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    await end_session(request)
    await flash(request, "You have logged out.", "info")
    raise web.HTTPSeeOther("/")


@routes.post("/account/logout-all", name="logout_all")
async def logout_all(request: web.Request) -> web.Response:
    """Log out everywhere: every session of the user ends, this one too."""
    user = await require_user(request)
    await end_all_sessions(request, user)
    await flash(request, "You have been logged out on every device.", "info")
    raise web.HTTPSeeOther("/login")


@routes.get("/account/password", name="account_password")
@aiohttp_jinja2.template("account/password.html")
async def password_page(request: web.Request):
    await require_user(request)
    return {"errors": {}}


@routes.post("/account/password")
async def password_submit(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await form_body(request)
    try:
        epoch = await accounts.change_password(request.app[CTX], user.id, body)
    except Refusal as exc:
        message, errors = form_errors(exc)
        if exc.reason == "bad_credentials":
            errors = {"old_password": exc.message}
        return aiohttp_jinja2.render_template(
            "account/password.html", request, {"errors": errors, "error": message}, status=exc.status)
    await start_session(request, user.id, user.username, user.role, epoch)
    await flash(request, "Password changed. Your other sessions have been logged out.")
    raise web.HTTPSeeOther("/")


@routes.get("/password/forgot", name="password_forgot")
@aiohttp_jinja2.template("account/forgot.html")
async def forgot_page(request: web.Request):
    return {"sent": False}


@routes.post("/password/forgot")
async def forgot_submit(request: web.Request) -> web.Response:
    body = await form_body(request)
    try:
        await accounts.request_reset(request.app[CTX], body, request.remote or "", link_base(request))
    except Refusal as exc:
        return aiohttp_jinja2.render_template(
            "account/forgot.html", request, {"sent": False, "error": exc.message}, status=exc.status)
    return aiohttp_jinja2.render_template("account/forgot.html", request, {"sent": True})


@routes.get("/password/reset", name="password_reset")
@aiohttp_jinja2.template("account/reset.html")
async def reset_page(request: web.Request):
    return {"token": request.query.get("token", ""), "errors": {}}


@routes.post("/password/reset")
async def reset_submit(request: web.Request) -> web.Response:
    body = await form_body(request)
    try:
        await accounts.reset_password(request.app[CTX], body)
    except Refusal as exc:
        message, errors = form_errors(exc)
        return aiohttp_jinja2.render_template(
            "account/reset.html", request,
            {"token": body.get("token", ""), "errors": errors, "error": message}, status=exc.status)
    await flash(request, "Your password is changed. Please log in.")
    raise web.HTTPSeeOther("/login")
