"""A lean pipelined Redis connection for the purchase path.

Every command issued during one event-loop tick goes out in one write on one connection, and
the replies, parsed by hiredis, resolve their futures in order. This skips redis-py's
per-command machinery (connection pool, retries, response callbacks), which costs more than the
Redis work itself when thousands of buyers arrive in the same second. Replies are raw RESP values
(strings decoded as UTF-8); errors come back as redis-py's exception classes.

Connection loss: each connection keeps the futures of the commands written on it, and only its
own replies resolve them; when it is lost they all fail with redis-py's ConnectionError (a 503),
never wait forever, and are never matched to a reply of the next connection. Commands are never
retried here: a command written before the loss may have run (an admission then shows in the
buyer's result), so the caller answers 503 and promises nothing. After a failed connect, calls
fail at once for a short, doubling back-off, so an outage costs no connect storm.

A Redis Cluster, or writes that must reach replicas (WAIT), wrap this in redis_routing.py; the
single-Redis path is this module alone.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.05  # after a failed connect calls fail at once for this long, then doubled
BACKOFF_MAX_S = 1.0


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP, by hiredis's packer (C): a purchase's EVALSHA of twenty arguments in
    3 us instead of 10. str, bytes, int and float only: a bool or None is a TypeError."""
    return hiredis.pack_command(args)


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("Redis handshake failed: %s", future.exception())


class _Connection(asyncio.Protocol):
    """One TCP connection and the futures of the commands written on it, in order."""

    def __init__(self, owner: "RedisMux"):
        self.owner = owner
        self.reader = hiredis.Reader(replyError=ResponseError, encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.lost = False
        self.replied = False  # a reply came since the watchdog last looked
        self.watchdog: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, futures: list[asyncio.Future]) -> None:
        self.waiting.extend(futures)
        try:
            self.transport.write(data)
        except (OSError, RuntimeError) as exc:  # uvloop: RuntimeError on a closed handle
            self.abort(exc)
            return
        if self.watchdog is None:
            self.replied = False
            self.watchdog = self.owner.loop.call_later(self.owner.reply_timeout_s, self._watch)

    def _watch(self) -> None:
        """No reply for a whole reply timeout while commands wait: the connection is dead."""
        self.watchdog = None
        if self.lost or not self.waiting:
            return
        if not self.replied:
            self.abort(TimeoutError(f"no reply from Redis within {self.owner.reply_timeout_s}s"))
            return
        self.replied = False
        self.watchdog = self.owner.loop.call_later(self.owner.reply_timeout_s, self._watch)

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
            if not self.waiting:  # a reply nobody asked for: this stream cannot be trusted
                self.abort(RuntimeError("unexpected reply from Redis"))
                return
            future = self.waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, ResponseError):
                if str(reply).startswith("NOSCRIPT"):
                    reply = NoScriptError(str(reply))
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def abort(self, exc: BaseException | None) -> None:
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows, on the next iteration
        self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc)

    def _fail(self, exc: BaseException | None) -> None:
        first = not self.lost
        self.lost = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if first:
            self.owner._lost(self)
        message = f"lost the connection to Redis: {exc!r}"
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(RedisConnectionError(message))  # one each: tracebacks stay apart


class RedisMux:
    """One connection, commands batched per tick, replies matched in order; reconnects on demand."""

    connection_class = _Connection  # redis_routing.ReplicatedMux's holds scripted writes for WAIT

    def __init__(self, url: str, connect_timeout_s: float = 2.0, reply_timeout_s: float = 5.0):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.password = parts.password
        self.username = parts.username
        self.connect_timeout_s = connect_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.conn: _Connection | None = None
        # commands not written yet, and their futures
        self.outbox: list[bytes] = []
        self.pending: list[asyncio.Future] = []
        self.connecting: asyncio.Task | None = None
        self.backoff_s = 0.0
        self.down_until = 0.0  # after a failed connect: calls fail at once until then
        self.down_error = ""
        self.loop: asyncio.AbstractEventLoop | None = None

    def call(self, *args: Any) -> asyncio.Future:
        """Queue one command; the returned future holds its reply (or the connection's failure)."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        future = self.loop.create_future()
        if self.conn is None and self.connecting is None and time.monotonic() < self.down_until:
            future.set_exception(RedisConnectionError(self.down_error))
            return future
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(pack(args))
        self.pending.append(future)
        return future

    def _flush(self) -> None:
        if not self.outbox:
            return
        conn = self.conn
        if conn is not None and conn.usable:
            data, futures = b"".join(self.outbox), self.pending
            self.outbox, self.pending = [], []
            conn.send(data, futures)
            return
        if self.connecting is None:
            self.connecting = self.loop.create_task(self._connect())
            self.connecting.add_done_callback(self._connect_done)

    async def _connect(self) -> None:
        self.conn = None
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: self.connection_class(self), self.host, self.port),
                self.connect_timeout_s)
        except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
            self._connect_failed(RedisConnectionError(f"Redis at {self.host}:{self.port}: {exc!r}"))
            return
        if not conn.usable:  # lost between the connect and now
            self._connect_failed(RedisConnectionError(f"Redis at {self.host}:{self.port} closed the connection"))
            return
        self.conn = conn
        self.backoff_s = 0.0
        self.down_until = 0.0
        # the handshake goes first; its replies are read into futures nobody awaits
        hello: list[bytes] = []
        if self.password:
            hello.append(pack(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)))
        if self.db:
            hello.append(pack(("SELECT", self.db)))
        ignored = []
        for _ in hello:
            future = self.loop.create_future()
            future.add_done_callback(_log_failure)
            ignored.append(future)
        data, futures = b"".join(hello + self.outbox), ignored + self.pending
        self.outbox, self.pending = [], []
        conn.send(data, futures)

    def _connect_failed(self, error: Exception) -> None:
        self.backoff_s = min(BACKOFF_MAX_S, self.backoff_s * 2 or BACKOFF_FIRST_S)
        self.down_until = time.monotonic() + self.backoff_s
        self.down_error = str(error)
        log.warning("%s; calls fail for %.2fs", error, self.backoff_s)
        self._fail_pending(error)

    def _connect_done(self, task: asyncio.Task) -> None:
        self.connecting = None
        if task.cancelled():
            self._fail_pending(RedisConnectionError("connecting to Redis was cancelled"))
            return
        exc = task.exception()  # retrieved: never "Task exception was never retrieved"
        if exc is not None:
            log.error("connecting to Redis failed", exc_info=exc)
            self._fail_pending(RedisConnectionError(f"connecting to Redis failed: {exc!r}"))
        elif self.outbox:  # commands queued while the handshake went out
            self._flush()

    def _fail_pending(self, error: Exception) -> None:
        futures, self.outbox, self.pending = self.pending, [], []
        for future in futures:
            if not future.done():
                future.set_exception(RedisConnectionError(str(error)))

    def _lost(self, conn: _Connection) -> None:
        if self.conn is conn:
            self.conn = None

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and conn.transport is not None:
            conn.transport.close()
        if self.connecting is not None:
            self.connecting.cancel()
