"""What several views share, in one module without routes: path ids, form bodies, same-site
redirects, mail links, and the admin pages' guard and form-post outcome."""
from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import SETTINGS
from flashsale.auth import CurrentUser, require_admin
from flashsale.errors import NotFound, Refusal, Validation
from flashsale.jsonio import utcnow
from flashsale.redirects import safe_next
from flashsale.services import accounts
from flashsale.templating import flash
from flashsale.webjson import read_form


# --- any view -----------------------------------------------------------------------------------

def id_of(request: web.Request, name: str = "id") -> int:
    """The id in the path (the route's pattern allows digits only); one past int's reach is no such thing."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFound() from None


def tab_of(request: web.Request, key: str, tabs: tuple[tuple[str, str], ...], default: str = "") -> str:
    """The list tab the query names (tabs: value -> label pairs); an unknown one shows the default tab."""
    value = request.query.get(key, default)
    return value if value in dict(tabs) else default


async def form_body(request: web.Request) -> dict[str, str]:
    """A posted form's text fields, without its CSRF token."""
    form = await read_form(request)
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def link_base(request: web.Request) -> str:
    """Where links in mail point: FLASHSALE_PUBLIC_URL, or FLASHSALE_HOST/PORT when it is empty.
    Never the request's Host header, which is the client's to forge."""
    return accounts.public_base_url(request.app[SETTINGS])


# --- admin pages --------------------------------------------------------------------------------

async def admin_page(request: web.Request) -> CurrentUser:
    """Admins only: anonymous GETs go to the login page and back (the error middleware), others get 403.

    Adds what the admin templates share to the page context: the path with its query (forms post it
    as `next`, so a list keeps its filters and page) and today's UTC date.
    """
    admin = await require_admin(request)
    page = request.get(aiohttp_jinja2.REQUEST_CONTEXT_KEY)
    if page is not None:
        page["request_path_qs"] = request.path_qs
        page["today"] = utcnow().date().isoformat()
    return admin


def back_to(body: dict[str, Any], default: str) -> str:
    """The form's `next` when it is an admin page (a list keeps its filters and page), else default."""
    target = safe_next(body.get("next"))
    return target if target.startswith("/admin") else default


def refusal_text(exc: Refusal) -> str:
    """A refusal as one line: the message, and each field's error after it."""
    if isinstance(exc, Validation) and exc.errors:
        return exc.message + " " + " ".join(f"{name.replace('_', ' ').capitalize()}: {text}"
                                             for name, text in exc.errors.items())
    return exc.message


async def act(request: web.Request, action: Awaitable[Any], done: str, back: str,
              refused: str | None = None) -> web.Response:
    """Run one service call of a form post, flash its outcome, and go back (303) to `back`, or to
    `refused` when the service said no.

    Every refusal (in_use, self, last_admin, an id deleted meanwhile...) becomes a message.
    """
    try:
        await action
    except Refusal as exc:
        await flash(request, refusal_text(exc), "danger")
        raise web.HTTPSeeOther(refused or back) from None
    await flash(request, done)
    raise web.HTTPSeeOther(back)
