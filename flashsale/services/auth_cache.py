"""The auth cache: each user's session epoch, role, ban flag and address ids in one Redis hash.

Every request checks its session against it instead of MySQL (auth.py, admission.py); the
services that change a user or their addresses keep it current.
"""
from __future__ import annotations

from typing import Any

from flashsale import db
from flashsale.context import Context

AUTH_TTL_S = 24 * 3600

# -> the ids of the user's addresses
ADDRESS_IDS = "SELECT id FROM addresses WHERE user_id = %s"
# -> {session_epoch, role, is_active} for the Redis cache of a user's auth state
USER_AUTH_STATE = "SELECT session_epoch, role, is_active FROM users WHERE id = %s"


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
    before a ban (every ban, role and password change bumps the epoch) must not bring it back."""
    # one script on the user's key: the compare and the write are atomic, on one Redis or a cluster
    await ctx.scripts.cache_auth(keys=[ctx.keys.user_auth(user_id)],
                                 args=[epoch, role, int(active), AUTH_TTL_S])


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
