"""Every failure answers in the contract's envelope under /api/, and as a page elsewhere."""
from __future__ import annotations

import re

from aiohttp import web
from yarl import URL

from tests.support.auth import login


async def test_anonymous_me_is_401(client):
    r = await client.get("/api/me")
    assert r.status == 401
    assert r.content_type == "application/json"
    assert await r.json() == {"code": 401, "msg": "Please log in.", "data": {"reason": "unauthenticated"}}


async def test_a_shopper_on_an_admin_route_is_403(user_client):
    client, user, headers = user_client
    r = await client.get("/api/admin/users")
    assert r.status == 403
    assert await r.json() == {"code": 403, "msg": "You may not do that.", "data": {"reason": "forbidden"}}


async def test_unknown_api_path_is_404(client):
    for method in ("GET", "POST"):
        r = await client.request(method, "/api/no/such/thing", json={})
        assert r.status == 404
        assert await r.json() == {"code": 404, "msg": "Not found.", "data": {"reason": "not_found"}}


async def test_unknown_page_is_a_404_page(client):
    r = await client.get("/no/such/page")
    assert r.status == 404
    assert r.content_type == "text/html"
    assert "FlashSale" in await r.text()


async def test_wrong_method_is_405_with_allow(client):
    r = await client.delete("/api/me")
    assert r.status == 405
    assert "GET" in r.headers["Allow"]
    assert await r.json() == {"code": 405, "msg": "Method not allowed.", "data": {"reason": "method_not_allowed"}}


async def test_body_over_the_limit_is_413(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(max_body_bytes=1024))
    r = await client.post("/api/auth/register", json={"username": "big", "password": "x" * 2000})
    assert r.status == 413
    assert await r.json() == {"code": 413, "msg": "The request body is too large.", "data": {"reason": "too_large"}}
    # just under the limit is read as usual
    r = await client.post("/api/auth/register", json={"username": "ok", "password": "x" * 900})
    assert r.status == 400


async def test_logged_in_body_over_the_limit_is_413(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(max_body_bytes=1024))
    user = await factory.user()
    token = await login(client, user["username"])
    r = await client.post("/api/me/password", json={"old_password": "x" * 2000, "new_password": "y"},
                          headers={"X-CSRF-Token": token})
    assert r.status == 413
    assert (await r.json())["data"] == {"reason": "too_large"}


async def test_page_form_over_the_limit_is_a_413_page(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(max_body_bytes=1024))
    r = await client.post("/login", data={"username": "x" * 2000, "password": "y"})
    assert r.status == 413
    assert r.content_type == "text/html"
    assert "too large" in await r.text()


async def test_malformed_json_is_a_validation_error(client):
    r = await client.post("/api/auth/login", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert await r.json() == {"code": 400, "msg": "Some fields are not valid.",
                              "data": {"reason": "validation", "errors": {"body": "Not valid JSON."}}}


def app_that_fails(make_app, exc: Exception) -> web.Application:
    async def boom(request: web.Request) -> web.Response:
        raise exc

    app = make_app()
    app.router.add_get("/api/test-boom", boom)
    app.router.add_get("/test-boom", boom)
    return app


async def test_unexpected_error_is_500_without_internals(aiohttp_client, make_app):
    client = await aiohttp_client(app_that_fails(make_app, RuntimeError("SELECT secret FROM users")))
    r = await client.get("/api/test-boom", headers={"X-Request-Id": "req-abc-123"})
    assert r.status == 500
    text = await r.text()
    assert "SELECT" not in text and "secret" not in text and "Traceback" not in text
    assert await r.json() == {"code": 500, "msg": "Something went wrong on our side (request req-abc-123).",
                              "data": {"reason": "internal", "request_id": "req-abc-123"}}
    page = await client.get("/test-boom")
    assert page.status == 500
    assert page.content_type == "text/html"
    html = await page.text()
    assert "SELECT" not in html and "Traceback" not in html
    assert re.search(r"<code>[0-9a-f]{16}</code>", html)


async def test_backend_outage_is_503_with_retry_after(aiohttp_client, make_app):
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = await aiohttp_client(app_that_fails(make_app, RedisConnectionError("redis at 10.0.0.9:6379 refused")))
    r = await client.get("/api/test-boom")
    assert r.status == 503
    assert r.headers["Retry-After"] == "1"
    assert await r.json() == {"code": 503, "msg": "The service is briefly unavailable; try again.",
                              "data": {"reason": "unavailable"}}
    page = await client.get("/test-boom")
    assert page.status == 503
    assert "10.0.0.9" not in await page.text()


async def test_anonymous_page_that_needs_a_login_redirects_to_login(client):
    r = await client.get("/account/password?x=1", allow_redirects=False)
    assert r.status == 303
    location = URL(r.headers["Location"])
    assert (location.path, dict(location.query)) == ("/login", {"next": "/account/password?x=1"})
    page = await client.get(str(location))
    assert '<input type="hidden" name="next" value="/account/password?x=1">' in await page.text()


async def test_a_json_body_is_read_whatever_the_spelling_of_its_media_type(client):
    """The exact `application/json` is taken as it is; any other spelling goes through aiohttp's parse."""
    body = b'{"username": "nobody_here", "password": "wrong-password"}'
    for content_type in ("application/json", "Application/JSON", "application/json; charset=utf-8"):
        r = await client.post("/api/auth/login", data=body, headers={"Content-Type": content_type})
        assert r.status == 401, (content_type, await r.text())
    r = await client.post("/api/auth/login", data=body, headers={"Content-Type": "text/plain"})
    assert r.status == 403, await r.text()  # a JSON-only route: a form could come from another site
    assert "application/json" in await r.text()
