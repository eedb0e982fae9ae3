"""The catalog's revision: one Redis counter that every change to a sale or goods row bumps.

The per-process sale cache (sale_cache.py) reads it with the sale's stock once a second and reads
the sale's row from MySQL again only when it moved, so a watched or refreshed sale costs MySQL
nothing while nothing changes, and a change made through any process is seen by all within a
second. A bump lost with Redis (down, or restarted without the key) is caught too: the value
read differs from the one cached, or the row's own age limit (sale_cache.ROW_MAX_AGE_S) runs out.
"""
from __future__ import annotations

import logging

from redis.exceptions import RedisError

from flashsale.context import Context

log = logging.getLogger(__name__)


async def current(ctx: Context) -> str | None:
    return await ctx.redis.get(ctx.keys.catalog_revision())


async def bump(ctx: Context) -> None:
    """After a committed change; Redis trouble only delays what other processes see."""
    try:
        await ctx.redis.incr(ctx.keys.catalog_revision())
    except (RedisError, OSError):
        log.warning("bumping the catalog revision failed; caches catch up within their row age",
                    exc_info=True)
