"""CSRF: state-changing requests of a logged-in session (and every page form) carry its token."""
from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp_session import get_session

from flashsale.auth import current_user
from flashsale.errors import CsrfFailed
from flashsale.webjson import JSON, media_type, read_form

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# these work without a session; requiring a JSON body keeps a cross-site HTML form from
# reaching them (a form cannot send application/json)
JSON_ONLY_PATHS = frozenset({
    "/api/auth/login", "/api/auth/register", "/api/auth/reset-request", "/api/auth/reset",
})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a header with a non-UTF-8 byte (kept by aiohttp as a surrogate)
    is simply wrong, not a 500."""
    if not expected or not given:
        return False
    try:
        return hmac.compare_digest(expected.encode(), given.encode())
    except UnicodeEncodeError:
        return False


def checks_own_csrf(handler):
    """Mark a hot handler that checks the session's token itself (from the cookie it reads anyway)."""
    handler.checks_own_csrf = True
    return handler


@web.middleware
async def csrf_middleware(request: web.Request, handler):
    if request.method in SAFE_METHODS:
        return await handler(request)
    if getattr(request.match_info.handler, "checks_own_csrf", False):
        return await handler(request)
    if request.path in JSON_ONLY_PATHS:
        if media_type(request) != JSON:
            raise CsrfFailed("Send this request as application/json.")
        return await handler(request)
    if request.path.startswith("/api/"):
        # an anonymous API call has nothing to protect; the handler answers 401 where needed
        if await current_user(request) is None:
            return await handler(request)
    session = await get_session(request)
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token")
    if given is None and media_type(request) in FORM_TYPES:
        form = await read_form(request)
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not token_matches(expected, given):
        raise CsrfFailed()
    return await handler(request)
