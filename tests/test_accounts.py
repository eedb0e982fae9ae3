"""Accounts through the JSON API: register, log in and out, rate limits, password change and reset."""
from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from flashsale import db
from flashsale.appkeys import CTX
from flashsale.jsonio import iso

from tests.support.auth import login
from tests.support.factory import PASSWORD, unique

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TOKEN_IN_LINK = re.compile(r"/password/reset\?token=([A-Za-z0-9_\-]+)")


@pytest.fixture(autouse=True)
async def fresh_ip_counters(ctx):
    """Failed logins and reset requests all come from 127.0.0.1: give each test a clean window."""
    keys = [ctx.keys.login_fail_ip("127.0.0.1"), ctx.keys.reset_request_ip("127.0.0.1"),
            ctx.keys.register_ip("127.0.0.1")]
    await ctx.redis.delete(*keys)
    yield
    await ctx.redis.delete(*keys)


async def register(client, **body):
    return await client.post("/api/auth/register", json=body)


def public_user(user: dict) -> dict:
    """The contract's `user` object for a factory-made user."""
    return {**{k: v for k, v in user.items() if k != "password"}, "created_at": iso(user["created_at"])}


def unique_phone() -> str:
    return "+1" + re.sub(r"\D", "", unique(""))


def new_account(**overrides):
    name = unique("reg")
    return {"username": name, "password": "s3cret-passw0rd", "email": f"{name}@example.com", **overrides}


# --- register ---------------------------------------------------------------------------------

async def test_register_returns_201_with_the_user(client):
    body = new_account(phone="+86 138-0000-1111", email="Mixed.Case@Example.com")
    r = await register(client, **body)
    assert r.status == 201, await r.text()
    got = await r.json()
    user = got["data"]["user"]
    assert ISO_Z.match(user["created_at"])
    assert got == {"code": 201, "msg": "registered", "data": {"user": {
        "id": user["id"], "username": body["username"], "role": "user",
        "email": "mixed.case@example.com", "phone": "+8613800001111", "created_at": user["created_at"],
    }}}
    assert "password" not in await r.text()


async def test_register_with_phone_only(client):
    r = await register(client, username=unique("ph"), password="s3cret-passw0rd", phone="13900000000")
    assert r.status == 201, await r.text()
    user = (await r.json())["data"]["user"]
    assert (user["email"], user["phone"]) == (None, "13900000000")


@pytest.mark.parametrize("change, field", [
    ({"username": "bad name!"}, "username"),
    ({"username": "ab"}, "username"),
    ({"username": "x" * 33}, "username"),
    ({"username": None}, "username"),
    ({"password": "short7!"}, "password"),
    ({"password": "p" * 129}, "password"),
    ({"password": None}, "password"),
    ({"email": None}, "email"),
    ({"email": "not-an-email"}, "email"),
    ({"email": None, "phone": "call me"}, "phone"),
])
async def test_register_refuses_invalid_fields(client, change, field):
    body = {k: v for k, v in {**new_account(), **change}.items() if v is not None}
    r = await register(client, **body)
    assert r.status == 400, await r.text()
    got = await r.json()
    assert got["code"] == 400
    assert got["data"]["reason"] == "validation"
    assert set(got["data"]["errors"]) == {field}
    assert isinstance(got["data"]["errors"][field], str) and got["data"]["errors"][field]


async def test_register_accepts_username_and_password_at_their_limits(client):
    r = await register(client, **new_account(username=unique("x").ljust(32, "_"), password="p" * 128))
    assert r.status == 201, await r.text()
    r = await register(client, **new_account(username="a_b", password="p" * 8))
    assert r.status == 201, await r.text()


async def test_register_refuses_a_body_that_is_not_an_object(client):
    r = await client.post("/api/auth/register", data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status == 400, await r.text()
    assert (await r.json())["data"] == {"reason": "validation", "errors": {"body": "Expected a JSON object."}}


@pytest.mark.parametrize("clash, reason", [
    ("username", "username_taken"), ("email", "email_taken"), ("phone", "phone_taken"),
])
async def test_register_refuses_a_taken_username_email_or_phone(client, clash, reason):
    first = new_account(phone=unique_phone())
    assert (await register(client, **first)).status == 201
    second = new_account(phone=unique_phone())
    second[clash] = first[clash].upper() if clash != "phone" else first[clash]
    r = await register(client, **second)
    assert r.status == 409, await r.text()
    got = await r.json()
    assert got["code"] == 409
    assert got["data"] == {"reason": reason}


async def test_username_that_looks_like_a_key_name_is_reported_as_username_taken(client):
    # the duplicate-key message contains the username itself; only the key name may decide
    name = "uq_users_email"
    first = await register(client, **new_account(username=name))
    assert first.status == 201, await first.text()
    r = await register(client, **new_account(username=name))
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "username_taken"}


