"""Overload stays bounded: the password-hashing queue and live WebSockets refuse at once when full."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from flashsale.appkeys import CTX, LIVE_LIMITS
from flashsale.errors import Overloaded
from flashsale.passwords import Cost, Hasher

from tests.support.factory import Factory
from tests.support.seckill import make_sale

SLOW = Cost(2**14, 8, 1)


async def test_the_hasher_refuses_beyond_its_queue_instead_of_piling_up():
    hasher = Hasher(SLOW, threads=1, queue=2)
    try:
        results = await asyncio.gather(*(hasher.hash("secret password") for _ in range(6)),
                                       return_exceptions=True)
        refused = [r for r in results if isinstance(r, Overloaded)]
        assert len(refused) == 3 and all(isinstance(r, str) for r in results if r not in refused)
        assert refused[0].status == 503 and refused[0].headers["Retry-After"] == "2"
        assert hasher.admitted == 0
        assert await hasher.verify("secret password", results[0])  # room again once the queue drained
    finally:
        hasher.close()


async def test_a_sign_up_storm_beyond_the_hash_queue_gets_503_with_retry_after(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(hash_threads=1, hash_queue=1, background_tasks=False))

    async def register(i):
        r = await client.post("/api/auth/register", json={
            "username": f"storm{i}_{id(client) % 10000}", "password": "long enough pw",
            "email": f"storm{i}_{id(client) % 10000}@example.com"})
        return r.status, r.headers.get("Retry-After"), (await r.json())["data"]

    answers = await asyncio.gather(*(register(i) for i in range(6)))
    statuses = sorted(s for s, _, _ in answers)
    assert statuses.count(503) >= 1 and set(statuses) <= {201, 503}, answers
    assert all(ra == "2" and d["reason"] == "unavailable" for s, ra, d in answers if s == 503)


@pytest.mark.parametrize("limits", [{"ws_per_client": 2}, {"ws_per_process": 2}])
async def test_live_sockets_are_capped_before_the_upgrade(aiohttp_client, make_app, limits):
    client = await aiohttp_client(make_app(background_tasks=False, **limits))
    ctx = client.app[CTX]
    sale = await make_sale(ctx, Factory(ctx), stock=3)
    url = f"/api/seckill/{sale['id']}/live"
    open_sockets = [await client.ws_connect(url) for _ in range(2)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(url)
    assert refused.value.status == (429 if "ws_per_client" in limits else 503)
    assert refused.value.headers["Retry-After"] == "5"
    await open_sockets[0].close()
    for _ in range(50):  # the server notices the close
        if client.app[LIVE_LIMITS].total < 2:
            break
        await asyncio.sleep(0.05)
    third = await client.ws_connect(url)  # a freed place is taken again
    for ws in (third, open_sockets[1]):
        await ws.close()
