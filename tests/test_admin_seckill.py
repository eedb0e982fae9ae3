"""Admin JSON routes for flash sales, and the sale list and detail for shoppers."""
from __future__ import annotations

import datetime as dt

import aiohttp

from tests.support.auth import session_cookie
from tests.support.seckill import buyers, iso, listed_sale_ids, make_sale, now, purchase, remaining, sold
from tests.support.waiting import wait_until


def _body(goods_id, **changes):
    start = now() + dt.timedelta(hours=1)
    body = {"goods_id": goods_id, "price": "9.90", "total_stock": 50, "per_user_limit": 1,
            "start_time": iso(start), "end_time": iso(start + dt.timedelta(hours=1))}
    return {**body, **changes}


async def test_admin_creates_a_sale_and_redis_is_warm(admin_client, factory, ctx):
    client, _, headers = admin_client
    goods_id = await factory.goods(price="99.00")
    r = await client.post("/api/admin/seckill", headers=headers, json=_body(goods_id, total_stock=7))
    body = await r.json()
    assert r.status == 201, body
    sale = body["data"]
    assert sale["state"] == "upcoming" and sale["remaining"] == 7 and sale["total_stock"] == 7
    assert sale["price"] == "9.90" and sale["per_user_limit"] == 1
    assert sale["goods"]["id"] == goods_id and sale["goods"]["original_price"] == "109.00"
    assert sale["start_time"].endswith("Z")
    assert await remaining(ctx, sale["id"]) == 7


async def test_create_validates_every_field(admin_client, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    cases = {
        "price": _body(goods_id, price="-1"),
        "total_stock": _body(goods_id, total_stock=0),
        "per_user_limit": _body(goods_id, per_user_limit=0),
        "start_time": _body(goods_id, start_time="tomorrow"),
        "goods_id": _body(987654321),
    }
    for field, body in cases.items():
        r = await client.post("/api/admin/seckill", headers=headers, json=body)
        data = (await r.json())["data"]
        assert r.status == 400 and data["reason"] == "validation" and field in data["errors"], (field, data)
    start = now() + dt.timedelta(hours=1)
    r = await client.post("/api/admin/seckill", headers=headers,
                          json=_body(goods_id, start_time=iso(start), end_time=iso(start)))
    assert "end_time" in (await r.json())["data"]["errors"]


async def test_admin_routes_need_an_admin(user_client, client):
    c, _, headers = user_client
    r = await c.post("/api/admin/seckill", headers=headers, json={})
    assert r.status == 403 and (await r.json())["data"]["reason"] == "forbidden"
    c.session.cookie_jar.clear()
    r = await c.get("/api/admin/seckill")
    assert r.status == 401


async def test_edit_before_start_changes_anything(admin_client, factory, ctx):
    client, _, headers = admin_client
    sale = (await (await client.post("/api/admin/seckill", headers=headers,
                                     json=_body(await factory.goods()))).json())["data"]
    r = await client.put(f"/api/admin/seckill/{sale['id']}", headers=headers,
                         json={"price": "5.00", "total_stock": 80, "per_user_limit": 2})
    data = (await r.json())["data"]
    assert r.status == 200, data
    assert (data["price"], data["total_stock"], data["per_user_limit"], data["remaining"]) == ("5.00", 80, 2, 80)
    assert await remaining(ctx, sale["id"]) == 80


async def test_live_sale_allows_only_end_time_and_stock_never_below_sold(admin_client, factory, ctx):
    client, _, headers = admin_client
    sale = await make_sale(ctx, factory, stock=3)
    people = await buyers(ctx, 2)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as shopper:
        for person in people:  # their own cookies, apart from the admin's
            h, _ = await session_cookie(client.app, person["id"])
            r = await shopper.post(client.make_url(f"/api/seckill/{sale['id']}/purchase"), headers=h,
                                   json={"address_id": person["address_id"], "payment_method": "card"})
            assert r.status == 202, await r.text()

    async def both_sold():
        return await sold(ctx, sale["id"]) == 2
    await wait_until(both_sold)

    r = await client.put(f"/api/admin/seckill/{sale['id']}", headers=headers, json={"price": "1.00"})
    data = (await r.json())["data"]
    assert r.status == 400 and "price" in data["errors"]
    r = await client.put(f"/api/admin/seckill/{sale['id']}", headers=headers, json={"total_stock": 1})
    assert r.status == 400 and "total_stock" in (await r.json())["data"]["errors"]
    r = await client.put(f"/api/admin/seckill/{sale['id']}", headers=headers, json={"total_stock": 10})
    assert r.status == 200
    assert await remaining(ctx, sale["id"]) == 8  # 1 left + 7 added
    later = iso(now() + dt.timedelta(hours=3))
    r = await client.put(f"/api/admin/seckill/{sale['id']}", headers=headers, json={"end_time": later})
    assert r.status == 200 and (await r.json())["data"]["end_time"] == later


async def test_cancel_stops_admissions(admin_client, factory, ctx):
    client, _, headers = admin_client
    sale = await make_sale(ctx, factory, stock=3)
    r = await client.post(f"/api/admin/seckill/{sale['id']}/cancel", headers=headers)
    assert r.status == 200 and (await r.json())["data"]["state"] == "cancelled"
    r = await client.post(f"/api/admin/seckill/{sale['id']}/cancel", headers=headers)
    assert r.status == 409 and (await r.json())["data"]["reason"] == "bad_status"
    [person] = await buyers(ctx, 1)
    h, _ = await session_cookie(client.app, person["id"])
    client.session.cookie_jar.clear()
    status, body = await purchase(client, sale["id"], h, person["address_id"])
    assert (status, body["data"]["reason"]) == (409, "ended")


async def test_public_list_orders_live_then_upcoming_then_ended(client, ctx, factory):
    upcoming = await make_sale(ctx, factory, start_in_s=600)
    live = await make_sale(ctx, factory)
    ended = await make_sale(ctx, factory, start_in_s=-7200, length_s=60)
    listed = await listed_sale_ids(client)  # every page: the run's other sales come too
    order = [i for i in listed if i in {upcoming["id"], live["id"], ended["id"]}]
    assert order == [live["id"], upcoming["id"], ended["id"]]
    for state, sale in (("live", live), ("upcoming", upcoming), ("ended", ended)):
        assert sale["id"] in await listed_sale_ids(client, state)
        r = await client.get(f"/api/seckill?state={state}&per_page=100")
        data = (await r.json())["data"]
        assert data["items"] and all(i["state"] == state for i in data["items"])
    r = await client.get("/api/seckill?state=bogus")
    assert r.status == 400


async def test_sale_detail_carries_server_time_and_404(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=4)
    r = await client.get(f"/api/seckill/{sale['id']}")
    data = (await r.json())["data"]
    assert r.status == 200 and data["remaining"] == 4 and data["state"] == "live"
    assert data["server_time"].endswith("Z")
    assert (await client.get("/api/seckill/99999999")).status == 404


async def test_live_socket_sends_remaining_on_change(client, ctx, factory):
    sale = await make_sale(ctx, factory, stock=2)
    [person] = await buyers(ctx, 1)
    async with client.ws_connect(f"/api/seckill/{sale['id']}/live") as ws:
        first = await ws.receive_json(timeout=5)
        assert first["remaining"] == 2 and first["state"] == "live" and first["server_time"].endswith("Z")
        h, _ = await session_cookie(client.app, person["id"])
        assert (await purchase(client, sale["id"], h, person["address_id"]))[0] == 202
        second = await ws.receive_json(timeout=5)
        assert second["remaining"] == 1
