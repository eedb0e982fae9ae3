"""Who is asking: the session cookie checked against the auth cache, and the role guards."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from flashsale.appkeys import CTX, USER
from flashsale.errors import Forbidden, Unauthenticated
from flashsale.services import user_sessions
from flashsale.services.auth_cache import session_state


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def current_user(request: web.Request) -> CurrentUser | None:
    """The logged-in user, or None; a session that was logged out, from an old epoch or of a banned
    user is dropped (one HMGET of the user's auth hash)."""
    if USER in request:
        return request[USER]
    user = None
    session = await get_session(request)
    uid, sid = session.get("uid"), session.get("sid")
    if uid is not None:
        state = await session_state(request.app[CTX], uid, sid) if isinstance(sid, str) else None
        if state is None or state[0] != session.get("ep") or not state[2] or not user_sessions.is_live(state[3]):
            session.clear()  # logged out, the password changed, the user was banned or deleted
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
    """A fresh session (new cookie, new CSRF token, a new server-side session id) so that no
    pre-login id survives; a session this request had already is ended on the server."""
    ctx = request.app[CTX]
    old = await get_session(request)
    if isinstance(old.get("sid"), str) and old.get("uid") is not None:
        await user_sessions.end(ctx, old["uid"], old["sid"])
    sid = await user_sessions.create(ctx, user_id)
    session = await new_session(request)
    session["uid"] = user_id
    session["sid"] = sid
    session["name"] = username
    session["ep"] = epoch
    session["csrf"] = secrets.token_urlsafe(32)
    session["iat"] = int(time.time())
    request[USER] = CurrentUser(id=user_id, username=username, role=role)
    return session


async def end_session(request: web.Request) -> None:
    """Log out: the session ends on the server too, so a saved copy of the cookie is anonymous."""
    session = await get_session(request)
    if isinstance(session.get("sid"), str) and session.get("uid") is not None:
        await user_sessions.end(request.app[CTX], session["uid"], session["sid"])
    session.invalidate()
    request[USER] = None


async def end_all_sessions(request: web.Request, user: CurrentUser) -> None:
    """Log out everywhere: every session of the user, this one included."""
    await user_sessions.end_all(request.app[CTX], user.id)
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
