"""Session cookies: encrypted (Fernet) by aiohttp-session, with a per-process cache of decrypted ones.

A buyer sends the same cookie again and again (purchase, then result polls); decrypting it each
time costs more than the rest of the purchase path. Each process remembers the cookies it made
or read (the cookie string is the key, so a forged cookie can only miss), bounded in number and
never past the cookie's own expiry.
"""
from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet, InvalidToken

from flashsale.settings import Settings

SESSION_COOKIE = "fs_session"
CACHE_MAX = 100_000
SESSIONS = web.AppKey("sessions", "CachedCookieStorage")


def session_fernet(settings: Settings) -> Fernet:
    # the cookie key is derived from the secret, so every worker decrypts every cookie
    key = hashlib.sha256(b"flashsale-session:" + settings.secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class CachedCookieStorage(EncryptedCookieStorage):
    def __init__(self, settings: Settings, fernet: Fernet):
        super().__init__(fernet, cookie_name=SESSION_COOKIE, httponly=True, samesite="Lax",
                         secure=settings.cookie_secure or None, max_age=settings.session_max_age_s,
                         encoder=lambda data: orjson.dumps(data).decode(), decoder=orjson.loads)
        self.fernet = fernet
        self.ttl_s = settings.session_max_age_s
        # cookie -> (session data, expiry in monotonic seconds)
        self.cache: dict[str, tuple[dict[str, Any], float]] = {}

    def remember(self, cookie: str, data: dict[str, Any], ttl_s: float) -> None:
        if len(self.cache) >= CACHE_MAX:
            for stale in list(self.cache)[: CACHE_MAX // 10]:  # the oldest tenth
                del self.cache[stale]
        self.cache[cookie] = (data, time.monotonic() + ttl_s)

    def decode(self, cookie: str) -> dict[str, Any] | None:
        """The whole stored document ({created, session}) of a cookie, or None when invalid."""
        hit = self.cache.get(cookie)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        try:
            token = cookie.encode()
            data = orjson.loads(self.fernet.decrypt(token, ttl=self.ttl_s))
            # a Fernet token starts with a version byte and the 64-bit issue time (checked above)
            issued = int.from_bytes(base64.urlsafe_b64decode(token[:12])[1:9], "big")
        except (InvalidToken, orjson.JSONDecodeError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        self.remember(cookie, data, issued + self.ttl_s - time.time())
        return data

    async def load_session(self, request: web.Request) -> Session:
        cookie = self.load_cookie(request)
        data = self.decode(cookie) if cookie else None
        if data is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(None, data=data, new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        if session.empty:
            return self.save_cookie(response, "", max_age=session.max_age)
        data = self._get_session_data(session)
        cookie = self.fernet.encrypt(orjson.dumps(data)).decode()
        self.remember(cookie, data, self.ttl_s)
        self.save_cookie(response, cookie, max_age=session.max_age)


def _cookie_value(header: str) -> str | None:
    """Our cookie's value from a Cookie header, without parsing the other cookies."""
    start = header.find(SESSION_COOKIE + "=")
    while start > 0 and header[start - 1] not in " ;":
        start = header.find(SESSION_COOKIE + "=", start + 1)
    if start < 0:
        return None
    start += len(SESSION_COOKIE) + 1
    end = header.find(";", start)
    value = header[start:end if end >= 0 else None].strip()
    return value.strip('"') or None


def read_session_fast(request: web.Request) -> dict | None:
    """The session's data straight from the cookie, without building aiohttp-session's object.

    For hot routes (the purchase path): the caller must still check the epoch in Redis.
    """
    cookie = _cookie_value(request.headers.get("Cookie", ""))
    if not cookie:
        return None
    data = request.app[SESSIONS].decode(cookie)
    session = data.get("session") if data else None
    return session if isinstance(session, dict) else None
