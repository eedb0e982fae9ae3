"""The sealed session cookie: tampered, foreign or expired cookies open as no session."""
from __future__ import annotations

import base64
import time

from flashsale.sessions import SESSION_COOKIE, SESSIONS, SessionCookies

from tests.support.auth import login


def _flip(cookie: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cookie))
    raw[-1] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode()


async def test_a_logged_in_cookie_opens_and_a_tampered_one_does_not(client, factory):
    user = await factory.user()
    await login(client, user["username"])
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    storage: SessionCookies = client.app[SESSIONS]
    assert storage.open(cookie)["session"]["uid"] == user["id"]
    client.session.cookie_jar.clear()
    r = await client.get("/api/me", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert r.status == 200
    for bad in (_flip(cookie), cookie[:-4], "not-base64!!", ""):
        r = await client.get("/api/me", headers={"Cookie": f"{SESSION_COOKIE}={bad}"})
        assert r.status == 401, bad


async def test_a_cookie_sealed_with_another_secret_does_not_open(client, settings):
    other = SessionCookies(settings.replace(secret_key="another secret"))
    forged = other.seal({"created": int(time.time()), "session": {"uid": 1, "ep": 0, "csrf": "x"}})
    assert client.app[SESSIONS].open(forged) is None
    r = await client.get("/api/me", headers={"Cookie": f"{SESSION_COOKIE}={forged}"})
    assert r.status == 401


async def test_an_expired_session_does_not_open(client):
    storage: SessionCookies = client.app[SESSIONS]
    old = int(time.time()) - storage.ttl_s - 5
    cookie = storage.seal({"created": old, "session": {"uid": 1, "ep": 0, "csrf": "x"}})
    storage.cache.clear()  # as another process would see it
    assert storage.open(cookie) is None
    cookie = storage.seal({"created": old, "session": {"uid": 1, "ep": 0, "csrf": "x"}})
    assert storage.open(cookie) is None  # and not from the cache either
