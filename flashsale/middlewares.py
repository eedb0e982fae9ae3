"""The error middleware: every failure becomes the contract's envelope or a friendly page."""
from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from aiohttp_jinja2 import REQUEST_CONTEXT_KEY
from asyncmy.errors import OperationalError
from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flashsale import db
from flashsale.appkeys import REQUEST_ID
from flashsale.errors import Refusal, Unauthenticated
from flashsale.templating import page_context
from flashsale.webjson import envelope

log = logging.getLogger("flashsale.errors")

# MySQL or Redis out of reach: 503, never a 500 with internals. redis-py's BusyLoadingError and
# "No connection available" (the pool stayed exhausted for FLASHSALE_REDIS_POOL_WAIT_S) are
# ConnectionErrors.
UNAVAILABLE_ERRORS = (OperationalError, RedisConnectionError, RedisTimeoutError, OSError)
# Redis answering but not serving for a while: loading its data after a restart, a busy script, a
# replica (or a failover in progress), a cluster resharding. redis-py raises ReadOnlyError,
# TryAgainError, ClusterDownError... (ResponseErrors); the purchase path's own connection
# (redis_mux.py) raises a plain ResponseError carrying the same first word.
TRANSIENT_REDIS_REPLIES = ("LOADING", "BUSY", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN",
                           "NOREPLICAS")


TRANSIENT_REDIS_ERRORS = (ReadOnlyError, TryAgainError, ClusterDownError)  # redis-py strips their first word


def is_transient_redis_reply(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_REDIS_ERRORS) or (
        isinstance(exc, RedisResponseError) and str(exc).startswith(TRANSIENT_REDIS_REPLIES))

# aiohttp's own HTTP errors, named as the contract names them
HTTP_REASONS = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
    429: "rate_limited", 503: "unavailable",
}
HTTP_MESSAGES = {
    404: "Not found.", 405: "Method not allowed.", 413: "The request body is too large.",
}


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


async def page_globals(request: web.Request) -> dict[str, Any]:
    """What base.html needs, when the failure came before the context processor ran (CSRF, body size)."""
    if "request_path" in request.get(REQUEST_CONTEXT_KEY, {}):
        return {}
    try:
        return await page_context(request)
    except Exception:  # the failure may be the very backend the page context reads (Redis down)
        return {"current_user": None, "csrf_token": "", "flashes": lambda: [], "request_path": request.path}


async def error_page(request: web.Request, status: int, message: str,
                     headers: dict[str, str] | None = None) -> web.Response:
    template = "errors/404.html" if status == 404 else "errors/error.html"
    context = {**await page_globals(request),
               "status": status, "message": message, "request_id": request_id(request)}
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if headers:
        response.headers.update(headers)
    return response


def request_id(request: web.Request) -> str:
    """The client's X-Request-Id, or one made when first needed (only failures need one)."""
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = request[REQUEST_ID] = request.headers.get("X-Request-Id", "")[:64] or os.urandom(8).hex()
    return rid


async def unavailable(request: web.Request) -> web.Response:
    log.warning("backend unavailable in %s %s [request %s]", request.method, request.path,
                request_id(request), exc_info=True)
    message = "The service is briefly unavailable; try again."
    if wants_json(request):
        return envelope({"reason": "unavailable"}, status=503, msg=message, headers={"Retry-After": "1"})
    return await error_page(request, 503, message, {"Retry-After": "1"})


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except Refusal as exc:
        if wants_json(request):
            return envelope({"reason": exc.reason, **exc.data}, status=exc.status,
                            msg=exc.message, headers=exc.headers or None)
        if isinstance(exc, Unauthenticated) and request.method == "GET":
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}") from None
        return await error_page(request, exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = HTTP_REASONS.get(exc.status, "error")
        message = HTTP_MESSAGES.get(exc.status, exc.reason)
        if wants_json(request):
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            return envelope({"reason": reason}, status=exc.status, msg=message, headers=headers or None)
        return await error_page(request, exc.status, message)
    except ConnectionResetError:
        raise
    except UNAVAILABLE_ERRORS:
        return await unavailable(request)
    except Exception as exc:
        if is_transient_redis_reply(exc) or db.is_connection_lost(exc):
            return await unavailable(request)
        rid = request_id(request)
        log.exception("unhandled error in %s %s [request %s]", request.method, request.path, rid)
        message = f"Something went wrong on our side (request {rid})."
        if wants_json(request):
            return envelope({"reason": "internal", "request_id": rid}, status=500, msg=message)
        return await error_page(request, 500, message)
