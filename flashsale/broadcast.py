"""Live sale figures for every socket of a process: one reader per sale, fanned out.

One Broadcast per sale per process reads the sale's figures once per INTERVAL_S (through the
sale cache, so the pages share that read) and offers the message to each of its feeds. The frame
is made once: a socket whose feed is idle and whose connection takes it at once gets it written
straight (no task of its own woken, nothing framed again: a push to thousands of sockets costs a
write each). Otherwise the feed keeps only the latest message for the socket's own task: a socket
that cannot keep up skips stale figures, and never holds the others back. The broadcaster stops
when its last feed closes.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Awaitable

from flashsale.errors import NotFound
from flashsale.jsonio import dumps

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
KEEPALIVE_S = 15.0  # the same figures are sent again this often, so a proxy keeps the socket

# sale id -> {remaining, state, server_time} (raises NotFound)
Reader = Callable[[int], Awaitable[dict]]
# a socket's way to take a frame at once: True when written, False when it cannot now (closing,
# or data still waiting in its buffer); then its task sends the message when the socket is ready
WriteNow = Callable[[bytes], bool]


def text_frame(payload: bytes) -> bytes:
    """A whole WebSocket text frame as a server sends it (FIN, unmasked; RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


class Feed:
    """One socket's slot: the latest message not yet sent, and a wake-up."""

    __slots__ = ("latest", "ready", "closed", "dropped", "write_now")

    def __init__(self, write_now: WriteNow | None = None) -> None:
        self.latest: str | None = None
        self.ready = asyncio.Event()
        self.closed = False
        self.dropped = 0  # messages replaced before the socket took them
        self.write_now = write_now

    def offer(self, message: str, frame: bytes | None = None) -> None:
        # straight to the socket only when no older message waits for its task (it would come
        # after this one); a message the task took is written already (a send writes before it
        # waits for the socket to drain)
        if (frame is not None and self.write_now is not None and self.latest is None and not self.closed
                and self.write_now(frame)):
            return
        if self.latest is not None:
            self.dropped += 1
        self.latest = message
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    async def next(self) -> str | None:
        """The next message to send; None once the feed is closed."""
        while True:
            if self.closed:
                return None
            if self.latest is not None:
                message, self.latest = self.latest, None
                self.ready.clear()
                return message
            await self.ready.wait()
            self.ready.clear()


class Broadcast:
    def __init__(self, sale_id: int, read: Reader, on_idle: Callable[[int], None]):
        self.sale_id = sale_id
        self.read = read
        self.on_idle = on_idle
        self.feeds: set[Feed] = set()
        self.last: str | None = None
        self.task: asyncio.Task | None = None

    def join(self, write_now: WriteNow | None = None) -> Feed:
        feed = Feed(write_now)
        self.feeds.add(feed)
        if self.last is not None:
            feed.offer(self.last)  # a new socket gets the current figures at once
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run(), name=f"live-sale-{self.sale_id}")
        return feed

    def leave(self, feed: Feed) -> None:
        feed.close()
        self.feeds.discard(feed)
        if not self.feeds:
            if self.task is not None:
                self.task.cancel()
                self.task = None
            self.on_idle(self.sale_id)

    async def run(self) -> None:
        last_figures, quiet = None, 0.0
        while self.feeds:
            try:
                data = await self.read(self.sale_id)
            except NotFound:
                data = None
            except Exception:  # Redis or MySQL briefly away: the sockets keep their last figures
                log.warning("live figures of sale %s not read", self.sale_id, exc_info=True)
                data = None
            if data is not None:
                figures = (data["remaining"], data["state"])
                if figures != last_figures or quiet >= KEEPALIVE_S:
                    payload = dumps(data)
                    self.last, frame = payload.decode(), text_frame(payload)
                    for feed in self.feeds:
                        feed.offer(self.last, frame)
                    last_figures, quiet = figures, 0.0
            await asyncio.sleep(INTERVAL_S)
            quiet += INTERVAL_S


class Broadcasts:
    """The process's broadcasters, one per sale with at least one open socket."""

    def __init__(self, read: Reader):
        self.read = read
        self.sales: dict[int, Broadcast] = {}

    def join(self, sale_id: int, write_now: WriteNow | None = None) -> Feed:
        broadcast = self.sales.get(sale_id)
        if broadcast is None:
            broadcast = self.sales[sale_id] = Broadcast(sale_id, self.read, self._idle)
        return broadcast.join(write_now)

    def leave(self, sale_id: int, feed: Feed) -> None:
        broadcast = self.sales.get(sale_id)
        if broadcast is not None:
            broadcast.leave(feed)

    def _idle(self, sale_id: int) -> None:
        self.sales.pop(sale_id, None)

    async def close(self) -> None:
        tasks = [b.task for b in self.sales.values() if b.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sales.clear()
