"""The stock-returned notice: a sale's stock came back, so every process clears its sold-out flag.

On one Redis it is ordinary pub/sub. On a Redis Cluster it is sharded pub/sub (SPUBLISH /
SSUBSCRIBE, Redis 7): the channel lives on the node that owns its slot, so a notice costs that
node alone instead of being broadcast over the cluster bus to every node; redis-py's cluster
pub/sub follows the channel to its new owner after a failover or a slot move.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from flashsale.context import Context


async def publish(ctx: Context, sale_id: int) -> None:
    channel = ctx.keys.stock_channel()
    if ctx.settings.redis_cluster:
        await ctx.redis.spublish(channel, sale_id)
    else:
        await ctx.redis.publish(channel, sale_id)


async def subscribe(ctx: Context, pubsub: Any) -> Callable[..., Awaitable[dict | None]]:
    """Subscribe `pubsub` (made by ctx.redis.pubsub()) to the channel; returns its receive call."""
    channel = ctx.keys.stock_channel()
    if ctx.settings.redis_cluster:
        await ctx.redis.initialize()  # the slot map, to find the channel's node (once per client)
        await pubsub.ssubscribe(channel)
        return pubsub.get_sharded_message
    await pubsub.subscribe(channel)
    return pubsub.get_message
