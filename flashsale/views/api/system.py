"""Operations routes: liveness, readiness, the server clock and the API's OpenAPI document."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from flashsale import db, openapi
from flashsale.appkeys import CTX
from flashsale.services import seckill
from flashsale.webjson import envelope

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
READY_TIMEOUT_S = 2.0

HEALTHZ_BODY = b'{"status":"ok"}'


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=HEALTHZ_BODY, content_type="application/json")


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    checks = {}
    for name, probe in (("mysql", db.fetch_value(ctx.db, "SELECT 1")), ("redis", ctx.redis.ping())):
        try:
            await asyncio.wait_for(probe, READY_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes to the log only
            log.warning("readyz: %s not ready: %r", name, exc)
            checks[name] = "down"
    ready = all(v == "ok" for v in checks.values())
    return envelope({"checks": checks, **({} if ready else {"reason": "unavailable"})},
                    status=200 if ready else 503, msg="ready" if ready else "not ready")


@routes.get("/api/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every JSON route (built once per process)."""
    return web.Response(body=openapi.document_bytes(), content_type="application/json")


@routes.get("/api/time")
async def server_time(request: web.Request) -> web.Response:
    return envelope({"server_time": await seckill.server_time(request.app[CTX])})
