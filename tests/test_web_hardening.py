"""Security headers, templates without inline script, one safe-redirect rule, reset links that never
take their host from the request, and /metrics for loopback or a bearer token only."""
from __future__ import annotations

import re
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from flashsale.appkeys import CTX
from flashsale.errors import Forbidden, Unauthenticated
from flashsale.metrics import check_metrics_access
from flashsale.redirects import safe_next
from flashsale.security_headers import CONTENT_SECURITY_POLICY
from flashsale.settings import ROOT


TOKEN_IN_LINK = re.compile(r"(\S+)/password/reset\?token=")


# --- headers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/login", "/seckill", "/no-such-page", "/api/goods", "/api/nothing",
                                  "/healthz", "/metrics", "/static/img/placeholder.svg"])
async def test_every_answer_carries_nosniff_and_a_referrer_policy(client, path):
    r = await client.get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/seckill", "/no-such-page", "/orders"])
async def test_pages_carry_a_csp_without_inline_script_and_no_framing(client, path):
    r = await client.get(path)
    assert r.content_type == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert r.headers["X-Frame-Options"] == "DENY"


async def test_the_purchase_answer_and_json_errors_carry_the_headers(user_client):
    client, _, headers = user_client
    r = await client.post("/api/seckill/999999/purchase", json={}, headers=headers)
    assert r.status in (400, 404) and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in r.headers  # JSON: no page to protect


def test_no_template_has_inline_script_style_or_an_event_handler_attribute():
    """The policy allows neither inline script nor inline style: a data block (application/json) is fine."""
    inline_script = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        found += [f"{path.name}: {m.group(0)}" for m in inline_script.finditer(text)]
        found += [f"{path.name}: {m.group(0)}" for m in handler.finditer(text)]
        found += [f"{path.name}: javascript: URL" for _ in re.finditer(r"javascript:", text, re.I)]
        found += [f"{path.name}: {m.group(0)}" for m in re.finditer(r"<[a-z][^>]*\sstyle\s*=", text, re.I)]
        found += [f"{path.name}: <style>" for _ in re.finditer(r"<style\b", text, re.I)]
    assert not found, found


# --- one safe-redirect rule --------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["javascript:alert(1)", "//evil.example", "/\\evil.example", "\\\\evil.example",
                                 "https://evil.example/", "/\t/evil.example", "/ok\nx", "evil", "", None, 5,
                                 "/%0a" + "x" * 3000, "java\tscript:alert(1)"])
def test_safe_next_refuses_other_sites_and_scripts(raw):
    assert safe_next(raw) == "/"
    assert safe_next(raw, default="") == ""


@pytest.mark.parametrize("raw", ["/", "/checkout/1?quantity=2", "/orders#top", "/a/b?next=//x"])
def test_safe_next_keeps_same_site_paths(raw):
    assert safe_next(raw) == raw


@pytest.mark.parametrize("bad", ["javascript:alert(document.cookie)", "//evil.example/", "/\\evil.example"])
async def test_the_address_pages_never_write_an_unsafe_next(user_client, factory, bad):
    client, _, headers = user_client
    html = await (await client.get("/addresses", params={"next": bad})).text()
    assert bad not in html and "Back to checkout" not in html
    # the form's error page writes next back into the page: checked too
    token = headers["X-CSRF-Token"]
    r = await client.post("/addresses", data={"csrf_token": token, "next": bad, "receiver_name": ""})
    assert r.status == 400
    html = await r.text()
    assert "javascript:" not in html and 'value="//evil' not in html and 'href="//evil' not in html


async def test_the_address_page_links_back_to_a_safe_next(user_client):
    client, _, _ = user_client
    html = await (await client.get("/addresses", params={"next": "/checkout/7?quantity=2"})).text()
    assert 'href="/checkout/7?quantity=2"' in html


# --- reset links -------------------------------------------------------------------------------

async def test_reset_link_ignores_a_forged_host_when_no_public_url_is_set(aiohttp_client, make_app, ctx, factory):
    client = await aiohttp_client(make_app(public_url="", host="127.0.0.1", port=8123))
    user = await factory.user()
    outbox = client.app[CTX].mailer.outbox
    r = await client.post("/api/auth/reset-request", json={"username": user["username"]},
                          headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert r.status == 202
    assert TOKEN_IN_LINK.search(outbox[-1].body).group(1) == "http://127.0.0.1:8123"
    assert "evil.example" not in outbox[-1].body


async def test_reset_link_uses_the_public_url_when_set(aiohttp_client, make_app, factory):
    client = await aiohttp_client(make_app(public_url="https://shop.example/"))
    user = await factory.user()
    await client.post("/password/forgot", data={"username": user["username"]}, headers={"Host": "evil.example"})
    await client.post("/api/auth/reset-request", json={"username": user["username"]},
                      headers={"Host": "evil.example"})
    bodies = [m.body for m in client.app[CTX].mailer.outbox]
    assert bodies and all(TOKEN_IN_LINK.search(b).group(1) == "https://shop.example" for b in bodies)


# --- /metrics ----------------------------------------------------------------------------------

def metrics_request(remote: str, authorization: str | None = None):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (remote, 4444) if name == "peername" else default
    headers = {"Authorization": authorization} if authorization else {}
    return make_mocked_request("GET", "/metrics", headers=headers, transport=transport)


def test_metrics_answers_loopback_clients():
    for remote in ("127.0.0.1", "::1", "127.8.9.10"):
        check_metrics_access(metrics_request(remote), "")
        check_metrics_access(metrics_request(remote), "s3cret")


def test_metrics_refuses_other_clients_without_a_token():
    with pytest.raises(Forbidden):
        check_metrics_access(metrics_request("203.0.113.7"), "")
    with pytest.raises(Forbidden):  # a bearer header means nothing while no token is set
        check_metrics_access(metrics_request("203.0.113.7", "Bearer "), "")


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic s3cret", "Bearer s3cre"])
def test_metrics_with_a_token_set_needs_that_token(header):
    with pytest.raises(Unauthenticated) as refused:
        check_metrics_access(metrics_request("203.0.113.7", header), "s3cret")
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}


def test_metrics_with_the_right_token_answers_anyone():
    check_metrics_access(metrics_request("203.0.113.7", "Bearer s3cret"), "s3cret")
    check_metrics_access(metrics_request("203.0.113.7", "bearer  s3cret"), "s3cret")


async def test_metrics_is_served_to_the_local_test_client(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(metrics_token="s3cret"))
    r = await client.get("/metrics")
    assert r.status == 200 and "flashsale_" in await r.text()
