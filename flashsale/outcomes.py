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
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)

RECENT_MAX = 50_000  # outcomes remembered for late waiters (a few batches' worth of a big sale)
RECORD_RETRY_S = (0.1, 0.2, 0.4, 0.8)  # pauses before a batch's outcomes are sent again


def publish_message(sale_id: int, outcomes: dict[str, str]) -> bytes:
    """The notice of one committed batch: {"s": sale, "o": {request id: "success:<order>"|"failed:<reason>"}}."""
    return orjson.dumps({"s": sale_id, "o": outcomes})


async def record(ctx, sale_id: int, stream: str, group: str, by_home: dict[int, dict[str, str]],
                 acked: list[str]) -> None:
    """A committed batch's outcomes: the results on each buyer's home shard, the acks, one notice.

    On the context's lean connection, whose hiredis packs a batch's thousand arguments at a
    tenth of redis-py's pipeline cost: one write on one Redis (on a cluster the results and acks
    go to their masters and the notice follows them). All three are idempotent, so a lost
    connection (Redis restarting, or the connection still backing off) is met by sending them
    again for about 1.5 s, before the consumer's slower recovery (its pending entries read and
    written again) takes over."""
    k, mux, cluster = ctx.keys, ctx.mux, ctx.settings.redis_cluster
    notice = ("PUBLISH", k.outcomes_channel(),
              publish_message(sale_id, {rid: o for results in by_home.values() for rid, o in results.items()}))
    for pause in (*RECORD_RETRY_S, None):
        calls = [mux.call("HSET", k.sale_results(sale_id, home), *(x for kv in results.items() for x in kv))
                 for home, results in by_home.items()]
        calls.append(mux.call("XACK", stream, group, *acked))
        if not cluster:
            calls.append(mux.call(*notice))
        replies = await asyncio.gather(*calls, return_exceptions=True)  # every failure retrieved
        failed = next((r for r in replies if isinstance(r, BaseException)), None)
        try:
            if failed is not None:
                raise failed
            if cluster:
                await mux.call(*notice)
            return
        except RedisConnectionError:
            if pause is None:
                raise
            await asyncio.sleep(pause)


async def publish(ctx, sale_id: int, outcomes: dict[str, str]) -> None:
    """Publish one notice on its own (a dead letter); a committed batch's goes with its record()."""
    if outcomes:
        await ctx.redis.publish(ctx.keys.outcomes_channel(), publish_message(sale_id, outcomes))


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


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
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiters.setdefault(request_id, []).append(future)
        # a timer of its own rather than asyncio.wait_for, which wraps the future in another and
        # wakes the buyer one turn of the event loop later
        timer = loop.call_later(timeout_s, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()
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
