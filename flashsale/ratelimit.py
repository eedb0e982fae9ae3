"""Fixed-window counters in Redis: logins, registrations and reset requests (admit.lua counts purchase calls)."""
from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from flashsale.errors import RateLimited


async def ensure_below(redis: Redis, limits: list[tuple[str, int]]) -> None:
    """Refuse with 429 when any counter has reached its limit (counting happens elsewhere)."""
    async with redis.pipeline(transaction=False) as pipe:
        for key, _ in limits:
            pipe.get(key)
            pipe.pttl(key)
        replies = await pipe.execute()
    for i, (_, limit) in enumerate(limits):
        count, ttl_ms = replies[2 * i], replies[2 * i + 1]
        if count is not None and int(count) >= limit:
            raise RateLimited(retry_after_s=_seconds(ttl_ms))


async def count(redis: Redis, keys: list[str], window_s: int) -> None:
    """Add one to each counter; a counter's window starts at its first hit."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
        await pipe.execute()


async def hit(redis: Redis, key: str, limit: int, window_s: int) -> None:
    """Count this call and refuse it when the window already holds `limit` calls."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s, nx=True)
        pipe.pttl(key)
        calls, _, ttl_ms = await pipe.execute()
    if int(calls) > limit:
        raise RateLimited(retry_after_s=_seconds(ttl_ms))


async def take(redis: Redis, limits: list[tuple[str, int, int]]) -> None:
    """Count this attempt on every (key, limit, window) in one MULTI (INCR + EXPIRE NX each, so
    concurrent attempts cannot all slip in), then refuse when any counter went past its limit.

    On a Redis Cluster the keys live on different slots, where one MULTI cannot span them: one
    pipeline then (still counted before the check, each INCR atomic on its own)."""
    async with redis.pipeline(transaction=not isinstance(redis, RedisCluster)) as pipe:
        for key, _, window_s in limits:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.pttl(key)
        replies = await pipe.execute()
    over = [replies[3 * i + 2] for i, (_, limit, _) in enumerate(limits) if int(replies[3 * i]) > limit]
    if over:
        raise RateLimited(retry_after_s=max(_seconds(ttl) for ttl in over))


async def clear(redis: Redis, keys: list[str]) -> None:
    await redis.delete(*keys)


def _seconds(ttl_ms: int | None) -> int:
    if ttl_ms is None or ttl_ms < 0:
        return 1
    return max(1, -(-int(ttl_ms) // 1000))
