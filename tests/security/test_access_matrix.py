"""Access control: every route of the router × anonymous, owner, another user, a banned user (their
session from before the ban), an admin; each with and without the session's CSRF token.

Each row of MATRIX names a route as the router does ("METHOD canonical path") and writes the
expected status of every cell: five columns in ROLES order (anonymous user other banned admin),
first with the CSRF token, then (after "|") without it; a GET row has one block for both. A JSON
refusal may name its reason: 403c = csrf, 403f = forbidden, 401u = unauthenticated, 404n = not_found.
A GET row covers its HEAD twin (same status, except that a page redirecting an anonymous GET to
/login answers an anonymous HEAD 401: the redirect is for GETs only). A route missing here, or a row whose route is gone, fails
test_every_route_has_a_row: a new route needs a row before it can be merged.

Cells run without-token first, then with the token, in ROLES order: the one cell that succeeds on
a one-shot route (owner or admin) comes after the cells that must be refused.

One app and one world serve the whole module (a module-scoped loop): before each row the world
makes its objects afresh, the banned user's one-use session anew, and every actor anew after a row
that logs them in or out or changes their password (or when a session is found gone).
"""
from __future__ import annotations

import io
import string
from typing import Any, Callable

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from flashsale.app import create_app
from flashsale.appkeys import CTX

from tests.support.factory import Factory

from tests.support.factory import PASSWORD
from tests.support.security import ROLES, World, iso, serial, utcnow
from tests.support.security_summary import STATS

pytestmark = pytest.mark.asyncio(loop_scope="module")

REASONS = {"c": "csrf", "f": "forbidden", "u": "unauthenticated", "n": "not_found"}

# --- patterns, columns: anonymous user other banned admin ---------------------------------------
PUBLIC = "200 200 200 200 200"
NOT_FOUND = "404 404 404 404 404"
API_USER = "401u 200 200 401u 200"
API_OWN = "401u 200 404n 401u 404n"
API_ADMIN = "401u 403f 403f 401u 200"
NO_TOKEN_API = "401u 403c 403c 401u 403c"
API_CREATE = f"401u 201 201 401u 201 | {NO_TOKEN_API}"
API_OWN_WRITE = f"401u 200 404n 401u 404n | {NO_TOKEN_API}"
API_ADMIN_WRITE = f"401u 403f 403f 401u 200 | {NO_TOKEN_API}"
API_ADMIN_CREATE = f"401u 403f 403f 401u 201 | {NO_TOKEN_API}"
PAGE_USER = "303 200 200 303 200"           # anonymous pages redirect to /login
PAGE_OWN = "303 200 404 303 404"
PAGE_ADMIN = "303 403 403 303 200"
NO_TOKEN_PAGE = "403 403 403 403 403"      # every page form needs the token, logged in or not
# a banned user's old session is dropped on its first use, and its form token with it: 403
PAGE_USER_POST = f"401 303 303 403 303 | {NO_TOKEN_PAGE}"
PAGE_OWN_POST = f"401 303 404 403 404 | {NO_TOKEN_PAGE}"
PAGE_ADMIN_POST = f"401 403 403 403 303 | {NO_TOKEN_PAGE}"


def js(body: dict[str, Any] | Callable[..., dict[str, Any]]):
    return lambda w, role: {"json": body(w, role) if callable(body) else dict(body)}


def form(body: dict[str, Any] | Callable[..., dict[str, Any]]):
    return lambda w, role: {"data": body(w, role) if callable(body) else dict(body)}


def png() -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def photo(w, role):
    from aiohttp import FormData
    data = FormData()
    data.add_field("photo", io.BytesIO(png()), filename="p.png", content_type="image/png")
    return {"data": data}


ADDRESS = {"receiver_name": "Matrix Receiver", "phone": "13800000000", "province": "Zhejiang",
           "city": "Hangzhou", "district": "Xihu", "detail_address": "2 Matrix Road"}
GOODS = {"name": "Matrix goods", "description": "d", "price": "9.90", "original_price": "19.90", "stock": 5}
NEW_PASSWORD = "another horse battery"


