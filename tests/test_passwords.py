"""Password hashing at the production cost, re-hashing on login, and a loop that never waits on scrypt."""
from __future__ import annotations

import asyncio

from flashsale import db
from flashsale.passwords import Cost, Hasher, hash_password, needs_rehash, verify_password
from flashsale.settings import Settings

from tests.support.auth import login
from tests.support.factory import PASSWORD

PRODUCTION = Cost(Settings.scrypt_n, Settings.scrypt_r, Settings.scrypt_p)


def test_production_cost_is_the_documented_one():
    assert (PRODUCTION.n, PRODUCTION.r, PRODUCTION.p) == (2**14, 8, 1)


def test_hash_and_verify_at_the_production_cost():
    stored = hash_password("correct horse", PRODUCTION)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 22 and len(digest) == 43  # 16 and 32 bytes, unpadded base64
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)


def test_same_password_gets_a_fresh_salt_each_time():
    first, second = hash_password("same", PRODUCTION), hash_password("same", PRODUCTION)
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("same", first) and verify_password("same", second)


def test_malformed_or_foreign_hashes_never_verify():
    good = hash_password("pw", Cost(16, 1, 1))
    for stored in ("", "plain-text", good.replace("scrypt", "bcrypt", 1), "scrypt$16$1$1$!!$!!",
                   good.replace("scrypt$16$", "scrypt$15$", 1),
                   good.rsplit("$", 1)[0]):
        assert not verify_password("pw", stored), stored


def test_needs_rehash_when_the_cost_changes():
    stored = hash_password("pw", Cost(16, 1, 1))
    assert not needs_rehash(stored, Cost(16, 1, 1))
    assert needs_rehash(stored, Cost(32, 1, 1))
    assert needs_rehash(stored, Cost(16, 2, 1))
    assert needs_rehash(stored, PRODUCTION)
    assert needs_rehash("garbage", PRODUCTION)


async def test_hasher_runs_off_the_event_loop():
    hasher = Hasher(PRODUCTION, threads=2)
    try:
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)  # the ticker under test: it turns only while the loop is free
                ticks += 1

        ticker = asyncio.create_task(tick())
        stored = await hasher.hash("pw")
        ok = await hasher.verify("pw", stored)
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        assert ok
        assert ticks >= 5  # the loop kept turning while two production-cost scrypts ran
        assert not await hasher.verify("pw", None)  # unknown user: the dummy hash, and never true
    finally:
        hasher.close()


async def test_login_rehashes_a_hash_of_an_old_cost(client, ctx, factory):
    user = await factory.user()
    old = hash_password(PASSWORD, Cost(8, 1, 1))
    await db.execute(ctx.db, "UPDATE users SET password_hash = %s WHERE id = %s", (old, user["id"]))
    await login(client, user["username"])
    stored = await db.fetch_value(ctx.db, "SELECT password_hash FROM users WHERE id = %s", (user["id"],))
    assert stored != old
    assert not needs_rehash(stored, ctx.hasher.cost)
    assert verify_password(PASSWORD, stored)
    await login(client, user["username"])
    assert await db.fetch_value(ctx.db, "SELECT password_hash FROM users WHERE id = %s", (user["id"],)) == stored


async def test_login_at_production_cost_upgrades_a_cheap_hash(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(scrypt_n=PRODUCTION.n, scrypt_r=PRODUCTION.r, scrypt_p=PRODUCTION.p))
    user = await factory.user()  # hashed at the tests' cheap cost
    await login(client, user["username"])
    ctx = factory.ctx
    stored = await db.fetch_value(ctx.db, "SELECT password_hash FROM users WHERE id = %s", (user["id"],))
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password(PASSWORD, stored)


async def test_a_wrong_password_leaves_the_hash_alone(client, ctx, factory):
    user = await factory.user()
    old = hash_password(PASSWORD, Cost(8, 1, 1))
    await db.execute(ctx.db, "UPDATE users SET password_hash = %s WHERE id = %s", (old, user["id"]))
    r = await client.post("/api/auth/login", json={"username": user["username"], "password": "wrong-password"})
    assert r.status == 401
    assert await db.fetch_value(ctx.db, "SELECT password_hash FROM users WHERE id = %s", (user["id"],)) == old
    await ctx.redis.delete(ctx.keys.login_fail_ip("127.0.0.1"), ctx.keys.login_fail_user(f"id:{user['id']}"),
                           ctx.keys.login_fail_user_ip(f"id:{user['id']}", "127.0.0.1"))
