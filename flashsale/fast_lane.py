"""The fast lane: hot JSON routes skip the middleware chain they do not need.

A handler marked `@fast_lane` does its own session and CSRF checks (from the cookie, as the
purchase does) and answers its refusals itself (`refusal_response`, or a prebuilt answer such as
`sold_out_response`), so it needs neither aiohttp-session's object, nor the page context, nor the
CSRF middleware. The outermost middleware counts it (as the metrics middleware does) and runs it
under the error middleware only, so a backend failure is still the contract's 503/500.
"""
from __future__ import annotations

import functools

from aiohttp import web

from flashsale.errors import Refusal, SoldOut
from flashsale.jsonio import dumps
from flashsale.metrics import metrics_middleware
from flashsale.middlewares import error_middleware
from flashsale.webjson import JSON


def fast_lane(handler):
    handler.fast_lane = True
    return handler


def refusal_response(exc: Refusal) -> web.Response:
    """The envelope the error middleware would make of this refusal, without raising through it."""
    body = dumps({"code": exc.status, "msg": exc.message, "data": {"reason": exc.reason, **exc.data}})
    return web.Response(body=body, status=exc.status, content_type=JSON, headers=exc.headers or None)


_SOLD_OUT = SoldOut()
_SOLD_OUT_BODY = dumps({"code": _SOLD_OUT.status, "msg": _SOLD_OUT.message, "data": {"reason": _SOLD_OUT.reason}})


def sold_out_response() -> web.Response:
    """The sold-out envelope is constant: its bytes are made once."""
    return web.Response(body=_SOLD_OUT_BODY, status=_SOLD_OUT.status, content_type=JSON,
                        headers=_SOLD_OUT.headers or None)


@web.middleware
async def fast_lane_middleware(request: web.Request, handler):
    """Outermost: a fast-lane handler runs under the error middleware alone, counted here."""
    route_handler = request.match_info.handler
    if not getattr(route_handler, "fast_lane", False):
        return await handler(request)
    # counted as the metrics middleware counts every other route, under the error middleware alone
    return await metrics_middleware(request, functools.partial(error_middleware, handler=route_handler))
