"""CSRF: logged-in writes carry the session's token; login and register accept JSON only."""
from __future__ import annotations

import re

import pytest

from flashsale import db

from tests.support.auth import login
from tests.support.factory import PASSWORD, unique

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_REFUSAL = {"code": 403, "msg": "Missing or wrong CSRF token; reload the page and try again.",
                "data": {"reason": "csrf"}}


def form_token(html: str) -> str:
    match = FORM_TOKEN.search(html)
    assert match, html
    return match.group(1)


@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": "wrong-token"}, {"X-CSRF-Token": ""}])
async def test_logged_in_post_without_the_right_token_is_refused_and_changes_nothing(
        user_client, aiohttp_client, headers):
    client, user, _ = user_client
    r = await client.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "hijacked-pass"},
                          headers=headers)
    assert r.status == 403, await r.text()
    assert await r.json() == CSRF_REFUSAL
    # nothing changed: the session lives and the old password still works
    assert (await client.get("/api/me")).status == 200
    other = await aiohttp_client(client.server)
    await login(other, user["username"])


async def test_logout_without_the_token_keeps_the_session(user_client):
    client, user, headers = user_client
    r = await client.post("/api/auth/logout")
    assert r.status == 403
    assert await r.json() == CSRF_REFUSAL
    assert (await client.get("/api/me")).status == 200


async def test_another_sessions_token_is_refused(user_client, aiohttp_client, factory):
    client, user, headers = user_client
    other = await aiohttp_client(client.server)
    other_user = await factory.user()
    await login(other, other_user["username"])
    r = await other.post("/api/auth/logout", headers=headers)
    assert r.status == 403
    assert (await other.get("/api/me")).status == 200


async def test_token_may_come_as_a_form_field(user_client):
    client, user, headers = user_client
    r = await client.post("/api/auth/logout", data={"csrf_token": headers["X-CSRF-Token"]})
    assert r.status == 200, await r.text()
    assert (await client.get("/api/me")).status == 401


async def test_anonymous_api_write_is_answered_401_not_403(client):
    r = await client.post("/api/me/password", json={"old_password": "x", "new_password": "y"})
    assert r.status == 401
    assert (await r.json())["data"] == {"reason": "unauthenticated"}


@pytest.mark.parametrize("content_type", ["form", "text/plain"])
async def test_login_by_form_or_text_to_the_api_is_refused(client, factory, content_type):
    user = await factory.user()
    fields = {"username": user["username"], "password": PASSWORD}
    if content_type == "form":
        r = await client.post("/api/auth/login", data=fields)
    else:
        r = await client.post("/api/auth/login", data=f'{{"username": "{user["username"]}", "password": "{PASSWORD}"}}',
                              headers={"Content-Type": "text/plain"})
    assert r.status == 403
    assert await r.json() == {"code": 403, "msg": "Send this request as application/json.",
                              "data": {"reason": "csrf"}}
    assert (await client.get("/api/me")).status == 401


async def test_register_by_form_to_the_api_is_refused(client, ctx):
    name = unique("form")
    r = await client.post("/api/auth/register",
                          data={"username": name, "password": "s3cret-passw0rd", "email": f"{name}@example.com"})
    assert r.status == 403
    assert (await r.json())["data"] == {"reason": "csrf"}
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM users WHERE username = %s", (name,)) == 0


@pytest.mark.parametrize("path", ["/api/auth/reset-request", "/api/auth/reset"])
async def test_reset_calls_by_form_are_refused(client, path):
    r = await client.post(path, data={"username": "someone", "token": "x", "new_password": "whatever-123"})
    assert r.status == 403
    assert (await r.json())["data"] == {"reason": "csrf"}


@pytest.mark.parametrize("token", [None, "forged"])
async def test_page_login_form_without_its_token_is_refused(client, factory, token):
    user = await factory.user()
    await client.get("/login")  # an anonymous session with a token exists, but the form lacks it
    form = {"username": user["username"], "password": PASSWORD}
    if token:
        form["csrf_token"] = token
    r = await client.post("/login", data=form, allow_redirects=False)
    assert r.status == 403
    assert r.content_type == "text/html"
    assert "Missing or wrong CSRF token" in await r.text()
    assert (await client.get("/api/me")).status == 401


async def test_page_login_form_with_its_token_logs_in(client, factory):
    user = await factory.user()
    token = form_token(await (await client.get("/login")).text())
    r = await client.post("/login", data={"username": user["username"], "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False)
    assert r.status == 303, await r.text()
    assert r.headers["Location"] == "/"
    assert (await client.get("/api/me")).status == 200


async def test_page_logout_without_the_token_is_refused(user_client):
    client, user, headers = user_client
    r = await client.post("/logout", allow_redirects=False)
    assert r.status == 403
    assert (await client.get("/api/me")).status == 200
