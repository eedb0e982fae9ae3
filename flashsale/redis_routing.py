"""The purchase path's connection when it is more than one Redis: a cluster, or replicated writes.

`open_mux` returns redis_mux.RedisMux itself on a single Redis (the default: nothing here runs).
With `FLASHSALE_REDIS_WAIT_REPLICAS=N` each node's connection is a ReplicatedMux: a tick's scripted
writes resolve only after the `WAIT N timeout` sent right behind them on the same connection. On a
Redis Cluster, RoutedMux keeps one RedisMux per master and sends each command to the node that
owns its key's slot (slots and nodes from redis-py's cluster client; MOVED/ASK followed, scripts
loaded per node on NOSCRIPT).
"""
from __future__ import annotations

import asyncio
import collections
import functools
import logging
from typing import Any
from urllib.parse import urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flashsale.redis_mux import RedisMux, _Connection, pack

log = logging.getLogger(__name__)

SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL"})
MAX_REDIRECTS = 5


class NotReplicated(RedisTimeoutError):
    """WAIT saw fewer replicas than asked for within its timeout: the purchase is answered 503.

    The write did happen on the master: if the master survives, the request becomes an order
    (its result reads `queued`, then `success`); if a failover loses it, the buyer was told 503."""


class _Held:
    """A scripted write's reply, held until the WAIT that follows it on its connection answers."""
    __slots__ = ("future", "reply")

    def __init__(self, future: asyncio.Future):
        self.future = future
        self.reply: Any = _Held  # _Held itself: no reply yet


class _Gate:
    """The WAIT after one tick's scripted writes on one connection: releases or fails them together."""
    __slots__ = ("held", "replicas")

    def __init__(self, held: list[_Held], replicas: int):
        self.held = held
        self.replicas = replicas

    def open(self, acked: Any) -> None:
        ok = isinstance(acked, int) and acked >= self.replicas
        for item in self.held:
            if item.future.done() or item.reply is _Held:
                continue
            if ok:
                item.future.set_result(item.reply)
            else:
                item.future.set_exception(NotReplicated(
                    f"the write reached {acked if isinstance(acked, int) else 0} of {self.replicas} replicas in time"))


def _futures(items: Any) -> list[asyncio.Future]:
    """The callers' futures among queued items; a gate stands for the writes it holds (their
    replies came, their WAIT did not: they fail with the connection too, never stranded)."""
    futures: list[asyncio.Future] = []
    for item in items:
        kind = type(item)
        if kind is _Gate:
            futures.extend(held.future for held in item.held)
        else:
            futures.append(item.future if kind is _Held else item)
    return futures


class _ReplicatedConnection(_Connection):
    """A connection whose waiting queue also holds _Held writes and the _Gate of their WAIT."""

    def data_received(self, data: bytes) -> None:
        self.replied = True
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(exc)
                return
            if reply is False:
                return
            if not self.waiting:
                self.abort(RuntimeError("unexpected reply from Redis"))
                return
            item = self.waiting.popleft()
            kind = type(item)
            if kind is _Gate:
                item.open(reply)
                continue
            future = item.future if kind is _Held else item
            if future.done():
                continue
            if isinstance(reply, ResponseError):
                # an error wrote nothing: no need to wait for replicas
                future.set_exception(NoScriptError(str(reply)) if str(reply).startswith("NOSCRIPT") else reply)
            elif kind is _Held:
                item.reply = reply
            else:
                future.set_result(reply)

    def _fail(self, exc: BaseException | None) -> None:
        self.waiting = collections.deque(_futures(self.waiting))
        super()._fail(exc)


class ReplicatedMux(RedisMux):
    """RedisMux whose scripted writes resolve only after `WAIT replicas timeout`, queued once per
    tick right behind that tick's commands on the same connection: the WAIT's cost is shared by
    every purchase of the tick."""

    connection_class = _ReplicatedConnection

    def __init__(self, url: str, replicas: int, timeout_ms: int, connect_timeout_s: float = 2.0):
        # a reply may wait for WAIT's timeout: the watchdog allows for it
        super().__init__(url, connect_timeout_s, reply_timeout_s=5.0 + timeout_ms / 1000)
        self.replicas = replicas
        self.wait_command = pack(("WAIT", replicas, timeout_ms))
        self.held: list[_Held] = []

    def call(self, *args: Any) -> asyncio.Future:
        future = super().call(*args)
        if args[0] not in SCRIPT_COMMANDS or future.done():  # done: failed at once (backing off)
            return future
        held = _Held(future)
        self.pending[-1] = held
        if not self.held:
            self.loop.call_soon(self._flush)
        self.held.append(held)
        return future

    def _flush(self) -> None:
        if self.held:
            self.outbox.append(self.wait_command)
            self.pending.append(_Gate(self.held, self.replicas))
            self.held = []
        super()._flush()

    def _fail_pending(self, error: Exception) -> None:
        self.pending, self.held = _futures(self.pending), []
        super()._fail_pending(error)


