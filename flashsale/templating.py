"""What every page template gets: the user, the CSRF token, flash messages, formatting filters and
the shared labels."""
from __future__ import annotations

import warnings
from typing import Any

import aiohttp_jinja2
import jinja2
from markupsafe import Markup
from aiohttp import web
from aiohttp_session import get_session

from flashsale.auth import csrf_token, current_user
from flashsale.jsonio import iso, money
from flashsale.static_files import static_url
from flashsale.labels import ORDER_STATUS_LABELS, PAYMENT_CHOICES, PAYMENT_LABELS

FLASH_KEY = "flash"


async def flash(request: web.Request, message: str, category: str = "success") -> None:
    """Queue a message for the next page this session renders."""
    session = await get_session(request)
    session[FLASH_KEY] = [*session.get(FLASH_KEY, []), [category, message]][-5:]


# aiohttp-jinja2 reads its page context under a plain string key; setting it is expected here
warnings.filterwarnings("ignore", "It is recommended to use web.RequestKey", web.NotAppKeyWarning,
                        __name__)

# JSON, files and probes never render a template: they skip the page context (and its session)
NO_PAGE_PREFIXES = ("/api/", "/static/")
NO_PAGE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def page_context(request: web.Request) -> dict[str, Any]:
    session = await get_session(request)
    return {
        "current_user": await current_user(request),
        "csrf_token": await csrf_token(request),
        # taken only when a template shows them, so a POST that redirects keeps them for the next page
        "flashes": lambda: session.pop(FLASH_KEY, []),
        "request_path": request.path,
    }


@web.middleware
async def page_context_middleware(request: web.Request, handler):
    """What aiohttp-jinja2's context processors do, but only for page routes."""
    path = request.path
    if not path.startswith(NO_PAGE_PREFIXES) and path not in NO_PAGE_PATHS:
        request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = await page_context(request)
    return await handler(request)


def _display_time(value, style: str = "datetime", testid: str | None = None) -> Markup:
    """A time as `<time datetime="...Z">` with a readable UTC text; app.js rewrites it in the
    viewer's time zone. style: "datetime" (date and time) or "time" (the time of day only)."""
    text = iso(value)
    if not text:
        return Markup("")
    shown = (text[11:16] if style == "time" else text[:16].replace("T", " ")) + " UTC"
    extra = Markup(' data-testid="{}"').format(testid) if testid else ""
    return Markup('<time datetime="{}" data-local="{}"{}>{}</time>').format(text, style, extra, shown)


def add_filters(env: jinja2.Environment) -> None:
    """The formatting filters, and the label tables as globals (imported macros see them too)."""
    env.globals.update(ORDER_STATUS_LABELS=ORDER_STATUS_LABELS, PAYMENT_CHOICES=PAYMENT_CHOICES,
                       PAYMENT_LABELS=PAYMENT_LABELS)
    env.filters["money"] = lambda v: money(v) if v is not None else ""
    env.filters["iso"] = iso
    env.filters["when"] = _display_time
    env.globals["static_url"] = static_url


DICT_ATTRIBUTES = frozenset(dir(dict))


class DictFirstEnvironment(jinja2.Environment):
    """`sale.goods.name` on the plain dicts the views pass: the key at once.

    Jinja tries the attribute first and falls back to the item, and for a dict the failed
    attribute lookup raises (and catches) an AttributeError each time: a tenth of a sale page's
    CPU. For a name that is no attribute of dict, that lookup can only fail, so the item is read
    straight away; the same answer, without the exception. Everything else is Jinja's own lookup."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def setup(app: web.Application, loader: jinja2.BaseLoader) -> jinja2.Environment:
    """What aiohttp_jinja2.setup does, with DictFirstEnvironment and the filters added."""
    env = DictFirstEnvironment(loader=loader, autoescape=jinja2.select_autoescape(["html"]))
    env.globals.update(aiohttp_jinja2.GLOBAL_HELPERS)
    env.globals["app"] = app
    app[aiohttp_jinja2.APP_KEY] = env
    add_filters(env)
    return env