async def test_two_registers_of_one_name_racing_make_one_account(client, ctx):
    name = unique("race")
    results = await asyncio.gather(
        register(client, **new_account(username=name, email=f"{name}.a@example.com")),
        register(client, **new_account(username=name, email=f"{name}.b@example.com")),
    )
    statuses = sorted(r.status for r in results)
    assert statuses == [201, 409]
    loser = next(r for r in results if r.status == 409)
    assert (await loser.json())["data"] == {"reason": "username_taken"}
    count = await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM users WHERE username = %s", (name,))
    assert count == 1


async def test_two_registers_of_one_email_racing_make_one_account(client):
    email = unique("race") + "@example.com"
    results = await asyncio.gather(*(register(client, **new_account(email=email)) for _ in range(2)))
    assert sorted(r.status for r in results) == [201, 409]
    loser = next(r for r in results if r.status == 409)
    assert (await loser.json())["data"] == {"reason": "email_taken"}


# --- login and logout -------------------------------------------------------------------------

async def test_login_returns_the_user_and_a_csrf_token(client, factory):
    user = await factory.user()
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 200, await r.text()
    got = await r.json()
    token = got["data"]["csrf_token"]
    assert isinstance(token, str) and len(token) >= 32
    public = public_user(user)
    assert got == {"code": 200, "msg": "logged in", "data": {"user": public, "csrf_token": token}}
    me = await client.get("/api/me")
    assert me.status == 200
    assert await me.json() == {"code": 200, "msg": "ok", "data": {"user": public, "csrf_token": token}}


async def test_logout_ends_the_session(client, factory):
    user = await factory.user()
    token = await login(client, user["username"])
    r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "logged out", "data": None}
    me = await client.get("/api/me")
    assert me.status == 401
    assert (await me.json())["data"] == {"reason": "unauthenticated"}


async def test_wrong_password_and_unknown_user_get_the_same_401(client, factory):
    user = await factory.user()
    wrong = await client.post("/api/auth/login", json={"username": user["username"], "password": "nope-nope-nope"})
    unknown = await client.post("/api/auth/login", json={"username": unique("ghost"), "password": PASSWORD})
    assert wrong.status == unknown.status == 401
    expected = {"code": 401, "msg": "Wrong username or password.", "data": {"reason": "bad_credentials"}}
    assert await wrong.json() == expected
    assert await unknown.json() == expected
    assert (await client.get("/api/me")).status == 401


async def test_login_without_fields_is_a_validation_error(client):
    r = await client.post("/api/auth/login", json={"username": "someone"})
    assert r.status == 400
    assert (await r.json())["data"] == {"reason": "validation", "errors": {"password": "This field is required."}}


async def test_banned_user_cannot_log_in(client, factory, ctx):
    user = await factory.user()
    await db.execute(ctx.db, "UPDATE users SET is_active = 0 WHERE id = %s", (user["id"],))
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 403, await r.text()
    assert await r.json() == {"code": 403, "msg": "This account is banned.", "data": {"reason": "banned"}}
    assert (await client.get("/api/me")).status == 401


async def test_banned_user_with_a_wrong_password_learns_nothing(client, factory, ctx):
    user = await factory.user()
    await db.execute(ctx.db, "UPDATE users SET is_active = 0 WHERE id = %s", (user["id"],))
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": "wrong-password"})
    assert r.status == 401
    assert (await r.json())["data"] == {"reason": "bad_credentials"}


# --- rate limits ------------------------------------------------------------------------------

async def test_failed_logins_for_one_username_are_rate_limited(client, factory, settings):
    user = await factory.user()
    for _ in range(settings.login_fail_limit):
        r = await client.post("/api/auth/login", json={"username": user["username"], "password": "wrong-password"})
        assert r.status == 401
    # even the right password waits now
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 429, await r.text()
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= settings.login_fail_window_s
    assert await r.json() == {"code": 429, "msg": "Too many attempts; try again later.",
                              "data": {"reason": "rate_limited", "retry_after": retry_after}}
    # the limit is per username (case does not matter), so another user still gets in
    r = await client.post("/api/auth/login", json={"username": user["username"].upper(), "password": PASSWORD})
    assert r.status == 429
    other = await factory.user()
    await login(client, other["username"])


