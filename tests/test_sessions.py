"""Session cookies: a fresh one at login, attributes, and sessions that end when the account changes."""
from __future__ import annotations

import asyncio

from flashsale import db
from flashsale.services.auth_cache import auth_state, cache_auth_state

from tests.support.auth import login
from tests.support.factory import PASSWORD

COOKIE = "fs_session"


def session_cookie(client) -> str | None:
    morsel = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(COOKIE)
    return morsel.value if morsel else None


async def client_with_cookie(aiohttp_client, client, value: str):
    other = await aiohttp_client(client.server)
    other.session.cookie_jar.update_cookies({COOKIE: value})
    return other


async def test_login_issues_a_new_session_cookie(client, aiohttp_client, factory):
    user = await factory.user()
    r = await client.get("/login")
    assert r.status == 200
    anonymous = session_cookie(client)
    assert anonymous  # the page's form token lives in an anonymous session
    await login(client, user["username"])
    logged_in = session_cookie(client)
    assert logged_in and logged_in != anonymous
    # someone holding the pre-login cookie is not logged in
    planted = await client_with_cookie(aiohttp_client, client, anonymous)
    r = await planted.get("/api/me")
    assert r.status == 401
    # the logged-in cookie carries the login to another client (it is the session)
    copied = await client_with_cookie(aiohttp_client, client, logged_in)
    assert (await copied.get("/api/me")).status == 200


async def test_login_csrf_token_differs_from_the_anonymous_one(client, factory):
    user = await factory.user()
    page = await (await client.get("/login")).text()
    token = await login(client, user["username"])
    assert f'content="{token}"' not in page


async def test_session_cookie_is_httponly_and_samesite_lax(client, factory):
    user = await factory.user()
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    morsel = r.cookies[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]


async def test_secure_cookie_when_configured(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(cookie_secure=True))
    user = await factory.user()
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 200
    assert r.cookies[COOKIE]["secure"] is True


async def test_tampered_cookie_is_an_anonymous_session(client, aiohttp_client, factory):
    user = await factory.user()
    await login(client, user["username"])
    value = session_cookie(client)
    forged = await client_with_cookie(aiohttp_client, client, value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB"))
    r = await forged.get("/api/me")
    assert r.status == 401


async def test_a_ban_ends_a_logged_in_session(client, aiohttp_client, factory):
    user = await factory.user()
    await login(client, user["username"])
    admin_client = await aiohttp_client(client.server)
    admin = await factory.user(role="admin")
    token = await login(admin_client, admin["username"])
    r = await admin_client.put(f"/api/admin/users/{user['id']}", json={"is_active": False},
                               headers={"X-CSRF-Token": token})
    assert r.status == 200, await r.text()
    me = await client.get("/api/me")
    assert me.status == 401
    assert (await me.json())["data"] == {"reason": "unauthenticated"}


async def test_lifting_a_ban_does_not_revive_old_sessions(client, aiohttp_client, factory):
    user = await factory.user()
    await login(client, user["username"])
    cookie = session_cookie(client)
    admin_client = await aiohttp_client(client.server)
    admin = await factory.user(role="admin")
    headers = {"X-CSRF-Token": await login(admin_client, admin["username"])}
    for active in (False, True):
        r = await admin_client.put(f"/api/admin/users/{user['id']}", json={"is_active": active}, headers=headers)
        assert r.status == 200, await r.text()
    replay = await client_with_cookie(aiohttp_client, client, cookie)
    assert (await replay.get("/api/me")).status == 401
    # the user logs in again as normal
    await login(client, user["username"])
    assert (await client.get("/api/me")).status == 200


async def test_a_role_change_ends_the_users_sessions(client, aiohttp_client, factory):
    user = await factory.user()
    await login(client, user["username"])
    admin_client = await aiohttp_client(client.server)
    admin = await factory.user(role="admin")
    headers = {"X-CSRF-Token": await login(admin_client, admin["username"])}
    r = await admin_client.put(f"/api/admin/users/{user['id']}", json={"role": "admin"}, headers=headers)
    assert r.status == 200, await r.text()
    assert (await client.get("/api/me")).status == 401
    await login(client, user["username"])
    assert (await (await client.get("/api/me")).json())["data"]["user"]["role"] == "admin"


async def test_a_deleted_users_session_ends(client, ctx, factory):
    user = await factory.user()
    await login(client, user["username"])
    await db.execute(ctx.db, "DELETE FROM users WHERE id = %s", (user["id"],))
    await ctx.redis.delete(ctx.keys.user_auth(user["id"]))
    assert (await client.get("/api/me")).status == 401


async def test_session_survives_a_lost_auth_cache(client, ctx, factory):
    user = await factory.user()
    await login(client, user["username"])
    await ctx.redis.delete(ctx.keys.user_auth(user["id"]))
    assert (await client.get("/api/me")).status == 200
    assert await ctx.redis.exists(ctx.keys.user_auth(user["id"])) == 1


async def test_a_stale_auth_state_never_overwrites_a_newer_one(ctx, factory):
    # a login that read the user's row just before a ban caches what it read, after the ban did
    user = await factory.user()
    await cache_auth_state(ctx, user["id"], 3, "user", False)
    await cache_auth_state(ctx, user["id"], 2, "user", True)
    assert await auth_state(ctx, user["id"]) == (3, "user", False)
    await cache_auth_state(ctx, user["id"], 4, "admin", True)
    assert await auth_state(ctx, user["id"]) == (4, "admin", True)


async def test_logins_racing_a_ban_leave_no_live_session(client, aiohttp_client, ctx, factory):
    user = await factory.user()
    admin_client = await aiohttp_client(client.server)
    admin = await factory.user(role="admin")
    headers = {"X-CSRF-Token": await login(admin_client, admin["username"])}
    shoppers = [await aiohttp_client(client.server) for _ in range(5)]
    await asyncio.gather(
        admin_client.put(f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=headers),
        *(s.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD}) for s in shoppers))
    for shopper in shoppers:
        assert (await shopper.get("/api/me")).status == 401
    assert await auth_state(ctx, user["id"]) == (1, "user", False)
