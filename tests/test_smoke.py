"""The app starts and answers its operations routes."""


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}


async def test_readyz_when_both_answer(client):
    r = await client.get("/readyz")
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["data"]["checks"] == {"mysql": "ok", "redis": "ok"}


async def test_home_page_renders(client):
    r = await client.get("/")
    assert r.status == 200
    assert "FlashSale" in await r.text()