async def test_concurrent_guesses_cannot_slip_under_the_username_limit(client, factory, settings):
    user = await factory.user()
    results = await asyncio.gather(*(
        client.post("/api/auth/login", json={"username": user["username"], "password": f"guess-{i:04d}"})
        for i in range(4 * settings.login_fail_limit)))
    statuses = [r.status for r in results]
    assert statuses.count(401) == settings.login_fail_limit, statuses
    assert statuses.count(429) == 3 * settings.login_fail_limit, statuses


async def test_a_successful_login_clears_the_username_counter(client, factory, settings):
    user = await factory.user()
    for _ in range(2):
        for _ in range(settings.login_fail_limit - 1):
            r = await client.post("/api/auth/login", json={"username": user["username"], "password": "wrong-pass"})
            assert r.status == 401
        await login(client, user["username"])


async def test_successful_logins_from_one_ip_do_not_count(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(login_fail_ip_limit=3, login_fail_limit=3))
    users = [await factory.user() for _ in range(6)]
    for user in users:
        await login(client, user["username"])


async def test_failed_logins_from_one_ip_are_rate_limited(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(login_fail_ip_limit=3))
    for _ in range(3):
        r = await client.post("/api/auth/login", json={"username": unique("ghost"), "password": "wrong-pass"})
        assert r.status == 401
    user = await factory.user()
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 429, await r.text()
    assert int(r.headers["Retry-After"]) >= 1
    assert (await r.json())["data"]["reason"] == "rate_limited"


# --- password change --------------------------------------------------------------------------

async def test_password_change_ends_the_other_sessions_only(client, aiohttp_client, factory):
    user = await factory.user()
    other = await aiohttp_client(client.server)
    token = await login(client, user["username"])
    await login(other, user["username"])
    r = await client.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "brand-new-pass"},
                          headers={"X-CSRF-Token": token})
    assert r.status == 200, await r.text()
    got = await r.json()
    new_token = got["data"]["csrf_token"]
    assert got == {"code": 200, "msg": "password changed", "data": {"csrf_token": new_token}}
    # the session that changed it goes on, with the token it was just given
    me = await client.get("/api/me")
    assert me.status == 200, await me.text()
    assert (await me.json())["data"]["csrf_token"] == new_token
    r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": new_token})
    assert r.status == 200
    # the other one is out
    r = await other.get("/api/me")
    assert r.status == 401
    # old password gone, new one works
    r = await other.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 401
    await login(other, user["username"], "brand-new-pass")


async def test_password_change_with_a_wrong_old_password_is_refused(user_client):
    client, user, headers = user_client
    r = await client.post("/api/me/password", json={"old_password": "not-my-password", "new_password": "whatever-123"},
                          headers=headers)
    assert r.status == 400, await r.text()
    assert await r.json() == {"code": 400, "msg": "The current password is wrong.",
                              "data": {"reason": "bad_credentials"}}
    assert (await client.get("/api/me")).status == 200


async def test_password_change_validates_the_new_password(user_client):
    client, user, headers = user_client
    r = await client.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "short"},
                          headers=headers)
    assert r.status == 400
    assert (await r.json())["data"] == {"reason": "validation",
                                        "errors": {"new_password": "Must be 8 to 128 characters."}}


async def test_password_change_needs_a_login(client):
    r = await client.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "whatever-123"})
    assert r.status == 401
    assert (await r.json())["data"] == {"reason": "unauthenticated"}


# --- password reset ---------------------------------------------------------------------------

def last_token(ctx) -> str:
    match = TOKEN_IN_LINK.search(ctx.mailer.outbox[-1].body)
    assert match, ctx.mailer.outbox[-1].body
    return match.group(1)


async def test_reset_request_is_202_for_known_and_unknown_accounts(client, ctx, factory, settings):
    user = await factory.user()
    known = await client.post("/api/auth/reset-request", json={"username": user["username"]})
    assert known.status == 202, await known.text()
    assert len(ctx.mailer.outbox) == 1
    message = ctx.mailer.outbox[-1]
    assert message.to == user["email"]
    # built from FLASHSALE_HOST/PORT when FLASHSALE_PUBLIC_URL is empty, never from the request
    assert f"http://{settings.host}:{settings.port}/password/reset?token=" in message.body
    unknown = await client.post("/api/auth/reset-request", json={"username": unique("ghost")})
    assert unknown.status == 202
    assert await known.json() == await unknown.json() == {
        "code": 202, "msg": "If the account exists, a reset link is on its way.", "data": None}
    assert len(ctx.mailer.outbox) == 1
    by_email = await client.post("/api/auth/reset-request", json={"email": user["email"].upper()})
    assert by_email.status == 202
    assert len(ctx.mailer.outbox) == 2


