"""Account pages: the forms render with their token, and register, log in, log out, change and reset work."""
from __future__ import annotations

import re

import pytest

from tests.support.auth import login
from tests.support.factory import PASSWORD, unique

FORM_TOKEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]*)">')
META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
TOKEN_IN_LINK = re.compile(r"/password/reset\?token=([A-Za-z0-9_\-]+)")


@pytest.fixture(autouse=True)
async def fresh_ip_counters(ctx):
    keys = [ctx.keys.login_fail_ip("127.0.0.1"), ctx.keys.reset_request_ip("127.0.0.1"),
            ctx.keys.register_ip("127.0.0.1")]
    await ctx.redis.delete(*keys)
    yield
    await ctx.redis.delete(*keys)


async def page(client, path: str) -> tuple[str, str]:
    """GET a page; returns its HTML and the form's CSRF token."""
    r = await client.get(path)
    assert r.status == 200, path
    html = await r.text()
    match = FORM_TOKEN.search(html)
    assert match and match.group(1), f"no CSRF token in the form of {path}"
    assert META_TOKEN.search(html).group(1) == match.group(1)
    return html, match.group(1)


async def post_form(client, path: str, csrf: str, **fields):
    return await client.post(path, data={**fields, "csrf_token": csrf}, allow_redirects=False)


@pytest.mark.parametrize("path, marker", [
    ("/login", 'action="/login"'), ("/register", 'action="/register"'),
    ("/password/forgot", 'action="/password/forgot"'), ("/password/reset?token=abc", 'name="token" value="abc"'),
])
async def test_account_pages_render_with_a_form_token(client, path, marker):
    html, token = await page(client, path)
    assert marker in html
    assert 'name="viewport"' in html


