"""Logged-in sessions: through the login API, or a sealed session cookie made without a request."""
from __future__ import annotations

import secrets
import time

from flashsale.appkeys import CTX
from flashsale.services import user_sessions
from flashsale.sessions import SESSION_COOKIE, SESSIONS

from tests.support.factory import PASSWORD


async def login(client, username: str, password: str = PASSWORD) -> str:
    """Log in through the API; returns the session's CSRF token."""
    r = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status == 200, await r.text()
    return (await r.json())["data"]["csrf_token"]


async def session_cookie(app, user_id: int, epoch: int = 0) -> tuple[dict[str, str], str]:
    """(headers, csrf token) of a logged-in session for user_id, as login would make it (with its
    server-side session row and auth-hash field)."""
    csrf = secrets.token_urlsafe(16)
    sid = await user_sessions.create(app[CTX], user_id)
    data = {"created": int(time.time()), "session": {"uid": user_id, "name": f"user{user_id}", "ep": epoch,
                                                     "sid": sid, "csrf": csrf, "iat": int(time.time())}}
    token = app[SESSIONS].seal(data)
    return {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": csrf}, csrf
