"""Server-side sessions: each login is a row in MySQL (the truth) and a field `s:<sid>` of the
user's auth hash in Redis (the cache every request reads with the epoch, in the same HMGET).

Logout deletes both, so a saved copy of the cookie is anonymous afterwards; "log out everywhere"
bumps the epoch and deletes every row. When Redis loses the hash (restart, expiry) it is rebuilt
from MySQL with the live sessions (auth_cache.cache_auth_state). Rows past their expiry are pruned.
"""
from __future__ import annotations

import datetime as dt
import secrets
import time

from flashsale import db
from flashsale.context import Context
from flashsale.jsonio import utcnow
from flashsale.services.auth_cache import AUTH_TTL_S, cache_auth_state, session_field

# -> nothing; the new session of a user
INSERT_SESSION = "INSERT INTO user_sessions (id, user_id, expires_at) VALUES (%s, %s, %s)"
# 1: this session ended now; 0: it had ended already
DELETE_SESSION = "DELETE FROM user_sessions WHERE id = %s AND user_id = %s"
# -> the ids of every session of the user, locked until they are deleted
USER_SESSIONS_FOR_UPDATE = "SELECT id FROM user_sessions WHERE user_id = %s FOR UPDATE"
DELETE_USER_SESSIONS = "DELETE FROM user_sessions WHERE user_id = %s"
# 1: every session of the user ends (each cookie carries the old epoch)
BUMP_EPOCH = "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = %s"
# -> the user's new epoch, role and ban flag
EPOCH_OF = "SELECT session_epoch, role, is_active FROM users WHERE id = %s"
# n: sessions past their expiry, removed in bounded batches
PRUNE_EXPIRED = "DELETE FROM user_sessions WHERE expires_at <= %s LIMIT %s"
PRUNE_USER_EXPIRED = "DELETE FROM user_sessions WHERE user_id = %s AND expires_at <= %s"

DEAD = "0"  # the value a logged-out session's field keeps, so that a late rebuild cannot revive it


def new_session_id() -> str:
    return secrets.token_hex(16)


def is_live(value: str | bytes | None, now_s: float | None = None) -> bool:
    """Whether a session field's value (its expiry in epoch seconds) is still live."""
    if value is None:
        return False
    try:
        return int(value) > (time.time() if now_s is None else now_s)
    except ValueError:
        return False


async def create(ctx: Context, user_id: int) -> str:
    """A new session of the user: the row, then its field in the auth hash; returns its id."""
    sid = new_session_id()
    max_age = ctx.settings.session_max_age_s
    now = utcnow()
    async with db.transaction(ctx.db) as cur:
        await cur.execute(PRUNE_USER_EXPIRED, (user_id, now))
        await cur.execute(INSERT_SESSION, (sid, user_id, now + dt.timedelta(seconds=max_age)))
    key = ctx.keys.user_auth(user_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, session_field(sid), int(time.time()) + max_age)
        pipe.expire(key, AUTH_TTL_S, nx=True)
        await pipe.execute()
    return sid


async def end(ctx: Context, user_id: int, sid: str) -> None:
    """Log one session out: its row goes, its field is marked dead."""
    await db.execute(ctx.db, DELETE_SESSION, (sid, user_id))
    key = ctx.keys.user_auth(user_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, session_field(sid), DEAD)
        pipe.expire(key, AUTH_TTL_S, nx=True)
        await pipe.execute()


async def end_all(ctx: Context, user_id: int) -> None:
    """Log out everywhere: a new epoch (every cookie of the user is stale at once) and no rows."""
    async with db.transaction(ctx.db) as cur:
        await cur.execute(USER_SESSIONS_FOR_UPDATE, (user_id,))
        sids = [r["id"] for r in await cur.fetchall()]
        await cur.execute(BUMP_EPOCH, (user_id,))
        await cur.execute(DELETE_USER_SESSIONS, (user_id,))
        await cur.execute(EPOCH_OF, (user_id,))
        row = await cur.fetchone()
    if row is None:
        return
    await cache_auth_state(ctx, user_id, row["session_epoch"], row["role"], bool(row["is_active"]))
    if sids:  # stale already (old epoch); only tidied away
        await ctx.redis.hdel(ctx.keys.user_auth(user_id), *(session_field(s) for s in sids))


async def prune(ctx: Context, batch: int = 1000) -> int:
    """Delete sessions past their expiry (a batch at a time); returns how many went."""
    return await db.execute(ctx.db, PRUNE_EXPIRED, (utcnow(), batch))
