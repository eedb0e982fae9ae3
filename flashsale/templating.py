"""What every page template gets: the user, the CSRF token, flash messages, formatting filters."""
from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web
from aiohttp_session import get_session

from flashsale.auth import csrf_token, current_user
from flashsale.jsonio import iso, money

FLASH_KEY = "flash"


async def flash(request: web.Request, message: str, category: str = "success") -> None:
    """Queue a message for the next page this session renders."""
    session = await get_session(request)
    session[FLASH_KEY] = [*session.get(FLASH_KEY, []), [category, message]][-5:]


async def page_context(request: web.Request) -> dict[str, Any]:
    if request.path.startswith("/api/"):
        # JSON never renders a template: leave the session (and its flash messages) alone
        return {}
    session = await get_session(request)
    flashes = session.pop(FLASH_KEY, [])
    return {
        "current_user": await current_user(request),
        "csrf_token": await csrf_token(request),
        "flashes": flashes,
        "request_path": request.path,
    }


def _display_time(value) -> str:
    text = iso(value)
    return text[:16].replace("T", " ") + " UTC" if text else ""


def add_filters(env: jinja2.Environment) -> None:
    env.filters["money"] = lambda v: money(v) if v is not None else ""
    env.filters["iso"] = iso
    env.filters["when"] = _display_time
