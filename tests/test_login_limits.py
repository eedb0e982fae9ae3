"""Login and registration limits: counted before hashing, on the canonical account, per address,
and a lock-out that a guesser elsewhere cannot aim at the owner."""
from __future__ import annotations

import asyncio

import pytest

from flashsale.services.accounts import canonical_name

from tests.support.auth import login
from tests.support.factory import PASSWORD, unique


@pytest.fixture(autouse=True)
async def fresh_ip_counters(ctx):
    keys = [ctx.keys.login_fail_ip("127.0.0.1"), ctx.keys.register_ip("127.0.0.1")]
    await ctx.redis.delete(*keys)
    yield
    await ctx.redis.delete(*keys)


def test_canonical_names_fold_as_mysql_compares():
    assert canonical_name("Admin ") == canonical_name("ADMIN") == canonical_name("àdmin") == "admin"


async def test_variants_of_a_name_share_one_counter(client, factory, settings):
    user = await factory.user(username=unique("Case"))
    name = user["username"]
    variants = [name + " ", name.upper(), name.lower(), name + "  ", name.swapcase()]
    for variant in variants[: settings.login_fail_limit]:
        r = await client.post("/api/auth/login", json={"username": variant, "password": "wrong-password"})
        assert r.status == 401, await r.text()
    r = await client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status == 429 and (await r.json())["data"]["reason"] == "rate_limited"


async def test_a_burst_of_guesses_is_counted_before_any_hashing(client, ctx, factory, settings):
    user = await factory.user()
    verified = 0
    real_verify = ctx.hasher.verify

    async def counting_verify(password, stored):
        nonlocal verified
        verified += 1
        return await real_verify(password, stored)

    ctx.hasher.verify = counting_verify
    try:
        results = await asyncio.gather(*(
            client.post("/api/auth/login", json={"username": user["username"], "password": f"guess-{i}"})
            for i in range(30)))
    finally:
        ctx.hasher.verify = real_verify
    statuses = [r.status for r in results]
    assert statuses.count(401) == settings.login_fail_limit and statuses.count(429) == 30 - settings.login_fail_limit
    assert verified == settings.login_fail_limit  # the refused ones were never hashed


async def test_a_guesser_elsewhere_cannot_lock_the_owner_out(aiohttp_client, make_app, ctx, factory, settings):
    client = await aiohttp_client(make_app())
    user = await factory.user()
    account = f"id:{user['id']}"
    # someone at 203.0.113.9 used up that address's tries on this account
    await ctx.redis.set(ctx.keys.login_fail_user_ip(account, "203.0.113.9"), settings.login_fail_limit, ex=60)
    await ctx.redis.set(ctx.keys.login_fail_user(account), settings.login_fail_limit, ex=60)
    await login(client, user["username"])  # the owner, from another address, gets in


async def test_the_global_cap_per_account_still_holds(aiohttp_client, make_app, ctx, factory):
    client = await aiohttp_client(make_app(login_fail_user_limit=3, login_fail_limit=10))
    user = await factory.user()
    await ctx.redis.set(ctx.keys.login_fail_user(f"id:{user['id']}"), 3, ex=60)  # many addresses failed
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60


async def test_unknown_names_are_limited_too(client, settings):
    ghost = unique("ghost")
    for _ in range(settings.login_fail_limit):
        r = await client.post("/api/auth/login", json={"username": ghost, "password": "wrong-password"})
        assert r.status == 401
    r = await client.post("/api/auth/login", json={"username": ghost.upper() + " ", "password": "wrong-password"})
    assert r.status == 429


async def test_registration_is_rate_limited_per_address(aiohttp_client, make_app, ctx):
    client = await aiohttp_client(make_app(register_ip_limit=2))
    statuses = []
    for _ in range(3):
        name = unique("reg")
        r = await client.post("/api/auth/register", json={"username": name, "password": "long-password",
                                                          "email": f"{name}@example.com"})
        statuses.append(r.status)
    assert statuses == [201, 201, 429]
    assert (await r.json())["data"]["reason"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1


async def test_many_users_behind_one_address_log_in_at_once(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(login_fail_ip_limit=3))
    users = [await factory.user() for _ in range(8)]
    results = await asyncio.gather(*(
        client.post("/api/auth/login", json={"username": u["username"], "password": PASSWORD}) for u in users))
    assert [r.status for r in results] == [200] * 8
