"""Watchers: N WebSockets held open on a sale page's live feed, counting what they receive.

    python bench/watchers.py URL N OUT_JSON [--open-concurrency 100]

URL is the feed (`ws://127.0.0.1:PORT/api/seckill/ID/live`). Opens the sockets (a bounded number
of handshakes at a time), prints `ready <opened> <failed>` once every attempt has ended, holds
them until SIGTERM or SIGINT, then closes them and writes OUT_JSON: opened, failed, the messages
received, the sockets the server closed early, and the first error seen. A small asyncio process
of its own, so that a few thousand idle sockets cost the load generator next to nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
import time

import aiohttp

OPEN_TIMEOUT_S = 30.0


class Watchers:
    def __init__(self) -> None:
        self.opened = 0
        self.failed = 0
        self.messages = 0
        self.closed_early = 0
        self.first_error = ""
        self.first_message_at: float | None = None
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task] = []

    async def open_one(self, http: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                # offering permessage-deflate, as browsers do (the server declines it)
                ws = await http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                                           heartbeat=None, autoping=True, compress=15)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                self.failed += 1
                self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
                return
        self.opened += 1
        self.sockets.append(ws)
        self.readers.append(asyncio.create_task(self.read(ws)))

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.messages += 1
                    if self.first_message_at is None:
                        self.first_message_at = time.time()
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                    break
        except (aiohttp.ClientError, OSError):
            pass
        if not stopping.is_set():
            self.closed_early += 1

    def result(self, started: float, ready: float) -> dict:
        return {"opened": self.opened, "failed": self.failed, "messages": self.messages,
                "closed_early": self.closed_early, "first_error": self.first_error,
                "open_seconds": round(ready - started, 3), "ready_at": ready, "stopped_at": time.time()}


stopping = asyncio.Event()


async def main_async(url: str, count: int, out: str, open_concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    watchers = Watchers()
    gate = asyncio.Semaphore(open_concurrency)
    started = time.time()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=None, connect=OPEN_TIMEOUT_S)) as http:
        await asyncio.gather(*(watchers.open_one(http, url, gate) for _ in range(count)))
        ready = time.time()
        print(f"ready {watchers.opened} {watchers.failed}", flush=True)
        await stopping.wait()
        summary = watchers.result(started, ready)
        await asyncio.gather(*(ws.close() for ws in watchers.sockets), return_exceptions=True)
        for task in watchers.readers:
            task.cancel()
    with open(out, "w") as f:
        json.dump(summary, f)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("out")
    parser.add_argument("--open-concurrency", type=int, default=100)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
        uvloop.run(main_async(args.url, args.count, args.out, args.open_concurrency))
    except ImportError:
        asyncio.run(main_async(args.url, args.count, args.out, args.open_concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