async def test_reset_link_uses_the_public_url_not_the_host_header(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(public_url="https://shop.example/"))
    ctx = client.app[CTX]
    user = await factory.user()
    r = await client.post("/api/auth/reset-request", json={"username": user["username"]},
                          headers={"Host": "evil.example"})
    assert r.status == 202
    assert "https://shop.example/password/reset?token=" in ctx.mailer.outbox[-1].body
    assert "evil.example" not in ctx.mailer.outbox[-1].body


async def test_reset_token_works_once(client, ctx, factory):
    user = await factory.user()
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    token = last_token(ctx)
    r = await client.post("/api/auth/reset", json={"token": token, "new_password": "reset-password-1"})
    assert r.status == 200, await r.text()
    assert await r.json() == {"code": 200, "msg": "password changed; please log in", "data": None}
    again = await client.post("/api/auth/reset", json={"token": token, "new_password": "reset-password-2"})
    assert again.status == 400
    assert await again.json() == {"code": 400, "msg": "The reset link is invalid or has expired.",
                                  "data": {"reason": "invalid_token"}}
    await login(client, user["username"], "reset-password-1")


async def test_expired_reset_token_is_refused(client, ctx, factory):
    user = await factory.user()
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    token = last_token(ctx)
    await db.execute(ctx.db, "UPDATE password_resets SET expires_at = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND "
                             "WHERE token_hash = %s", (hashlib.sha256(token.encode()).hexdigest(),))
    r = await client.post("/api/auth/reset", json={"token": token, "new_password": "reset-password-1"})
    assert r.status == 400
    assert (await r.json())["data"] == {"reason": "invalid_token"}
    await login(client, user["username"])


async def test_reset_link_is_valid_for_the_configured_time(client, ctx, factory, settings):
    user = await factory.user()
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    token = last_token(ctx)
    seconds = await db.fetch_value(
        ctx.db, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(3), expires_at) FROM password_resets "
                "WHERE token_hash = %s", (hashlib.sha256(token.encode()).hexdigest(),))
    assert settings.reset_token_ttl_s - 5 <= seconds <= settings.reset_token_ttl_s


async def test_unknown_or_missing_reset_token_is_refused(client):
    for body in ({"token": "not-a-real-token", "new_password": "reset-password-1"},
                 {"new_password": "reset-password-1"}):
        r = await client.post("/api/auth/reset", json=body)
        assert r.status == 400
        assert (await r.json())["data"] == {"reason": "invalid_token"}


async def test_reset_with_a_short_password_keeps_the_token(client, ctx, factory):
    user = await factory.user()
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    token = last_token(ctx)
    r = await client.post("/api/auth/reset", json={"token": token, "new_password": "short"})
    assert r.status == 400
    assert (await r.json())["data"]["reason"] == "validation"
    r = await client.post("/api/auth/reset", json={"token": token, "new_password": "long-enough-now"})
    assert r.status == 200


async def test_reset_ends_the_users_sessions(client, aiohttp_client, ctx, factory):
    user = await factory.user()
    await login(client, user["username"])
    stranger = await aiohttp_client(client.server)
    await stranger.post("/api/auth/reset-request", json={"username": user["username"]})
    r = await stranger.post("/api/auth/reset", json={"token": last_token(ctx), "new_password": "reset-password-1"})
    assert r.status == 200
    assert (await client.get("/api/me")).status == 401


async def test_a_new_password_spends_the_other_reset_links(client, ctx, factory):
    user = await factory.user()
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    first = last_token(ctx)
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    second = last_token(ctx)
    assert (await client.post("/api/auth/reset", json={"token": second, "new_password": "reset-password-1"})).status == 200
    r = await client.post("/api/auth/reset", json={"token": first, "new_password": "reset-password-2"})
    assert r.status == 400
    assert (await r.json())["data"] == {"reason": "invalid_token"}


async def test_a_password_change_spends_pending_reset_links(user_client, ctx):
    client, user, headers = user_client
    await client.post("/api/auth/reset-request", json={"username": user["username"]})
    token = last_token(ctx)
    r = await client.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "changed-by-me"},
                          headers=headers)
    assert r.status == 200
    r = await client.post("/api/auth/reset", json={"token": token, "new_password": "reset-password-1"})
    assert r.status == 400
    assert (await r.json())["data"] == {"reason": "invalid_token"}


async def test_reset_requests_are_rate_limited_per_ip(client):
    statuses = []
    for _ in range(11):
        r = await client.post("/api/auth/reset-request", json={"username": unique("ghost")})
        statuses.append(r.status)
    assert statuses == [202] * 10 + [429]
    assert int(r.headers["Retry-After"]) >= 1
    assert (await r.json())["data"]["reason"] == "rate_limited"