async def test_register_log_out_and_log_in_through_the_forms(client):
    name = unique("page")
    _, token = await page(client, "/register")
    r = await post_form(client, "/register", token, username=name, password="page-passw0rd",
                        password_confirm="page-passw0rd", email=f"{name}@example.com", phone="")
    assert r.status == 303, await r.text()
    assert r.headers["Location"] == "/"
    me = await client.get("/api/me")
    assert me.status == 200
    assert (await me.json())["data"]["user"]["username"] == name
    # the welcome message shows once on the next page, with the user's name in the navbar
    html = await (await client.get("/account/password")).text()
    assert "Your account is ready" in html
    assert f'<span data-testid="nav-username">{name}</span>' in html
    assert "Your account is ready" not in await (await client.get("/account/password")).text()
    # log out with the token from the page's meta tag
    meta = META_TOKEN.search(html).group(1)
    r = await client.post("/logout", data={"csrf_token": meta}, allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/"
    assert (await client.get("/api/me")).status == 401
    # and back in through the login form, landing on `next`
    _, token = await page(client, "/login?next=/account/password")
    r = await post_form(client, "/login", token, username=name, password="page-passw0rd", next="/account/password")
    assert r.status == 303
    assert r.headers["Location"] == "/account/password"
    assert (await client.get("/api/me")).status == 200


async def test_register_form_shows_field_errors_and_keeps_the_input(client):
    _, token = await page(client, "/register")
    r = await post_form(client, "/register", token, username="no spaces", password="short",
                        email="me@example.com")
    assert r.status == 400
    html = await r.text()
    assert 'value="no spaces"' in html and 'value="me@example.com"' in html
    assert "Use 3 to 32 letters, digits or underscores." in html
    assert "Must be 8 to 128 characters." in html
    assert 'value="short"' not in html  # a password is never echoed back
    assert (await client.get("/api/me")).status == 401


async def test_register_form_names_the_taken_field(client, factory):
    user = await factory.user()
    _, token = await page(client, "/register")
    r = await post_form(client, "/register", token, username=unique("page"), password="page-passw0rd",
                        password_confirm="page-passw0rd", email=user["email"])
    assert r.status == 409
    html = await r.text()
    # said once, beside the field, which points at it
    assert html.count("That email is already registered.") == 1
    assert '<div class="invalid-feedback" id="f-email-error">That email is already registered.</div>' in html
    assert re.search(r'id="f-email"[^>]*aria-invalid="true" aria-describedby="f-email-error"', html)
    assert 'data-testid="form-error"' not in html


async def test_register_form_checks_the_password_confirmation(client):
    name = unique("page")
    _, token = await page(client, "/register")
    r = await post_form(client, "/register", token, username=name, password="page-passw0rd",
                        password_confirm="page-passw0rd!", email=f"{name}@example.com")
    assert r.status == 400
    html = await r.text()
    assert '<div class="invalid-feedback" id="f-password_confirm-error">The passwords do not match.</div>' in html
    assert re.search(r'id="f-password_confirm"[^>]*aria-invalid="true"', html)
    assert html.count('aria-invalid="true"') == 1  # only the confirmation is wrong
    assert (await client.get("/api/me")).status == 401
    # the JSON API asks for no confirmation
    r = await client.post("/api/auth/register", json={"username": name, "password": "page-passw0rd",
                                                       "email": f"{name}@example.com"})
    assert r.status == 201, await r.text()


async def test_login_form_with_a_wrong_password(client, factory):
    user = await factory.user()
    _, token = await page(client, "/login")
    r = await post_form(client, "/login", token, username=user["username"], password="wrong-password")
    assert r.status == 401
    html = await r.text()
    assert "Wrong username or password." in html
    assert f'value="{user["username"]}"' in html
    assert (await client.get("/api/me")).status == 401


async def test_login_form_when_rate_limited_says_when_to_retry(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(login_fail_limit=1))
    user = await factory.user()
    _, token = await page(client, "/login")
    await post_form(client, "/login", token, username=user["username"], password="wrong-password")
    r = await post_form(client, "/login", token, username=user["username"], password=PASSWORD)
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "Too many attempts" in await r.text()


@pytest.mark.parametrize("next_url", ["//evil.example/", "https://evil.example/", "javascript:alert(1)",
                                      "/\\evil.example/", "/\t/evil.example/", "\\\\evil.example"])
async def test_login_never_redirects_off_site(client, factory, next_url):
    user = await factory.user()
    _, token = await page(client, "/login")
    r = await post_form(client, "/login", token, username=user["username"], password=PASSWORD, next=next_url)
    assert r.status == 303
    assert r.headers["Location"] == "/"


async def test_login_page_sends_a_logged_in_user_on(user_client):
    client, user, headers = user_client
    r = await client.get("/login?next=/account/password", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/account/password"


async def test_password_page_needs_a_login(client):
    r = await client.get("/account/password", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/login?next=/account/password"


async def test_change_password_through_the_form(client, aiohttp_client, factory):
    user = await factory.user()
    other = await aiohttp_client(client.server)
    await login(client, user["username"])
    await login(other, user["username"])
    _, token = await page(client, "/account/password")
    r = await post_form(client, "/account/password", token, old_password="wrong-password", new_password="form-new-pass")
    assert r.status == 400
    assert '<div class="invalid-feedback" id="f-old_password-error">The current password is wrong.</div>' in await r.text()
    r = await post_form(client, "/account/password", token, old_password=PASSWORD, new_password="form-new-pass")
    assert r.status == 303
    assert (await client.get("/api/me")).status == 200
    assert (await other.get("/api/me")).status == 401
    await login(other, user["username"], "form-new-pass")


async def test_forgot_and_reset_through_the_forms(client, ctx, factory):
    user = await factory.user()
    _, token = await page(client, "/password/forgot")
    r = await post_form(client, "/password/forgot", token, username=user["username"])
    assert r.status == 200
    assert 'data-testid="reset-sent"' in await r.text()
    link_token = TOKEN_IN_LINK.search(ctx.mailer.outbox[-1].body).group(1)
    # an unknown account gets the very same page, and no mail
    sent = len(ctx.mailer.outbox)
    r = await post_form(client, "/password/forgot", token, username=unique("ghost"))
    assert 'data-testid="reset-sent"' in await r.text()
    assert len(ctx.mailer.outbox) == sent
    html, token = await page(client, f"/password/reset?token={link_token}")
    assert f'name="token" value="{link_token}"' in html
    r = await post_form(client, "/password/reset", token, token=link_token, new_password="reset-by-form")
    assert r.status == 303
    assert r.headers["Location"] == "/login"
    await login(client, user["username"], "reset-by-form")


async def test_reset_form_with_a_bad_token(client):
    _, token = await page(client, "/password/reset?token=nope")
    r = await post_form(client, "/password/reset", token, token="nope", new_password="reset-by-form")
    assert r.status == 400
    assert "The reset link is invalid or has expired." in await r.text()
