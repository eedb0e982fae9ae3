"""The app factory: one web.Application for run.py and the tests alike."""
from __future__ import annotations

import base64
import hashlib
import logging

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from flashsale import metrics, templating
from flashsale.appkeys import CTX, SESSION_FERNET, SETTINGS
from flashsale.auth import SESSION_COOKIE
from flashsale.consumers import engine_ctx
from flashsale.context import open_context
from flashsale.csrf import csrf_middleware
from flashsale.middlewares import error_middleware
from flashsale.routes import setup_routes
from flashsale.settings import ROOT, Settings

log = logging.getLogger(__name__)


def session_fernet(settings: Settings) -> Fernet:
    # the cookie key is derived from the secret, so every worker decrypts every cookie
    key = hashlib.sha256(b"flashsale-session:" + settings.secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def session_storage(settings: Settings, fernet: Fernet) -> EncryptedCookieStorage:
    return EncryptedCookieStorage(
        fernet, cookie_name=SESSION_COOKIE, httponly=True, samesite="Lax",
        secure=settings.cookie_secure or None, max_age=settings.session_max_age_s,
    )


async def context_ctx(app: web.Application):
    async with open_context(app[SETTINGS]) as ctx:
        app[CTX] = ctx
        yield


def create_app(settings: Settings) -> web.Application:
    fernet = session_fernet(settings)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            aiohttp_session.session_middleware(session_storage(settings, fernet)),
            error_middleware,
            csrf_middleware,
        ],
    )
    app[SETTINGS] = settings
    app[SESSION_FERNET] = fernet
    metrics.setup(app)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(ROOT / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[templating.page_context],
    )
    templating.add_filters(aiohttp_jinja2.get_env(app))
    app.cleanup_ctx.append(context_ctx)
    app.cleanup_ctx.append(engine_ctx)
    setup_routes(app)
    return app
