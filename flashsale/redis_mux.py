"""A lean pipelined Redis connection for the purchase path.

Every command issued during one event-loop tick goes out in one write on one connection, and
the replies, parsed by hiredis, resolve their futures in order. This skips redis-py's
per-command machinery (connection pool, retries, response callbacks), which costs more than the
Redis work itself when thousands of buyers arrive in the same second. Replies are raw RESP values
(strings decoded as UTF-8); errors come back as redis-py's exception classes.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any
from urllib.parse import urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


def _encode(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, (int, float)) and not isinstance(arg, bool):
        return repr(arg).encode()
    raise TypeError(f"cannot send {type(arg).__name__} to Redis")


def pack(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("Redis handshake failed: %s", future.exception())


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: "RedisMux"):
        self.owner = owner
        self.reader = hiredis.Reader(replyError=ResponseError, encoding="utf-8")

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.owner.waiting
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            future = waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, ResponseError):
                if str(reply).startswith("NOSCRIPT"):
                    reply = NoScriptError(str(reply))
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(exc)


class RedisMux:
    """One connection, commands batched per tick, replies matched in order; reconnects on demand."""

    protocol = _Protocol

    def __init__(self, url: str, connect_timeout_s: float = 2.0):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.password = parts.password
        self.username = parts.username
        self.connect_timeout_s = connect_timeout_s
        self.transport: asyncio.Transport | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.outbox: list[bytes] = []
        self.connecting: asyncio.Future | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def call(self, *args: Any) -> asyncio.Future:
        """Queue one command; the returned future holds its reply."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        future = self.loop.create_future()
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(pack(args))
        self.waiting.append(future)
        return future

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            data, self.outbox = b"".join(self.outbox), []
            self.transport.write(data)
            return
        if self.connecting is None:
            self.connecting = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            self.transport, _ = await asyncio.wait_for(
                self.loop.create_connection(lambda: self.protocol(self), self.host, self.port),
                self.connect_timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            self._fail_all(RedisConnectionError(f"Redis at {self.host}:{self.port}: {exc}"))
            return
        finally:
            self.connecting = None
        # the handshake goes first; its replies are read into futures nobody awaits
        hello: list[bytes] = []
        if self.password:
            hello.append(pack(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)))
        if self.db:
            hello.append(pack(("SELECT", self.db)))
        for _ in hello:
            ignored = self.loop.create_future()
            ignored.add_done_callback(_log_failure)
            self.waiting.appendleft(ignored)
        self.transport.write(b"".join(hello + self.outbox))
        self.outbox = []

    def _lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail_all(RedisConnectionError(f"lost the connection to Redis: {exc!r}"))

    def _fail_all(self, exc: Exception) -> None:
        self.outbox = []
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


# --- replicated writes and Redis Cluster: used only when configured (open_mux) ----------------
# The single-Redis path above stays as it is; what follows wraps it.

SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL"})
MAX_REDIRECTS = 5


class NotReplicated(RedisTimeoutError):
    """WAIT saw fewer replicas than asked for within its timeout: the purchase is answered 503.

    The write did happen on the master: if the master survives, the request becomes an order
    (its result reads `queued`, then `success`); if a failover loses it, the buyer was told 503."""


class _Held:
    """A scripted write's reply, held until the WAIT that follows it in the same write answers."""
    __slots__ = ("future", "reply")

    def __init__(self, future: asyncio.Future):
        self.future = future
        self.reply: Any = _Held  # _Held itself: no reply yet


class _Gate:
    """The WAIT after one tick's scripted writes on one node: releases or fails them together."""
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


class _ReplicatedProtocol(_Protocol):
    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.owner.waiting
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            item = waiting.popleft()
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


class ReplicatedMux(RedisMux):
    """RedisMux whose scripted writes resolve only after `WAIT replicas timeout`, sent once per
    tick right after that tick's commands, in the same write: the WAIT's cost is shared by every
    purchase of the tick."""

    protocol = _ReplicatedProtocol

    def __init__(self, url: str, replicas: int, timeout_ms: int, connect_timeout_s: float = 2.0):
        super().__init__(url, connect_timeout_s)
        self.replicas = replicas
        self.wait_command = pack(("WAIT", replicas, timeout_ms))
        self.held: list[_Held] = []

    def call(self, *args: Any) -> asyncio.Future:
        if args[0] not in SCRIPT_COMMANDS:
            return super().call(*args)
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        future = self.loop.create_future()
        if not self.held:
            self.loop.call_soon(self._flush)
        held = _Held(future)
        self.outbox.append(pack(args))
        self.waiting.append(held)
        self.held.append(held)
        return future

    def _flush(self) -> None:
        if self.held:
            self.outbox.append(self.wait_command)
            self.waiting.append(_Gate(self.held, self.replicas))
            self.held = []
        super()._flush()

    def _fail_all(self, exc: Exception) -> None:
        self.outbox, self.held = [], []
        while self.waiting:
            item = self.waiting.popleft()
            future = item.future if type(item) is _Held else item
            if isinstance(future, asyncio.Future) and not future.done():
                future.set_exception(exc)


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
        return asyncio.ensure_future(self._call(args))

    def _mux(self, host: str, port: int) -> RedisMux:
        mux = self.nodes.get((host, port))
        if mux is None:
            s = self.settings
            parts = urlsplit(s.redis_url)
            auth = ""
            if parts.password:
                auth = f"{parts.username or ''}:{parts.password}@"
            url = f"redis://{auth}{host}:{port}/{0 if self.cluster is not None else (parts.path or '/0').lstrip('/') or 0}"
            mux = (ReplicatedMux(url, s.redis_wait_replicas, s.redis_wait_timeout_ms)
                   if s.redis_wait_replicas > 0 else RedisMux(url))
            self.nodes[(host, port)] = mux
        return mux

    async def _route(self, args: tuple[Any, ...]) -> RedisMux:
        if self.cluster is None:
            return self._mux(*self.single)
        if self.cluster._initialize:
            await self.cluster.initialize()
        key = args[3] if args[0] in SCRIPT_COMMANDS else args[1]
        node = self.cluster.get_node_from_key(key)
        return self._mux(node.host, node.port)

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


def open_mux(settings: Any, redis: Any, scripts: Any) -> "RedisMux | RoutedMux":
    """The purchase path's connection: the lean RedisMux on a single Redis (unchanged), else
    one routed over the cluster's masters and/or waiting for replicas."""
    if not settings.redis_cluster and settings.redis_wait_replicas <= 0:
        return RedisMux(settings.redis_url)
    sources = {s.sha: s.script for s in vars(scripts).values() if hasattr(s, "sha") and hasattr(s, "script")}
    return RoutedMux(settings, redis if settings.redis_cluster else None, sources)
