"""Operations routes: liveness, readiness with a backend down, and the server clock."""
from __future__ import annotations

import datetime as dt

from flashsale.jsonio import parse_time

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


async def test_healthz_and_readyz_when_all_is_well(client):
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {"code": 200, "msg": "ready", "data": {"checks": {"mysql": "ok", "redis": "ok"}}}


async def test_readyz_is_503_when_redis_is_unreachable(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(redis_url=UNREACHABLE_REDIS, background_tasks=False))
    r = await client.get("/readyz")
    assert r.status == 503, await r.text()
    assert await r.json() == {"code": 503, "msg": "not ready", "data": {
        "checks": {"mysql": "ok", "redis": "down"}, "reason": "unavailable"}}
    # the process itself is alive
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}


async def test_api_is_503_unavailable_when_redis_is_unreachable(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(redis_url=UNREACHABLE_REDIS, background_tasks=False))
    r = await client.get("/api/time")
    assert r.status == 503
    assert await r.json() == {"code": 503, "msg": "The service is briefly unavailable; try again.",
                              "data": {"reason": "unavailable"}}
    assert "127.0.0.1:1" not in await r.text()


async def test_login_is_503_when_redis_is_unreachable(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(redis_url=UNREACHABLE_REDIS, background_tasks=False))
    r = await client.post("/api/auth/login", json={"username": "someone", "password": "whatever-123"})
    assert r.status == 503
    assert (await r.json())["data"] == {"reason": "unavailable"}


async def test_server_time_is_now_in_utc(client):
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    r = await client.get("/api/time")
    assert r.status == 200
    body = await r.json()
    assert list(body) == ["code", "msg", "data"] and list(body["data"]) == ["server_time"]
    text = body["data"]["server_time"]
    assert len(text) == 24 and text.endswith("Z") and text[19] == "."
    assert abs((parse_time(text) - before).total_seconds()) < 5