def sale_body(w, role):
    import datetime as dt

    start = utcnow() + dt.timedelta(hours=2)
    return {"goods_id": w._objects["goods"], "price": "5.00", "total_stock": 5, "per_user_limit": 1,
            "start_time": iso(start), "end_time": iso(start + dt.timedelta(hours=1))}


def order_body(w, role):
    return {"goods_id": w._objects["goods"], "quantity": 1, "address_id": w.addr.get(role, w.addr["user"]), "payment_method": "alipay"}


def fresh_user(w, role):
    name = serial("reg")
    return {"username": name, "password": PASSWORD, "email": f"{name}@example.com"}


# route -> (path with {object} fields, request kwargs, expectation)
MATRIX: dict[str, tuple[str, Any, str]] = {
    # operations and time
    "GET /metrics": ("/metrics", None, "200 200 200 200 200"),  # the test client is loopback
    "GET /healthz": ("/healthz", None, PUBLIC),
    "GET /readyz": ("/readyz", None, PUBLIC),
    "GET /api/time": ("/api/time", None, PUBLIC),
    "GET /api/openapi.json": ("/api/openapi.json", None, PUBLIC),
    # accounts (JSON)
    "POST /api/auth/register": ("/api/auth/register", js(fresh_user), "201 201 201 201 201 | 201 201 201 201 201"),
    "POST /api/auth/login": ("/api/auth/login", js(lambda w, r: {"username": w._objects["victim_name"],
                                                                 "password": PASSWORD}),
                             "200 200 200 200 200 | 200 200 200 200 200"),
    "POST /api/auth/logout": ("/api/auth/logout", None, "200 200 200 200 200 | 200 403c 403c 200 403c"),
    "POST /api/auth/logout-all": ("/api/auth/logout-all", None, f"401u 200 200 401u 200 | {NO_TOKEN_API}"),
    "GET /api/me": ("/api/me", None, API_USER),
    "POST /api/me/password": ("/api/me/password", js({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
                              f"401u 200 200 401u 200 | {NO_TOKEN_API}"),
    "POST /api/auth/reset-request": ("/api/auth/reset-request", js(lambda w, r: {"username": w._objects["victim_name"]}),
                                     "202 202 202 202 202 | 202 202 202 202 202"),
    "POST /api/auth/reset": ("/api/auth/reset", js({"token": "not-a-token", "new_password": NEW_PASSWORD}),
                             "400 400 400 400 400 | 400 400 400 400 400"),
    # admin users (JSON)
    "GET /api/admin/users": ("/api/admin/users", None, API_ADMIN),
    "GET /api/admin/users/{id}": ("/api/admin/users/{victim}", None, API_ADMIN),
    "PUT /api/admin/users/{id}": ("/api/admin/users/{victim}", js({"role": "admin"}), API_ADMIN_WRITE),
    "DELETE /api/admin/users/{id}": ("/api/admin/users/{victim}", None, API_ADMIN_WRITE),
    # addresses (JSON): own only, another user's id is 404
    "GET /api/addresses": ("/api/addresses", None, API_USER),
    "POST /api/addresses": ("/api/addresses", js(ADDRESS), API_CREATE),
    "GET /api/addresses/{id}": ("/api/addresses/{address}", None, API_OWN),
    "PUT /api/addresses/{id}": ("/api/addresses/{address}", js(ADDRESS), API_OWN_WRITE),
    "DELETE /api/addresses/{id}": ("/api/addresses/{address}", None, API_OWN_WRITE),
    "POST /api/addresses/{id}/default": ("/api/addresses/{address}/default", None, API_OWN_WRITE),
    # orders (JSON): own only
    "POST /api/orders": ("/api/orders", js(order_body), API_CREATE),
    "GET /api/orders": ("/api/orders", None, API_USER),
    "GET /api/orders/{id}": ("/api/orders/{order_pending}", None, API_OWN),
    "POST /api/orders/{id}/pay": ("/api/orders/{order_pending}/pay", None, API_OWN_WRITE),
    "POST /api/orders/{id}/cancel": ("/api/orders/{order_paid}/cancel", None, API_OWN_WRITE),
    "POST /api/orders/{id}/confirm": ("/api/orders/{order_shipped}/confirm", None, API_OWN_WRITE),
    "DELETE /api/orders/{id}": ("/api/orders/{order_cancelled}", None, API_OWN_WRITE),
    # catalog (JSON)
    "GET /api/categories": ("/api/categories", None, PUBLIC),
    "GET /api/goods": ("/api/goods", None, PUBLIC),
    "GET /api/goods/{id}": ("/api/goods/{goods}", None, PUBLIC),
    "GET /api/admin/categories": ("/api/admin/categories", None, API_ADMIN),
    "POST /api/admin/categories": ("/api/admin/categories", js(lambda w, r: {"name": serial("cat")}), API_ADMIN_CREATE),
    "PUT /api/admin/categories/{id}": ("/api/admin/categories/{category}", js(lambda w, r: {"name": serial("cat")}),
                                       API_ADMIN_WRITE),
    "DELETE /api/admin/categories/{id}": ("/api/admin/categories/{spare_category}", None, API_ADMIN_WRITE),
    "GET /api/admin/goods": ("/api/admin/goods", None, API_ADMIN),
    "GET /api/admin/goods/{id}": ("/api/admin/goods/{goods}", None, API_ADMIN),
    "POST /api/admin/goods": ("/api/admin/goods", js(lambda w, r: {**GOODS, "category_id": w._objects["category"]}),
                              API_ADMIN_CREATE),
    "PUT /api/admin/goods/{id}": ("/api/admin/goods/{goods}", js({"price": "8.80"}), API_ADMIN_WRITE),
    "DELETE /api/admin/goods/{id}": ("/api/admin/goods/{spare_goods}", None, API_ADMIN_WRITE),
    "POST /api/admin/goods/{id}/photo": ("/api/admin/goods/{goods}/photo", photo, API_ADMIN_WRITE),
    # flash sales (JSON)
    "GET /api/seckill": ("/api/seckill", None, PUBLIC),
    "GET /api/seckill/{id}": ("/api/seckill/{live_sale}", None, PUBLIC),
    "POST /api/seckill/{id}/purchase": ("/api/seckill/{live_sale}/purchase",
                                        js(lambda w, r: {"address_id": w.addr.get(r, w.addr["user"]), "payment_method": "alipay"}),
                                        "401u 202 202 401u 202 | 401u 403c 403c 403c 403c"),
    "GET /api/seckill/{id}/result": ("/api/seckill/{live_sale}/result", None, API_USER),
    "GET /api/seckill/{id}/live": ("/api/seckill/{live_sale}/live", None, "400 400 400 400 400"),  # not an upgrade
    "GET /api/admin/seckill": ("/api/admin/seckill", None, API_ADMIN),
    "POST /api/admin/seckill": ("/api/admin/seckill", js(sale_body), API_ADMIN_CREATE),
    "GET /api/admin/seckill/{id}": ("/api/admin/seckill/{upcoming_sale}", None, API_ADMIN),
    "PUT /api/admin/seckill/{id}": ("/api/admin/seckill/{upcoming_sale}", js({"price": "1.00"}), API_ADMIN_WRITE),
    "POST /api/admin/seckill/{id}/cancel": ("/api/admin/seckill/{upcoming_sale}/cancel", None, API_ADMIN_WRITE),
    # admin orders and stats (JSON)
    "GET /api/admin/orders": ("/api/admin/orders", None, API_ADMIN),
    "GET /api/admin/orders/export.csv": ("/api/admin/orders/export.csv", None, API_ADMIN),
    "GET /api/admin/orders/{id}": ("/api/admin/orders/{order_pending}", None, API_ADMIN),
    "POST /api/admin/orders/{id}/status": ("/api/admin/orders/{order_paid}/status", js({"status": "shipped"}),
                                           API_ADMIN_WRITE),
    "POST /api/admin/orders/{id}/remarks": ("/api/admin/orders/{order_pending}/remarks", js({"content": "checked"}),
                                            API_ADMIN_CREATE),
    "GET /api/admin/stats": ("/api/admin/stats", None, API_ADMIN),
    # account pages
    "GET /login": ("/login", None, "200 303 303 200 303"),  # logged in: on to `next`
    "POST /login": ("/login", form(lambda w, r: {"username": w._objects["victim_name"], "password": PASSWORD}),
                    f"303 303 303 403 303 | {NO_TOKEN_PAGE}"),
    "GET /register": ("/register", None, "200 200 200 200 200"),
    "POST /register": ("/register", form(lambda w, r: {**fresh_user(w, r), "password_confirm": PASSWORD}),
                       f"303 303 303 403 303 | {NO_TOKEN_PAGE}"),
    "POST /logout": ("/logout", None, f"303 303 303 403 303 | {NO_TOKEN_PAGE}"),
    "POST /account/logout-all": ("/account/logout-all", None, PAGE_USER_POST),
    "GET /account/password": ("/account/password", None, PAGE_USER),
    "POST /account/password": ("/account/password", form({"old_password": PASSWORD, "new_password": NEW_PASSWORD,
                                                           "new_password2": NEW_PASSWORD}), PAGE_USER_POST),
    "GET /password/forgot": ("/password/forgot", None, PUBLIC),
    "POST /password/forgot": ("/password/forgot", form(lambda w, r: {"username": w._objects["victim_name"]}),
                              f"200 200 200 403 200 | {NO_TOKEN_PAGE}"),
    "GET /password/reset": ("/password/reset?token=nope", None, PUBLIC),
    "POST /password/reset": ("/password/reset", form({"token": "nope", "new_password": NEW_PASSWORD,
                                                      "new_password2": NEW_PASSWORD}),
                             f"400 400 400 403 400 | {NO_TOKEN_PAGE}"),
    # address and order pages
    "GET /addresses": ("/addresses", None, PAGE_USER),
    "POST /addresses": ("/addresses", form(ADDRESS), PAGE_USER_POST),
    "GET /addresses/{id}/edit": ("/addresses/{address}/edit", None, PAGE_OWN),
    "POST /addresses/{id}": ("/addresses/{address}", form(ADDRESS), PAGE_OWN_POST),
    "POST /addresses/{id}/delete": ("/addresses/{address}/delete", None, PAGE_OWN_POST),
    "POST /addresses/{id}/default": ("/addresses/{address}/default", None, PAGE_OWN_POST),
    "GET /checkout/{goods_id}": ("/checkout/{goods}", None, PAGE_USER),
    "POST /checkout/{goods_id}": ("/checkout/{goods}", form(lambda w, r: {"address_id": str(w.addr.get(r, w.addr["user"])), "quantity": "1",
                                                                           "payment_method": "alipay"}),
                                  PAGE_USER_POST),
    "GET /orders": ("/orders", None, PAGE_USER),
    "GET /orders/{id}": ("/orders/{order_pending}", None, PAGE_OWN),
    "POST /orders/{id}/{action}": ("/orders/{order_pending}/pay", None, PAGE_OWN_POST),
    # shop pages
    "GET /": ("/", None, PUBLIC),
    "GET /categories": ("/categories", None, PUBLIC),
    "GET /goods/{id}": ("/goods/{goods}", None, PUBLIC),
    "GET /seckill": ("/seckill", None, PUBLIC),
    "GET /seckill/{id}": ("/seckill/{live_sale}", None, PUBLIC),
    # admin pages
    "GET /admin": ("/admin", None, PAGE_ADMIN),
    "GET /admin/orders": ("/admin/orders", None, PAGE_ADMIN),
    "GET /admin/orders/{id}": ("/admin/orders/{order_pending}", None, PAGE_ADMIN),
    "POST /admin/orders/{id}/status": ("/admin/orders/{order_paid}/status", form({"status": "shipped"}),
                                       PAGE_ADMIN_POST),
    "POST /admin/orders/{id}/remarks": ("/admin/orders/{order_pending}/remarks", form({"content": "checked"}),
                                        PAGE_ADMIN_POST),
    "GET /admin/categories": ("/admin/categories", None, PAGE_ADMIN),
    "POST /admin/categories": ("/admin/categories", form(lambda w, r: {"name": serial("cat")}), PAGE_ADMIN_POST),
    "POST /admin/categories/{id}": ("/admin/categories/{category}", form(lambda w, r: {"name": serial("cat")}),
                                    PAGE_ADMIN_POST),
    "POST /admin/categories/{id}/delete": ("/admin/categories/{spare_category}/delete", None, PAGE_ADMIN_POST),
    "GET /admin/goods": ("/admin/goods", None, PAGE_ADMIN),
    "GET /admin/goods/new": ("/admin/goods/new", None, PAGE_ADMIN),
    "POST /admin/goods": ("/admin/goods", form(lambda w, r: {**GOODS, "category_id": str(w._objects["category"])}),
                          PAGE_ADMIN_POST),
    "GET /admin/goods/{id}": ("/admin/goods/{goods}", None, PAGE_ADMIN),
    "POST /admin/goods/{id}": ("/admin/goods/{goods}", form(lambda w, r: {**GOODS, "category_id": str(w._objects["category"])}),
                               PAGE_ADMIN_POST),
    "POST /admin/goods/{id}/photo": ("/admin/goods/{goods}/photo", photo, PAGE_ADMIN_POST),
    "POST /admin/goods/{id}/delete": ("/admin/goods/{spare_goods}/delete", None, PAGE_ADMIN_POST),
    "GET /admin/seckill": ("/admin/seckill", None, PAGE_ADMIN),
    "GET /admin/seckill/new": ("/admin/seckill/new", None, PAGE_ADMIN),
    "POST /admin/seckill": ("/admin/seckill", form(sale_body), PAGE_ADMIN_POST),
    "GET /admin/seckill/{id}": ("/admin/seckill/{upcoming_sale}", None, PAGE_ADMIN),
    "POST /admin/seckill/{id}": ("/admin/seckill/{upcoming_sale}", form({"price": "1.00"}), PAGE_ADMIN_POST),
    "POST /admin/seckill/{id}/cancel": ("/admin/seckill/{upcoming_sale}/cancel", None, PAGE_ADMIN_POST),
    "GET /admin/users": ("/admin/users", None, PAGE_ADMIN),
    "POST /admin/users/{id}": ("/admin/users/{victim}", form({"role": "admin"}), PAGE_ADMIN_POST),
    "POST /admin/users/{id}/delete": ("/admin/users/{victim}/delete", None, PAGE_ADMIN_POST),
    # static files
    "GET /static": ("/static/css/app.css", None, PUBLIC),
    "GET /static/uploads": ("/static/uploads/missing.png", None, NOT_FOUND),
}

# objects a body refers to without naming them in the path
BODY_NEEDS = {"POST /api/orders": ("goods",), "POST /checkout/{goods_id}": ("goods",),
              "POST /api/admin/goods": ("category",), "POST /admin/goods": ("category",),
              "POST /admin/goods/{id}": ("category",), "POST /api/admin/seckill": ("goods",),
              "POST /admin/seckill": ("goods",)}

# rows whose per-address rate limit would otherwise refuse later cells of this run
RATE_LIMITED = {"POST /api/auth/reset-request": lambda keys: keys.reset_request_ip("127.0.0.1"),
                "POST /password/forgot": lambda keys: keys.reset_request_ip("127.0.0.1")}

# rows whose cells log the actors in or out or change their passwords: every actor is made anew after them
SPENDS_ACTORS = {"POST /api/auth/login", "POST /api/auth/logout", "POST /api/auth/logout-all", "POST /api/me/password",
                 "POST /login", "POST /logout", "POST /account/logout-all", "POST /account/password",
                 "POST /register", "POST /api/auth/register"}

# cells known wrong today: {(route, role, token?)}: each is xfailed with the hole it shows
KNOWN_WRONG: dict[str, str] = {}


def parse(expectation: str) -> dict[bool, list[str]]:
    blocks = [b.split() for b in expectation.split("|")]
    assert all(len(b) == len(ROLES) for b in blocks), expectation
    return {True: blocks[0], False: blocks[-1]}


def route_keys(app) -> set[str]:
    return {f"{r.method} {r.resource.canonical}" for r in app.router.routes() if r.method != "HEAD"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(migrated_db):
    """One app and its world for every row; `spent` says whether the last row used up the actors."""
    app = create_app(migrated_db)
    async with TestClient(TestServer(app)) as client:
        world = await World(client, Factory(app[CTX]), app[CTX]).build()
        yield {"world": world, "fresh": True, "spent": False}


@pytest_asyncio.fixture(loop_scope="module")
async def world(matrix):
    """The module's world, renewed for this row (see the module's docstring)."""
    if not matrix["fresh"]:
        await matrix["world"].renew(actors=matrix["spent"])
    matrix["fresh"], matrix["spent"] = False, True  # a row that fails half-way may have spent them
    yield matrix["world"]


async def test_every_route_has_a_row(matrix):
    """The router is the list: a new route fails here until MATRIX says who may call it."""
    app = matrix["world"].client.app
    routes = route_keys(app)
    heads = {f"{r.method} {r.resource.canonical}" for r in app.router.routes() if r.method == "HEAD"}
    assert sorted(routes - MATRIX.keys()) == [], "routes without an access-matrix row"
    assert sorted(MATRIX.keys() - routes) == [], "matrix rows for routes the router does not have"
    assert {h.replace("HEAD ", "GET ", 1) for h in heads} <= routes, "a HEAD route without its GET"


def _params():
    out = []
    for key in MATRIX:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[key])] if key in KNOWN_WRONG else []
        out.append(pytest.param(key, id=key, marks=marks))
    return out


def _check(expected: str, response, body: Any) -> bool:
    status = int(expected.rstrip(string.ascii_letters))
    if response.status != status:
        return False
    letter = expected[len(str(status)):]
    if letter:
        return isinstance(body, dict) and (body.get("data") or {}).get("reason") == REASONS[letter]
    return True


@pytest.mark.parametrize("route", _params())
async def test_access_matrix_row(matrix, world, route):
    method, canonical = route.split(" ", 1)
    template, make_kwargs, expectation = MATRIX[route]
    expected = parse(expectation)
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    if route.startswith(("POST /api/auth/login", "POST /login", "POST /api/auth/reset-request",
                         "POST /password/forgot")):
        w_victim = await world.factory.user()
        world._objects["victim_name"] = w_victim["username"]
    await world.fields(fields + list(BODY_NEEDS.get(route, ())))
    path = template.format(**world._objects)
    methods = [method, "HEAD"] if method == "GET" else [method]
    wrong = []
    for with_token in (False, True):
        for index, role in enumerate(ROLES):
            for verb in methods:
                kwargs = make_kwargs(world, role) if make_kwargs else {}
                response = await world.call(verb, path, role, csrf=with_token, **kwargs)
                body = None
                if response.content_type == "application/json" and verb != "HEAD":
                    body = await response.json()
                want = expected[with_token][index]
                if verb == "HEAD":
                    want = want.rstrip(string.ascii_letters)
                    if want == "303" and role in ("anonymous", "banned"):
                        want = "401"
                if route in RATE_LIMITED:  # one client address for the whole run: start each cell afresh
                    await world.ctx.redis.delete(RATE_LIMITED[route](world.ctx.keys))
                STATS["matrix_cells"] += 1
                if not _check(want, response, body):
                    wrong.append(f"{verb} {path} as {role} {'with' if with_token else 'without'} token: "
                                 f"expected {want}, got {response.status} "
                                 f"{(body or {}).get('data') if isinstance(body, dict) else ''}")
    STATS["matrix_routes"].add(route)
    STATS["matrix_wrong"].extend(wrong)
    matrix["spent"] = route in SPENDS_ACTORS
    assert wrong == []
