"""Session cookies: the session sealed with AES-GCM in the cookie, and a per-process decode cache.

aiohttp-session keeps the session in the cookie itself; this storage seals it with AES-GCM
(cryptography's AEAD: encrypted and authenticated, bound to the cookie's name), which opens
several times faster than Fernet. A buyer sends the same cookie again and again (purchase, then
result polls), so each process also remembers the cookies it made or opened (the cookie string is
the key, so a forged cookie can only miss), bounded in number and never past the session's age,
each as the JSON bytes it opened to (read again per use: about a microsecond).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flashsale.settings import Settings

SESSION_COOKIE = "fs_session"
SEAL_CONTEXT = b"fs_session/v1"  # associated data: a token sealed for anything else will not open
NONCE_BYTES = 12
CACHE_MAX = 100_000
SESSIONS = web.AppKey("sessions", "SessionCookies")


class SessionCookies(AbstractStorage):
    def __init__(self, settings: Settings):
        super().__init__(cookie_name=SESSION_COOKIE, httponly=True, samesite="Lax",
                         secure=settings.cookie_secure or None, max_age=settings.session_max_age_s)
        # derived from the secret, so every worker opens every cookie
        key = hashlib.sha256(b"flashsale-session:" + settings.secret_key.encode()).digest()
        self.aead = AESGCM(key)
        self.ttl_s = settings.session_max_age_s
        # cookie -> its opened document {created, session} as JSON bytes: one object per session,
        # not a dozen (tens of thousands of live sessions as dicts slowed every request, even
        # /healthz, by a fifth), and each caller gets a fresh dict that cannot change the cache
        self.cache: dict[str, bytes] = {}

    def seal(self, data: dict[str, Any]) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plain = orjson.dumps(data)
        sealed = self.aead.encrypt(nonce, plain, SEAL_CONTEXT)
        cookie = base64.urlsafe_b64encode(nonce + sealed).decode()
        self._remember(cookie, plain)
        return cookie

    def open(self, cookie: str) -> dict[str, Any] | None:
        """The stored document ({created, session}) of a cookie, or None when forged or too old."""
        plain = self.cache.get(cookie)
        cached = plain is not None
        if not cached:
            try:
                raw = base64.urlsafe_b64decode(cookie)
                plain = self.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], SEAL_CONTEXT)
            except (binascii.Error, ValueError, InvalidTag):
                return None
        try:
            data = orjson.loads(plain)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("created"), int):
            return None
        if data["created"] + self.ttl_s <= time.time():
            if cached:
                del self.cache[cookie]
            return None
        if not cached:
            self._remember(cookie, plain)
        return data

    def _remember(self, cookie: str, plain: bytes) -> None:
        if len(self.cache) >= CACHE_MAX:
            for stale in list(self.cache)[: CACHE_MAX // 10]:  # the oldest tenth
                del self.cache[stale]
        self.cache[cookie] = plain

    async def load_session(self, request: web.Request) -> Session:
        cookie = self.load_cookie(request)
        data = self.open(cookie) if cookie else None
        if data is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(None, data=data, new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        if session.empty:
            return self.save_cookie(response, "", max_age=session.max_age)
        self.save_cookie(response, self.seal(self._get_session_data(session)), max_age=session.max_age)


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
    data = request.app[SESSIONS].open(cookie)
    session = data.get("session") if data else None
    return session if isinstance(session, dict) else None
