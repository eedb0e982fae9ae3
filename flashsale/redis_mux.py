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
                self.loop.create_connection(lambda: _Protocol(self), self.host, self.port),
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
