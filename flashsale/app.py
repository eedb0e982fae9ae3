"""The app factory: one web.Application for run.py and the tests alike."""
from __future__ import annotations

import asyncio
import logging
import random
from urllib.parse import urlsplit

import aiohttp_session
import jinja2
from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from flashsale import metrics, security_headers, templating
from flashsale.admission import Admission
from flashsale.broadcast import Broadcasts
from flashsale.appkeys import ADMISSION, BROADCASTS, CTX, LIVE_LIMITS, OUTCOMES, SALE_CACHE, SETTINGS
from flashsale.consumers import engine_ctx
from flashsale.context import open_context
from flashsale.csrf import csrf_middleware
from flashsale.fast_lane import fast_lane_middleware
from flashsale.live_limits import LiveLimits
from flashsale.middlewares import error_middleware
from flashsale.outcomes import Outcomes
from flashsale.routes import setup_routes
from flashsale.sale_cache import SaleCache
from flashsale.sessions import SESSIONS, SessionCookies
from flashsale.settings import ROOT, Settings

log = logging.getLogger(__name__)


async def context_ctx(app: web.Application):
    async with open_context(app[SETTINGS]) as ctx:
        app[CTX] = ctx
        yield


async def admission_ctx(app: web.Application):
    """The purchase path: its pipeline is the context's lean connection, closed with the context
    (after the engine stopped)."""
    app[ADMISSION] = Admission(app[CTX])
    yield


async def outcomes_ctx(app: web.Application):
    """The waiter table of buyers long-polling their outcome, and its one subscription."""
    outcomes = Outcomes()
    app[OUTCOMES] = outcomes
    stop = asyncio.Event()
    ctx = app[CTX]
    options = {"decode_responses": True, "socket_connect_timeout": 2, "health_check_interval": 30}

    def subscriber() -> Redis:
        nodes = ctx.redis.get_nodes() if isinstance(ctx.redis, RedisCluster) else []
        if nodes:  # a node the cluster client knows (none before its first command), at random
            node, url = random.choice(nodes), urlsplit(ctx.settings.redis_url)
            return Redis(host=node.host, port=node.port, username=url.username, password=url.password, **options)
        return Redis.from_url(ctx.settings.redis_url, **options)

    listener = asyncio.create_task(outcomes.listen(subscriber, ctx.keys.outcomes_channel(), stop),
                                   name="outcome-listener")
    yield
    stop.set()
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)


async def live_ctx(app: web.Application):
    """The per-process sale cache and the live broadcasters that read through it."""
    cache = SaleCache(app[CTX])
    app[SALE_CACHE] = cache

    async def figures(sale_id: int) -> dict:
        sale = await cache.sale(sale_id)
        return {"remaining": sale["remaining"], "state": sale["state"], "server_time": await cache.server_time()}

    broadcasts = Broadcasts(figures)
    app[BROADCASTS] = broadcasts
    yield
    await broadcasts.close()


def create_app(settings: Settings) -> web.Application:
    sessions = SessionCookies(settings)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            aiohttp_session.session_middleware(sessions),
            error_middleware,
            templating.page_context_middleware,
            csrf_middleware,
        ],
    )
    app[SETTINGS] = settings
    app[LIVE_LIMITS] = LiveLimits(settings.ws_per_client, settings.ws_per_process)
    app[SESSIONS] = sessions
    metrics.setup(app)
    security_headers.setup(app)
    app.middlewares.insert(0, fast_lane_middleware)  # outermost: hot routes skip the rest
    templating.setup(app, jinja2.FileSystemLoader(str(ROOT / "templates")))
    app.cleanup_ctx.append(context_ctx)
    app.cleanup_ctx.append(admission_ctx)
    app.cleanup_ctx.append(outcomes_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(engine_ctx)
    setup_routes(app)
    return app
