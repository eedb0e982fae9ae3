"""Who is asking: the session cookie, the per-user epoch in Redis, and the role guards."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from redis.exceptions import WatchError

from flashsale import db
from flashsale.appkeys import CTX, USER
from flashsale.context import Context
from flashsale.errors import Forbidden, Unauthenticated

AUTH_TTL_S = 24 * 3600

# -> the ids of the user's addresses
ADDRESS_IDS = "SELECT id FROM addresses WHERE user_id = %s"
# -> {session_epoch, role, is_active} for the Redis cache of a user's auth state
USER_AUTH_STATE = "SELECT session_epoch, role, is_active FROM users WHERE id = %s"


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


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
    key = ctx.keys.user_auth(user_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                cached = await pipe.hget(key, "epoch")
                if cached is not None and int(cached) > epoch:
                    return
                pipe.multi()
                pipe.hset(key, mapping={"epoch": epoch, "role": role, "active": int(active)})
                pipe.expire(key, AUTH_TTL_S)
                await pipe.execute()
                return
            except WatchError:
                continue  # someone wrote the key meanwhile: compare again


async def cache_addresses(ctx: Context, user_id: int) -> list[str]:
    """Keep the user's address ids beside the auth state, so the purchase path needs no MySQL."""
    ids = [str(r["id"]) for r in await db.fetch_all(ctx.db, ADDRESS_IDS, (user_id,))]
    await ctx.redis.hset(ctx.keys.user_auth(user_id), "addrs", ",".join(ids))
    return ids


async def forget_addresses(ctx: Context, user_id: int) -> None:
    """Call after the user's addresses change: the next purchase reloads them."""
    await ctx.redis.hdel(ctx.keys.user_auth(user_id), "addrs")


async def current_user(request: web.Request) -> CurrentUser | None:
    """The logged-in user, or None; a session from an old epoch or a banned user is dropped."""
    if USER in request:
        return request[USER]
    user = None
    session = await get_session(request)
    uid = session.get("uid")
    if uid is not None:
        state = await auth_state(request.app[CTX], uid)
        if state is None or state[0] != session.get("ep") or not state[2]:
            session.clear()  # the password changed, the user was banned or deleted
        else:
            user = CurrentUser(id=uid, username=session.get("name", ""), role=state[1])
    request[USER] = user
    return user


async def require_user(request: web.Request) -> CurrentUser:
    user = await current_user(request)
    if user is None:
        raise Unauthenticated()
    return user


async def require_admin(request: web.Request) -> CurrentUser:
    user = await require_user(request)
    if not user.is_admin:
        raise Forbidden()
    return user


async def start_session(request: web.Request, user_id: int, username: str, role: str, epoch: int) -> Session:
    """A fresh session (new cookie, new CSRF token) so that no pre-login id survives."""
    session = await new_session(request)
    session["uid"] = user_id
    session["name"] = username
    session["ep"] = epoch
    session["csrf"] = secrets.token_urlsafe(32)
    session["iat"] = int(time.time())
    request[USER] = CurrentUser(id=user_id, username=username, role=role)
    return session


async def end_session(request: web.Request) -> None:
    session = await get_session(request)
    session.invalidate()
    request[USER] = None


async def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, made on first use (anonymous sessions get one for forms)."""
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token
