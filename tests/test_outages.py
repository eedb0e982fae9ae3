"""Outages: a purchase needs no MySQL; Redis not serving (read-only, loading, pool exhausted) is
503 with Retry-After, never a 500, and purchases recover by themselves."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time

import pytest
import redis
from asyncmy.errors import OperationalError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flashsale.admission import Admission
from flashsale.appkeys import ADMISSION, CTX

from tests.support.auth import login
from tests.support.factory import Factory
from tests.support.seckill import make_sale, purchase

ADDRESS = {"receiver_name": "Outage Receiver", "phone": "13800000000", "province": "Zhejiang",
           "city": "Hangzhou", "district": "Xihu", "detail_address": "5 Outage Road"}


class DeadPool:
    """Stands in for a MySQL pool whose server cannot be reached."""

    def acquire(self):
        raise OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' (111)")


async def buyer_with_new_address(client, factory: Factory) -> tuple[dict, int]:
    """A logged-in buyer who adds an address AFTER logging in (the case the issue saw ask MySQL)."""
    user = await factory.user()
    headers = {"X-CSRF-Token": await login(client, user["username"])}
    r = await client.post("/api/addresses", json=ADDRESS, headers=headers)
    assert r.status == 201, await r.text()
    return headers, (await r.json())["data"]["address"]["id"]


async def test_a_purchase_is_admitted_while_mysql_is_unreachable(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(background_tasks=False))
    ctx = client.app[CTX]
    factory = Factory(ctx)
    sale = await make_sale(ctx, factory, stock=5)
    headers, address_id = await buyer_with_new_address(client, factory)
    pool, ctx.db = ctx.db, DeadPool()
    try:
        assert (await client.get("/api/orders", headers=headers)).status == 503  # MySQL is really gone
        status, body = await purchase(client, sale["id"], headers, address_id)
        assert status == 202, body  # session, ban flag and address ownership all came from Redis
        assert body["data"]["status"] == "queued"
        status, body = await purchase(client, sale["id"], headers, address_id)
        assert status == 409 and body["data"]["reason"] == "already_purchased"
    finally:
        ctx.db = pool


async def test_a_deleted_address_leaves_the_purchase_path_at_once(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(background_tasks=False))
    ctx = client.app[CTX]
    factory = Factory(ctx)
    sale = await make_sale(ctx, factory, stock=5)
    headers, address_id = await buyer_with_new_address(client, factory)
    assert (await client.delete(f"/api/addresses/{address_id}", headers=headers)).status == 200
    pool, ctx.db = ctx.db, DeadPool()
    try:
        status, body = await purchase(client, sale["id"], headers, address_id)
    finally:
        ctx.db = pool
    # the written-through list no longer holds it; the fallback lookup then needs MySQL: 503, never 202
    assert status in (400, 503), body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def private_redis():
    """A redis-server of this test alone on a free port, without persistence."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no"], stdout=subprocess.DEVNULL)
    try:
        direct = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                direct.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, direct
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_read_only_redis_answers_503_and_purchases_recover(aiohttp_client, make_app):
    with private_redis() as (port, direct):
        client = await aiohttp_client(make_app(redis_url=f"redis://127.0.0.1:{port}/0", background_tasks=False))
        ctx = client.app[CTX]
        factory = Factory(ctx)
        sale = await make_sale(ctx, factory, stock=5)
        headers, address_id = await buyer_with_new_address(client, factory)
        # a failover in progress: this Redis became a replica of a master that is not there
        direct.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        try:
            status, body = await purchase(client, sale["id"], headers, address_id)
            assert status == 503 and body["data"]["reason"] == "unavailable", body
            # redis-py's ReadOnlyError on the ordinary pool too (the login limiter writes)
            r = await client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 10})
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert (await client.get("/api/goods")).status == 200  # pages that need no Redis write go on
        finally:
            direct.execute_command("REPLICAOF", "NO", "ONE")
        status, body = await purchase(client, sale["id"], headers, address_id)
        assert status == 202, body  # recovered by itself, nothing to restart; the 503 took nothing


async def test_a_loading_redis_on_the_purchase_path_is_503_not_500(client, ctx, factory, monkeypatch):
    sale = await make_sale(ctx, factory, stock=5)
    headers, address_id = await buyer_with_new_address(client, factory)
    admission: Admission = client.app[ADMISSION]
    real_call = admission.pipeline.call

    def loading(*args):
        if args[0] != "EVALSHA":
            return real_call(*args)
        future = asyncio.get_running_loop().create_future()
        # exactly what hiredis hands the pipelined connection while Redis loads its dataset
        future.set_exception(ResponseError("LOADING Redis is loading the dataset in memory"))
        return future

    monkeypatch.setattr(admission.pipeline, "call", loading)
    status, body = await purchase(client, sale["id"], headers, address_id)
    assert status == 503 and body["data"]["reason"] == "unavailable", body


async def test_an_exhausted_redis_pool_waits_a_bounded_time_then_503(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(redis_max_connections=1, redis_pool_wait_s=0.3,
                                           background_tasks=False))
    ctx = client.app[CTX]
    redis_client: Redis = ctx.redis
    held = await redis_client.connection_pool.get_connection()  # the only connection, taken
    try:
        started = time.monotonic()
        r = await client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 10})
        waited = time.monotonic() - started
        assert r.status == 503 and r.headers["Retry-After"] == "1"
        assert (await r.json())["data"]["reason"] == "unavailable"
        assert 0.25 <= waited < 3
    finally:
        await redis_client.connection_pool.release(held)
    r = await client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 10})
    assert r.status == 401  # the pool is free again


@pytest.fixture
async def client(aiohttp_client, make_app):
    return await aiohttp_client(make_app(background_tasks=False))
