"""Logout ends the session on the server: a saved copy of the cookie is anonymous afterwards, on
pages, the API and the purchase path, even after Redis forgot the user's auth hash."""
from __future__ import annotations

import datetime as dt

from flashsale import db
from flashsale.services import user_sessions

from tests.support.auth import login
from tests.support.seckill import make_sale, purchase

COOKIE = "fs_session"


def cookie_of(client) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value


async def copy_of(aiohttp_client, client, value: str):
    other = await aiohttp_client(client.server)
    other.session.cookie_jar.update_cookies({COOKIE: value})
    return other


async def session_rows(ctx, user_id: int) -> int:
    return await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM user_sessions WHERE user_id = %s", (user_id,))


async def test_a_saved_cookie_is_anonymous_after_logout(client, aiohttp_client, ctx, factory):
    user = await factory.user()
    address_id = await factory.address(user["id"])
    sale = await make_sale(ctx, factory)
    token = await login(client, user["username"])
    saved = await copy_of(aiohttp_client, client, cookie_of(client))
    assert (await saved.get("/api/me")).status == 200
    assert await session_rows(ctx, user["id"]) == 1
    r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    assert r.status == 200
    assert await session_rows(ctx, user["id"]) == 0
    # the API, the pages and the purchase path all see an anonymous visitor now
    r = await saved.get("/api/me")
    assert r.status == 401 and (await r.json())["data"]["reason"] == "unauthenticated"
    r = await saved.get("/orders", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login")
    status, body = await purchase(saved, sale["id"], {"X-CSRF-Token": token}, address_id)
    assert (status, body["data"]["reason"]) == (401, "unauthenticated")
    r = await saved.get(f"/api/seckill/{sale['id']}/result")
    assert r.status == 401


async def test_logout_holds_when_redis_lost_the_auth_hash(client, aiohttp_client, ctx, factory):
    """MySQL is the truth: the hash rebuilt after a Redis restart or its expiry has no logged-out session."""
    user = await factory.user()
    address_id = await factory.address(user["id"])
    sale = await make_sale(ctx, factory)
    token = await login(client, user["username"])
    saved_value = cookie_of(client)
    await client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    await ctx.redis.delete(ctx.keys.user_auth(user["id"]))
    saved = await copy_of(aiohttp_client, client, saved_value)
    assert (await saved.get("/api/me")).status == 401
    await ctx.redis.delete(ctx.keys.user_auth(user["id"]))
    status, _ = await purchase(saved, sale["id"], {"X-CSRF-Token": token}, address_id)
    assert status == 401


async def test_a_live_session_survives_the_loss_of_the_auth_hash(client, ctx, factory):
    user = await factory.user()
    address_id = await factory.address(user["id"])
    sale = await make_sale(ctx, factory)
    token = await login(client, user["username"])
    await ctx.redis.delete(ctx.keys.user_auth(user["id"]))
    assert (await client.get("/api/me")).status == 200  # rebuilt from MySQL with its sessions
    await ctx.redis.delete(ctx.keys.user_auth(user["id"]))
    status, body = await purchase(client, sale["id"], {"X-CSRF-Token": token}, address_id)
    assert status == 202, body


async def test_logout_of_one_session_leaves_the_others(client, aiohttp_client, ctx, factory):
    user = await factory.user()
    phone = await aiohttp_client(client.server)
    await login(phone, user["username"])
    token = await login(client, user["username"])
    await client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    assert (await phone.get("/api/me")).status == 200
    assert await session_rows(ctx, user["id"]) == 1


async def test_log_out_everywhere_ends_every_session(client, aiohttp_client, ctx, factory):
    user = await factory.user()
    phone = await aiohttp_client(client.server)
    await login(phone, user["username"])
    token = await login(client, user["username"])
    saved = await copy_of(aiohttp_client, client, cookie_of(client))
    r = await client.post("/api/auth/logout-all", headers={"X-CSRF-Token": token})
    assert r.status == 200, await r.text()
    assert (await r.json())["msg"] == "logged out everywhere"
    for c in (client, phone, saved):
        assert (await c.get("/api/me")).status == 401
    assert await session_rows(ctx, user["id"]) == 0
    await login(client, user["username"])  # a new login works again
    assert (await client.get("/api/me")).status == 200


async def test_log_out_everywhere_needs_a_login_and_the_csrf_token(client, factory):
    assert (await client.post("/api/auth/logout-all")).status == 401
    user = await factory.user()
    await login(client, user["username"])
    r = await client.post("/api/auth/logout-all")
    assert r.status == 403 and (await r.json())["data"]["reason"] == "csrf"
    assert (await client.get("/api/me")).status == 200


async def test_the_account_page_has_a_log_out_everywhere_button(client, aiohttp_client, factory):
    user = await factory.user()
    phone = await aiohttp_client(client.server)
    await login(phone, user["username"])
    token = await login(client, user["username"])
    html = await (await client.get("/account/password")).text()
    assert 'action="/account/logout-all"' in html and 'data-testid="logout-all"' in html
    r = await client.post("/account/logout-all", data={"csrf_token": token}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login"
    assert (await phone.get("/api/me")).status == 401
    assert (await client.get("/api/me")).status == 401


async def test_the_logout_page_form_ends_the_session_on_the_server(client, aiohttp_client, factory):
    user = await factory.user()
    token = await login(client, user["username"])
    saved = await copy_of(aiohttp_client, client, cookie_of(client))
    r = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert r.status == 303
    assert (await saved.get("/api/me")).status == 401


async def test_expired_session_rows_are_pruned(ctx, factory):
    user = await factory.user()
    sid = await user_sessions.create(ctx, user["id"])
    past = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)
    await db.execute(ctx.db, "UPDATE user_sessions SET expires_at = %s WHERE id = %s", (past, sid))
    assert await user_sessions.prune(ctx) >= 1
    assert await session_rows(ctx, user["id"]) == 0
    # a login also removes the user's own expired rows
    sid = await user_sessions.create(ctx, user["id"])
    await db.execute(ctx.db, "UPDATE user_sessions SET expires_at = %s WHERE id = %s", (past, sid))
    await user_sessions.create(ctx, user["id"])
    assert await session_rows(ctx, user["id"]) == 1
