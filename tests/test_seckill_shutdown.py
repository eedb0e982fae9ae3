"""SIGTERM: a server finishes the batch in hand, exits cleanly, and loses nothing."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import aiohttp
import pytest

from flashsale import db
from flashsale.appkeys import CTX
from flashsale.services.auth_cache import cache_addresses, cache_auth_state
from flashsale.settings import ROOT

from tests.support.auth import session_cookie
from tests.support.factory import Factory
from tests.support.seckill import buyers, consumers_reading, make_sale
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(settings, port: int) -> subprocess.Popen:
    env = {**os.environ, "FLASHSALE_DB_NAME": settings.db_name, "FLASHSALE_REDIS_URL": settings.redis_url,
           "FLASHSALE_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
           "FLASHSALE_REDIS_PREFIX": settings.redis_prefix, "FLASHSALE_SECRET_KEY": settings.secret_key,
           "FLASHSALE_CONSUMER_NAME": "shutdown-test", "FLASHSALE_LOG_LEVEL": "WARNING",
           "FLASHSALE_VAR_DIR": settings.var_dir}
    return subprocess.Popen([sys.executable, "run.py", "serve", "--port", str(port), "--workers", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def _up(port: int) -> None:
    async def answers() -> bool:
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return r.status == 200
        except aiohttp.ClientError:
            return False
    await wait_until(answers, timeout=10, what="the server answering /healthz")


async def test_sigterm_finishes_the_batch_and_a_restart_drains_the_rest(aiohttp_client, make_app, settings):
    quiet = await aiohttp_client(make_app(background_tasks=False))
    ctx = quiet.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=300)
    people = await buyers(ctx, 300)
    for person in people:
        await cache_auth_state(ctx, person["id"], 0, "user", True)
        await cache_addresses(ctx, person["id"])
    port = _free_port()
    server = _serve(settings, port)
    try:
        await _up(port)
        await wait_until(lambda: consumers_reading(ctx, sale["id"], "shutdown-test-"), timeout=10,
                         what="the server's consumers reading the sale's stream")
        url = f"http://127.0.0.1:{port}/api/seckill/{sale['id']}/purchase"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as shopper:
            async def buy(person):
                headers, _ = await session_cookie(quiet.app, person["id"])
                async with shopper.post(url, headers=headers,
                                        json={"address_id": person["address_id"], "payment_method": "card"}) as r:
                    return r.status
            statuses = await asyncio.gather(*[buy(p) for p in people])
        assert statuses.count(202) == 300
        server.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 30) == 0
    finally:
        if server.poll() is None:
            server.kill()

    stream = ctx.keys.sale_stream(sale["id"])
    pending = (await ctx.redis.xpending(stream, "orders"))["pending"]
    orders = await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s", (sale["id"],))
    successes = [v for v in await ctx.redis.hvals(ctx.keys.sale_results(sale["id"])) if v.startswith("success")]
    undelivered = await _undelivered(ctx, stream)
    # every queued request is an order, or still waits in the stream (pending or never read)
    assert orders + pending + undelivered == 300
    assert len(successes) == orders  # nothing acknowledged without its order

    server = _serve(settings, port)  # same consumer name: reads its own pending entries first
    try:
        await _up(port)

        async def all_there():
            return await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM orders WHERE flash_sale_id = %s",
                                        (sale["id"],)) == 300
        await wait_until(all_there, timeout=30)
        await wait_until(lambda: _drained(ctx, stream), timeout=10)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)


async def _undelivered(ctx, stream) -> int:
    groups = await ctx.redis.xinfo_groups(stream)
    return int(groups[0].get("lag") or 0)


async def _drained(ctx, stream) -> bool:
    return (await ctx.redis.xpending(stream, "orders"))["pending"] == 0 and await _undelivered(ctx, stream) == 0
