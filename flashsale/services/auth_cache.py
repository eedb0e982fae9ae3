"""The auth cache: each user's session epoch, role, ban flag, live sessions (`s:<sid>` -> expiry in
epoch seconds, "0" once logged out) and address ids in one Redis hash.

Every request checks its session against it instead of MySQL (auth.py, admission.py); the
services that change a user or their addresses keep it current.
"""
from __future__ import annotations

import time
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.jsonio import utcnow

AUTH_TTL_S = 24 * 3600

# -> the ids of the user's addresses
ADDRESS_IDS = "SELECT id FROM addresses WHERE user_id = %s"
# -> {session_epoch, role, is_active} for the Redis cache of a user's auth state
USER_AUTH_STATE = "SELECT session_epoch, role, is_active FROM users WHERE id = %s"
# -> the user's live sessions with their expiry, for a rebuilt hash
LIVE_SESSIONS = "SELECT id, expires_at FROM user_sessions WHERE user_id = %s AND expires_at > %s"


def session_field(sid: str) -> str:
    """The auth hash's field of one session (user_sessions.py writes it)."""
    return "s:" + sid


async def session_state(ctx: Context, user_id: int, sid: str) -> tuple[int, str, bool, str | None] | None:
    """(epoch, role, active, the session's field) in one HMGET on the lean connection (every request
    with a session makes it); rebuilt from MySQL when Redis lost it."""
    key = ctx.keys.user_auth(user_id)
    epoch, role, active, live = await ctx.mux.call("HMGET", key, "epoch", "role", "active", session_field(sid))
    if epoch is None:
        state = await auth_state(ctx, user_id)
        if state is None:
            return None
        return (*state, await ctx.redis.hget(key, session_field(sid)))
    return int(epoch), role, bool(int(active)), live


async def auth_state(ctx: Context, user_id: int) -> tuple[int, str, bool] | None:
    """(epoch, role, active) from Redis; filled from MySQL once when Redis lost it."""
    epoch, role, active = await ctx.redis.hmget(ctx.keys.user_auth(user_id), "epoch", "role", "active")
    if epoch is None:
        row = await db.fetch_one(ctx.db, USER_AUTH_STATE, (user_id,))
        if row is None:
            return None
        epoch, role, active = row["session_epoch"], row["role"], int(row["is_active"])
        await cache_auth_state(ctx, user_id, epoch, role, bool(active))
    return int(epoch), role, bool(int(active))


async def cache_auth_state(ctx: Context, user_id: int, epoch: int, role: str, active: bool) -> None:
    """Cache what MySQL said, unless a newer epoch is cached already: a login that read the row just
    before a ban (every ban, role and password change bumps the epoch) must not bring it back.
    A hash without an epoch (lost or expired) also gets the user's live sessions from MySQL, each
    only where its field is absent, so that a session logged out meanwhile ("0") stays out.

    One script on the user's key (cache_auth.lua): the compare and the write are atomic, on one
    Redis or a cluster (WATCH is not cluster-safe). MySQL is asked for the sessions only when the
    script finds no epoch."""
    keys, args = [ctx.keys.user_auth(user_id)], [epoch, role, int(active), AUTH_TTL_S]
    if int(await ctx.scripts.cache_auth(keys=keys, args=args + [0])) != -1:
        return
    pairs: list[Any] = []
    now_db, now_s = utcnow(), int(time.time())
    for row in await db.fetch_all(ctx.db, LIVE_SESSIONS, (user_id, now_db)):
        left_s = int((row["expires_at"] - now_db).total_seconds())
        pairs += [session_field(row["id"]), now_s + max(1, left_s)]
    await ctx.scripts.cache_auth(keys=keys, args=args + [1] + pairs)


async def cache_addresses(ctx: Context, user_id: int) -> list[str]:
    """Keep the user's address ids beside the auth state, so the purchase path needs no MySQL."""
    ids = [str(r["id"]) for r in await db.fetch_all(ctx.db, ADDRESS_IDS, (user_id,))]
    await store_addresses(ctx, user_id, ids)
    return ids


async def store_addresses(ctx: Context, user_id: int, ids: list[Any]) -> None:
    """Write the user's address ids through to the auth hash, after the commit that changed them.

    Two changes of one user committed in one order may reach Redis in the other; the result is
    then one step behind: an id missing from it is looked up in MySQL once by the purchase path,
    and a deleted id still in it ends as an explicit `address_missing` failure with its unit back.
    """
    key = ctx.keys.user_auth(user_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, "addrs", ",".join(str(i) for i in ids))
        pipe.expire(key, AUTH_TTL_S)
        await pipe.execute()


async def forget_user(ctx: Context, user_id: int) -> None:
    """A deleted user: no epoch matches any more and nobody is active, without asking MySQL."""
    key = ctx.keys.user_auth(user_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping={"epoch": -1, "role": "", "active": 0, "addrs": ""})
        pipe.expire(key, AUTH_TTL_S)
        await pipe.execute()
