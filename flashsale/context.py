"""The shared resources a service needs, opened once per process (by the app or a command)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asyncmy.pool import Pool
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from flashsale import db
from flashsale.mailer import LogMailer
from flashsale.order_numbers import OrderNumbers
from flashsale.passwords import Cost, Hasher
from flashsale.redis_keys import Keys
from flashsale.redis_routing import open_mux
from flashsale.scripts import Scripts
from flashsale.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    db: Pool
    redis: Redis
    keys: Keys
    hasher: Hasher
    scripts: Scripts
    # the lean pipelined connection (redis_mux.py; routed on a cluster): the purchase path and the
    # reads every request makes (the session check, the sale page's buyer state) go through it
    mux: Any = None
    mailer: Any = field(default_factory=LogMailer)
    order_numbers: OrderNumbers = field(default_factory=OrderNumbers)


# redis-py (8.x) skips its check for a pooled connection the server closed (EOF seen) while
# "maintenance notifications" are on, and "auto" counts as on: after a Redis restart every
# pooled connection then failed its next command once (a 503). Off, the pool reconnects a closed
# connection before handing it out. No command is retried blindly: a script such as release.lua
# is not idempotent, and a reply lost after it ran must not run it twice.
STALE_SAFE = {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}
# redis-py's cluster client sends a command again (up to 10 times) after a ConnectionError or
# TimeoutError, also one that may have run: a script that gives a unit back, or an XREADGROUP ">"
# whose entries were delivered before the reply was lost (they then sat pending until the
# reclaimer, 30-45 s). As on one Redis, nothing is sent again blindly: the caller sees the error
# (a 503, or a background loop that re-reads its own pending entries). MOVED/ASK are still followed.
NO_BLIND_RETRY = {"retry": Retry(NoBackoff(), 0)}
CONNECT_ATTEMPTS = 3  # a command whose connection could not be made was never sent: tried again
PUBSUB_ROOM = 16  # a cluster node's connections beyond the commands in flight: pub/sub listeners


# redis-py 8.1's cluster client answers a failover's CLUSTERDOWN by closing every connection of
# the client, also one that another task is connecting or writing on: that task then fails with
# AttributeError ('NoneType' object has no attribute 'writelines'). It is a lost connection,
# and is reported as one (a 503 to a buyer, a retry in the background loops), never a 500.
def _as_lost_connection(exc: AttributeError) -> RedisConnectionError:
    return RedisConnectionError(f"connection closed under a cluster topology refresh ({exc})")


class _Pipeline(ClusterPipeline):
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        async with self.cluster_client.in_flight():
            try:
                return await super().execute(*args, **kwargs)
            except AttributeError as exc:
                raise _as_lost_connection(exc) from exc


class Cluster(RedisCluster):
    """redis-py's cluster client, routing stream reads by their key locally.

    redis-py asks one fixed node (`COMMAND GETKEYS`) where a command with movable keys goes:
    one more round trip per XREADGROUP, and none at all once that node is down (it is not
    re-chosen after a failover). A stream read's key follows STREAMS, so find it here.
    A connection closed under another task's topology refresh is a ConnectionError (above).

    redis-py's per-node pools cannot wait: past their cap they raise MaxConnectionsError at once.
    Like the single-Redis BlockingConnectionPool, a burst here waits instead: at most `limit`
    commands (or pipelines) are in flight, so no node's pool holds more connections than that;
    a caller that waits `wait_s` for a turn gets "No connection available." (a 503)."""

    def __init__(self, *args: Any, limit: int = 64, wait_s: float = 2.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(limit)
        self._wait_s = wait_s

    @contextlib.asynccontextmanager
    async def in_flight(self) -> AsyncIterator[None]:
        if not self._turns.locked():
            await self._turns.acquire()  # free: no wait
        else:
            try:
                await asyncio.wait_for(self._turns.acquire(), self._wait_s)
            except asyncio.TimeoutError:
                raise RedisConnectionError("No connection available.") from None
        try:
            yield
        finally:
            self._turns.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(CONNECT_ATTEMPTS):
            async with self.in_flight():
                try:
                    return await super().execute_command(*args, **kwargs)
                except AttributeError as exc:
                    raise _as_lost_connection(exc) from exc
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    # a connection that could not be made sent nothing: safe to try again (the
                    # client reads the topology first); anything else may have run, it is not
                    if attempt == CONNECT_ATTEMPTS - 1 or "connecting to" not in str(exc):
                        raise
            await asyncio.sleep(0.05 * (attempt + 1))

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        """A plain pipeline, also when a transaction is asked for. redis-py 8.1's async cluster
        transaction runs each queued command through asyncio.run() in a thread of its own, on an
        event loop of its own: connections and the topology lock then cross loops, and the app's
        tasks find their connections closed (a cascade of 'NoneType has no writelines'). The app's
        transactions are each on one user's key (HSET + EXPIRE NX, DEL + HSET + EXPIRE: what MULTI
        adds is that a crash cannot split them); on a cluster they go as a plain pipeline."""
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused by redis-py
        return _Pipeline(self, False)

    async def _determine_slot(self, command: str, *args: Any) -> int:
        if command.upper() in ("XREADGROUP", "XREAD"):
            for i, arg in enumerate(args):
                if arg in (b"STREAMS", "STREAMS"):
                    return self.keyslot(args[i + 1])
        return await super()._determine_slot(command, *args)


def open_redis(settings: Settings) -> Redis | RedisCluster:
    if settings.redis_cluster:
        # any node's address; redis-py learns the others and the slots from it. At most
        # redis_max_connections commands in flight (a burst waits its turn, as on one Redis); each
        # node's pool has room for them and for the pub/sub connections beside them
        return Cluster.from_url(
            settings.redis_url, decode_responses=True, limit=settings.redis_max_connections,
            wait_s=settings.redis_pool_wait_s, max_connections=settings.redis_max_connections + PUBSUB_ROOM,
            socket_connect_timeout=2, socket_timeout=5, health_check_interval=30, **STALE_SAFE, **NO_BLIND_RETRY)
    # a blocking pool: a burst waits for a free connection instead of failing, but only for
    # redis_pool_wait_s; then redis-py raises ConnectionError("No connection available."), a 503
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, decode_responses=True, max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_wait_s, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30,
        **STALE_SAFE)
    return Redis(connection_pool=pool)


def open_reader(settings: Settings) -> Redis | RedisCluster:
    """For blocking stream reads: they park a connection each, so a pool of their own."""
    if settings.redis_cluster:
        return Cluster.from_url(settings.redis_url, decode_responses=True, limit=10_000, max_connections=10_000,
                                socket_connect_timeout=2, health_check_interval=30, **STALE_SAFE, **NO_BLIND_RETRY)
    return Redis.from_url(settings.redis_url, decode_responses=True, max_connections=10_000,
                          socket_connect_timeout=2, health_check_interval=30, **STALE_SAFE)


async def learn_topology(redis: Redis | RedisCluster) -> None:
    """A cluster client's slots and nodes, before its first commands run side by side: learned
    lazily, the first command's refresh replaces the nodes and closes the connections the others
    were using. Redis not up yet: learned on first use then."""
    if isinstance(redis, RedisCluster):
        try:
            await redis.initialize()
        except (RedisError, OSError) as exc:
            log.warning("the Redis Cluster's topology could not be read yet (%r); read on first use", exc)


@contextlib.asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[Context]:
    """Open the pool, Redis and the hasher; close only what was opened."""
    pool = await db.create_pool(settings)
    try:
        redis = open_redis(settings)
        await learn_topology(redis)
        try:
            hasher = Hasher(Cost(settings.scrypt_n, settings.scrypt_r, settings.scrypt_p),
                            settings.hash_threads, settings.hash_queue)
            scripts = Scripts(redis)
            mux = open_mux(settings, redis, scripts)  # connects on its first command
            try:
                yield Context(settings=settings, db=pool, redis=redis,
                              keys=Keys(settings.redis_prefix), hasher=hasher,
                              scripts=scripts, mux=mux)
            finally:
                await mux.close()
                hasher.close()
        finally:
            if isinstance(redis, RedisCluster):
                await redis.aclose()
            else:
                await redis.aclose(close_connection_pool=True)
    finally:
        await db.close_pool(pool)
