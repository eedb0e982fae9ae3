"""Typed keys for the objects shared on the app and on each request."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from flashsale.context import Context
from flashsale.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CTX = web.AppKey("ctx", Context)  # the pool, Redis, key names, hasher, mailer
ADMISSION = web.AppKey("admission", "flashsale.admission.Admission")  # the purchase path's batching
ENGINE = web.AppKey("engine", "flashsale.consumers.Engine")  # consumers, reclaimer, sweeper
OUTCOMES = web.AppKey("outcomes", "flashsale.outcomes.Outcomes")  # buyers waiting for their outcome
BROADCASTS = web.AppKey("broadcasts", "flashsale.broadcast.Broadcasts")  # live figures per sale
SALE_CACHE = web.AppKey("sale_cache", "flashsale.sale_cache.SaleCache")  # warm sales' rows
LIVE_LIMITS = web.AppKey("live_limits", "flashsale.live_limits.LiveLimits")  # open live WebSockets

REQUEST_ID = web.RequestKey("request_id", str)
USER = web.RequestKey("user", Any)  # flashsale.auth.CurrentUser or None