class RoutedMux:
    """Sends each command to the pipelined connection of the node that owns its key's slot.

    Slots and nodes come from redis-py's cluster client (`nodes_manager`); a MOVED reply
    refreshes them and the command is sent again, an ASK reply sends ASKING and the command to
    the node named. A NOSCRIPT reply loads the script on that node and sends the command again.
    Without a cluster (`cluster=None`) every command goes to the one node: used for WAIT alone."""

    def __init__(self, settings: Any, cluster: Any | None, sources: dict[str, str]):
        self.settings = settings
        self.cluster = cluster
        self.sources = sources  # script SHA -> source
        self.nodes: dict[tuple[str, int], RedisMux] = {}
        self.refreshing: asyncio.Task | None = None
        parts = urlsplit(settings.redis_url)
        self.single = (parts.hostname or "127.0.0.1", parts.port or 6379)

    def call(self, *args: Any) -> asyncio.Future:
        """Straight onto the owning node's connection, in this tick, while the topology is known;
        a reply that says the command did not run there (MOVED, ASK, NOSCRIPT) sends it again
        through _call, which follows the redirect."""
        if self.cluster is not None and self.cluster._initialize:
            return asyncio.ensure_future(self._call(args))
        inner = self._owner(args).call(*args)
        outer = inner.get_loop().create_future()
        inner.add_done_callback(functools.partial(self._first_reply, outer, args))
        return outer

    def _owner(self, args: tuple[Any, ...]) -> RedisMux:
        if self.cluster is None:
            return self._mux(*self.single)
        node = self.cluster.get_node_from_key(args[3] if args[0] in SCRIPT_COMMANDS else args[1])
        return self._mux(node.host, node.port)

    def _first_reply(self, outer: asyncio.Future, args: tuple[Any, ...], inner: asyncio.Future) -> None:
        if outer.done():
            return
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is None:
            outer.set_result(inner.result())
            return
        if isinstance(exc, NoScriptError) or (
                isinstance(exc, ResponseError) and str(exc).partition(" ")[0] in ("MOVED", "ASK")):
            retry = asyncio.ensure_future(self._call(args))
            retry.add_done_callback(functools.partial(_pass_on, outer))
            return
        if isinstance(exc, RedisConnectionError) and self.cluster is not None:
            self.loop_refresh()  # a node gone (a failover?): not sent again, it may have run
        outer.set_exception(exc)

    def _mux(self, host: str, port: int) -> RedisMux:
        mux = self.nodes.get((host, port))
        if mux is None:
            s = self.settings
            parts = urlsplit(s.redis_url)
            auth = f"{parts.username or ''}:{parts.password}@" if parts.password else ""
            db = 0 if self.cluster is not None else (parts.path or "/0").lstrip("/") or 0
            url = f"redis://{auth}{host}:{port}/{db}"
            mux = (ReplicatedMux(url, s.redis_wait_replicas, s.redis_wait_timeout_ms)
                   if s.redis_wait_replicas > 0 else RedisMux(url))
            self.nodes[(host, port)] = mux
        return mux

    async def _route(self, args: tuple[Any, ...]) -> RedisMux:
        if self.cluster is not None and self.cluster._initialize:
            await self.cluster.initialize()
        return self._owner(args)

    async def _call(self, args: tuple[Any, ...]) -> Any:
        mux = await self._route(args)
        for _ in range(MAX_REDIRECTS):
            try:
                return await mux.call(*args)
            except NoScriptError:
                source = self.sources.get(args[1]) if args[0] == "EVALSHA" else None
                if source is None:
                    raise
                await mux.call("SCRIPT", "LOAD", source)
            except ResponseError as exc:
                kind, _, rest = str(exc).partition(" ")
                if kind == "MOVED":
                    await self.refresh()
                    mux = await self._route(args)
                elif kind == "ASK":
                    host, _, port = rest.split(" ")[-1].rpartition(":")
                    mux = self._mux(host, int(port))
                    asking = mux.call("ASKING")
                    try:
                        return await mux.call(*args)
                    finally:
                        await asyncio.gather(asking, return_exceptions=True)
                else:
                    raise
            except RedisConnectionError:
                # a node gone (a failover?): learn the new topology for the next calls; this
                # one is not sent again, it may have run
                if self.cluster is not None:
                    self.loop_refresh()
                raise
        raise ResponseError("too many cluster redirections")

    def loop_refresh(self) -> None:
        if self.refreshing is None or self.refreshing.done():
            self.refreshing = asyncio.ensure_future(self._refresh())

    async def refresh(self) -> None:
        """One topology refresh at a time; callers that arrive meanwhile wait for it."""
        self.loop_refresh()
        await asyncio.shield(self.refreshing)

    async def _refresh(self) -> None:
        try:
            await self.cluster.nodes_manager.initialize()
        except Exception:
            log.warning("refreshing the Redis Cluster topology failed", exc_info=True)

    async def close(self) -> None:
        for mux in self.nodes.values():
            await mux.close()
        self.nodes.clear()


def _pass_on(outer: asyncio.Future, done: asyncio.Future) -> None:
    if outer.done():
        return
    if done.cancelled():
        outer.cancel()
    elif done.exception() is not None:
        outer.set_exception(done.exception())
    else:
        outer.set_result(done.result())


def open_mux(settings: Any, redis: Any, scripts: Any) -> RedisMux | RoutedMux:
    """The purchase path's connection: the lean RedisMux on a single Redis (unchanged), else
    one routed over the cluster's masters and/or waiting for replicas."""
    if not settings.redis_cluster and settings.redis_wait_replicas <= 0:
        return RedisMux(settings.redis_url)
    sources = {s.sha: s.script for s in vars(scripts).values() if hasattr(s, "sha") and hasattr(s, "script")}
    return RoutedMux(settings, redis if settings.redis_cluster else None, sources)
