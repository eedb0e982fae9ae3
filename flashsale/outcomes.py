"""Purchase outcomes pushed to waiting buyers: one waiter table per process, one notice per batch.

The consumer that commits a batch publishes ONE notice naming the sale and the request ids with
their outcomes (`publish_message`); every process holds ONE subscription to that channel and
resolves its local waiters. A buyer's long-poll (`GET /result?wait_ms=`) checks the current
outcome once, then waits on a future here: no Redis call per waiting buyer. Outcomes heard
recently are kept for a short while, so a notice that arrives between the buyer's check and the
registration of its waiter is not missed.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis

log = logging.getLogger(__name__)

RECENT_MAX = 50_000  # outcomes remembered for late waiters (a few batches' worth of a big sale)


def publish_message(sale_id: int, outcomes: dict[str, str]) -> bytes:
    """The notice of one committed batch: {"s": sale, "o": {request id: "success:<order>"|"failed:<reason>"}}."""
    return orjson.dumps({"s": sale_id, "o": outcomes})


async def publish(ctx, sale_id: int, outcomes: dict[str, str]) -> None:
    """Publish one notice (for paths that are not already in a pipeline, e.g. a dead letter)."""
    if outcomes:
        await ctx.redis.publish(ctx.keys.outcomes_channel(), publish_message(sale_id, outcomes))


class Outcomes:
    """request id -> futures of the buyers of this process waiting for it."""

    def __init__(self) -> None:
        self.waiters: dict[str, list[asyncio.Future]] = {}
        self.recent: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.subscribed = asyncio.Event()

    def resolve(self, outcomes: dict[str, str]) -> None:
        recent = self.recent
        for request_id, outcome in outcomes.items():
            recent[request_id] = outcome
            for future in self.waiters.pop(request_id, ()):
                if not future.done():
                    future.set_result(outcome)
        while len(recent) > RECENT_MAX:
            recent.popitem(last=False)

    def heard(self, request_id: str) -> str | None:
        return self.recent.get(request_id)

    async def wait(self, request_id: str, timeout_s: float) -> str | None:
        """The outcome of request_id once a notice names it, or None at the timeout."""
        outcome = self.recent.get(request_id)
        if outcome is not None or timeout_s <= 0:
            return outcome
        future = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(request_id, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            return None
        finally:
            futures = self.waiters.get(request_id)
            if futures is not None:
                try:
                    futures.remove(future)
                except ValueError:
                    pass
                if not futures:
                    del self.waiters[request_id]

    def handle(self, data: Any) -> None:
        try:
            message = orjson.loads(data)
            outcomes = message["o"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            log.warning("ignoring a malformed outcome notice: %r", data[:200] if data else data)
            return
        if isinstance(outcomes, dict):
            self.resolve(outcomes)

    async def listen(self, connect: Callable[[], Redis], channel: str, stop: asyncio.Event) -> None:
        """The process's one subscription to the outcome channel, on a client of its own (apart
        from the request pool) that `connect` makes for each attempt: on a cluster, any node will
        do (a PUBLISH reaches them all), so a lost node's subscription moves to another."""
        while not stop.is_set():
            redis = connect()
            try:
                async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    self.subscribed.set()
                    while not stop.is_set():
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None:
                            self.handle(message["data"])
            except Exception:  # Redis lost, or anything else: this loop must not die
                self.subscribed.clear()
                log.warning("outcome subscription lost; retrying", exc_info=True)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            finally:
                await redis.aclose()
