"""Property-based fuzzing of every JSON route: hostile bodies, query strings, headers and path ids.

Properties: never a 5xx; always the envelope {code, msg, data} with code == status; a 4xx names
data.reason; and a refusal changes nothing (row count of every table, and the Redis
keys of the world's users and sales).

Hypothesis draws the cases in a plain function (@given on a sync collector, derandomized, no
example database), and the async test sends them: deterministic, bounded, no event-loop games.
The holes of issue 11 are explicit cases in test_known_hole (all fixed now: each must answer as the
contract says). The random part stays out of a class only while it is named in KNOWN_HOLES (empty:
every class is fuzzed); a new hole is named there, with an xfail(strict) case, until it is fixed.
"""
from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.security_summary import STATS

# hole classes the random part avoids today (issue 11's fuzzer table); empty it as they close
KNOWN_HOLES: set[str] = set()  # all of issue 11's classes are closed: long_ids, unicode_digit_ids,
# far_dates, non_utf8_headers, unhashable_enums, money_exponent
CASES_PER_ROUTE = 20

# the fields each JSON route reads: body fields and query fields, by kind
ID, INT, MONEY, TEXT, ENUM, TIME, BOOL = "id", "int", "money", "text", "enum", "time", "bool"
ADDRESS = {"receiver_name": TEXT, "phone": TEXT, "province": TEXT, "city": TEXT, "district": TEXT,
           "detail_address": TEXT, "is_default": BOOL}
GOODS = {"name": TEXT, "description": TEXT, "price": MONEY, "original_price": MONEY, "stock": INT,
         "category_id": ID, "brand": TEXT, "model": TEXT, "weight": TEXT, "dimensions": TEXT,
         "material": TEXT, "warranty": TEXT}
SALE = {"goods_id": ID, "price": MONEY, "total_stock": INT, "per_user_limit": INT, "start_time": TIME,
        "end_time": TIME, "stock_shards": INT}
PAGES = {"page": INT, "per_page": INT}
ROUTES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "GET /api/time": ({}, {}),
    "GET /api/openapi.json": ({}, {}),
    "POST /api/auth/register": ({"username": TEXT, "password": TEXT, "email": TEXT, "phone": TEXT}, {}),
    "POST /api/auth/login": ({"username": TEXT, "password": TEXT}, {}),
    "POST /api/auth/logout": ({}, {}),
    "POST /api/auth/logout-all": ({}, {}),
    "GET /api/me": ({}, {}),
    "POST /api/me/password": ({"old_password": TEXT, "new_password": TEXT}, {}),
    "POST /api/auth/reset-request": ({"username": TEXT, "email": TEXT}, {}),
    "POST /api/auth/reset": ({"token": TEXT, "new_password": TEXT}, {}),
    "GET /api/admin/users": ({}, {"q": TEXT, **PAGES}),
    "GET /api/admin/users/{id}": ({}, {}),
    "PUT /api/admin/users/{id}": ({"role": ENUM, "is_active": BOOL, "email": TEXT, "phone": TEXT}, {}),
    "DELETE /api/admin/users/{id}": ({}, {}),
    "GET /api/addresses": ({}, {}),
    "POST /api/addresses": (ADDRESS, {}),
    "GET /api/addresses/{id}": ({}, {}),
    "PUT /api/addresses/{id}": (ADDRESS, {}),
    "DELETE /api/addresses/{id}": ({}, {}),
    "POST /api/addresses/{id}/default": ({}, {}),
    "POST /api/orders": ({"goods_id": ID, "quantity": INT, "address_id": ID, "payment_method": ENUM}, {}),
    "GET /api/orders": ({}, {"status": ENUM, **PAGES}),
    "GET /api/orders/{id}": ({}, {}),
    "POST /api/orders/{id}/pay": ({}, {}),
    "POST /api/orders/{id}/cancel": ({}, {}),
    "POST /api/orders/{id}/confirm": ({}, {}),
    "DELETE /api/orders/{id}": ({}, {}),
    "GET /api/categories": ({}, {}),
    "GET /api/goods": ({}, {"category_id": ID, "q": TEXT, "sort": ENUM, **PAGES}),
    "GET /api/goods/{id}": ({}, {}),
    "GET /api/admin/categories": ({}, {}),
    "POST /api/admin/categories": ({"name": TEXT, "description": TEXT}, {}),
    "PUT /api/admin/categories/{id}": ({"name": TEXT, "description": TEXT}, {}),
    "DELETE /api/admin/categories/{id}": ({}, {}),
    "GET /api/admin/goods": ({}, {"q": TEXT, "category_id": ID, **PAGES}),
    "GET /api/admin/goods/{id}": ({}, {}),
    "POST /api/admin/goods": (GOODS, {}),
    "PUT /api/admin/goods/{id}": (GOODS, {}),
    "DELETE /api/admin/goods/{id}": ({}, {}),
    "POST /api/admin/goods/{id}/photo": ({"photo": TEXT}, {}),
    "GET /api/seckill": ({}, {"state": ENUM, **PAGES}),
    "GET /api/seckill/{id}": ({}, {}),
    "POST /api/seckill/{id}/purchase": ({"address_id": ID, "payment_method": ENUM}, {}),
    "GET /api/seckill/{id}/result": ({}, {"wait_ms": INT}),
    "GET /api/seckill/{id}/live": ({}, {}),
    "GET /api/admin/seckill": ({}, {"state": ENUM, **PAGES}),
    "POST /api/admin/seckill": (SALE, {}),
    "GET /api/admin/seckill/{id}": ({}, {}),
    "PUT /api/admin/seckill/{id}": (SALE, {}),
    "POST /api/admin/seckill/{id}/cancel": ({}, {}),
    "GET /api/admin/orders": ({}, {"status": ENUM, "q": TEXT, "from": TIME, "to": TIME, **PAGES}),
    "GET /api/admin/orders/export.csv": ({}, {"status": ENUM, "q": TEXT, "from": TIME, "to": TIME}),
    "GET /api/admin/orders/{id}": ({}, {}),
    "POST /api/admin/orders/{id}/status": ({"status": ENUM, "remark": TEXT}, {}),
    "POST /api/admin/orders/{id}/remarks": ({"content": TEXT}, {}),
    "GET /api/admin/stats": ({}, {"days": INT}),
}
ENUMS = ["alipay", "wechat", "card", "user", "admin", "pending", "paid", "shipped", "completed", "cancelled",
         "live", "upcoming", "ended", "sales", "price", "new", ""]
PATH_OBJECT = {"addresses": "address", "orders": "order_pending", "users": "victim", "goods": "goods",
               "categories": "spare_category", "seckill": "upcoming_sale"}


# --- strategies ------------------------------------------------------------------------------------

def json_values(max_leaves: int = 10):
    leaves = (st.none() | st.booleans() | st.integers(-(10 ** 30), 10 ** 30)
              | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40))
    if "money_exponent" in KNOWN_HOLES:  # floats as money hit the hole: keep them small and plain
        leaves = (st.none() | st.booleans() | st.integers(-(10 ** 30), 10 ** 30)
                  | st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 2)) | st.text(max_size=40))
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=max_leaves)


def scalar_json():
    """Any JSON value that is not a list or an object (those hit unhashable_enums)."""
    return st.none() | st.booleans() | st.integers(-(10 ** 30), 10 ** 30) | st.text(max_size=40)


def field_value(kind: str):
    weird = json_values(6)
    if kind == ID:
        valid = st.integers(0, 10 ** 18 - 1) | st.integers(1, 50)
    elif kind == INT:
        valid = st.integers(-(2 ** 64), 2 ** 64) | st.integers(0, 100)
    elif kind == MONEY:
        valid = st.decimals(0, 10 ** 9, places=2).map(str) | st.sampled_from(["0.01", "-1", "1.001", "NaN", "Infinity"])
        if "money_exponent" in KNOWN_HOLES:
            valid = st.decimals(0, 10 ** 9, places=2).map(str) | st.sampled_from(["0.01", "-1", "1.001", "NaN"])
            weird = st.none() | st.booleans() | st.integers(-(10 ** 9), 10 ** 9) | st.text(alphabet="abc -.", max_size=10)
    elif kind == ENUM:
        valid = st.sampled_from(ENUMS)
        if "unhashable_enums" in KNOWN_HOLES:
            weird = scalar_json()
    elif kind == TIME:
        valid = st.datetimes().map(lambda d: d.isoformat() + "Z")
        if "far_dates" in KNOWN_HOLES:
            import datetime as dt
            valid = st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2200, 1, 1)).map(lambda d: d.isoformat() + "Z")
            weird = st.none() | st.booleans() | st.integers() | st.text(alphabet="0123456789-T:Z", max_size=25)
    elif kind == BOOL:
        valid = st.booleans()
    else:
        valid = st.text(max_size=80) | st.text(min_size=200, max_size=400)
    return valid | weird


def query_value(kind: str):
    if kind == TIME and "far_dates" in KNOWN_HOLES:
        import datetime as dt
        return st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2200, 1, 1)).map(lambda d: d.isoformat() + "Z") \
            | st.text(alphabet="0123456789-T:Z", max_size=25)
    if kind in (INT, ID):
        return st.integers(-(10 ** 20), 10 ** 20).map(str) | st.text(max_size=10)
    return st.text(max_size=30) | st.sampled_from(ENUMS)


def path_id():
    ids = st.integers(1, 60).map(str) | st.integers(0, 10 ** 18 - 1).map(str) | st.just("0")
    if "long_ids" not in KNOWN_HOLES:
        ids = ids | st.integers(10 ** 18, 10 ** 60).map(str) | st.just("9" * 5000)
    if "unicode_digit_ids" not in KNOWN_HOLES:
        ids = ids | st.text(alphabet="0123456789\u0663\u0967\uff13", min_size=1, max_size=5)
    return ids | st.none()  # None: the world's own object of that kind


def case_strategy(route: str):
    body_fields, query_fields = ROUTES[route]

    @st.composite
    def case(draw):
        body: Any
        shape = draw(st.sampled_from(["fields", "fields", "fields", "any", "deep", "garbage"]))
        if shape == "fields":
            chosen = draw(st.lists(st.sampled_from(sorted(body_fields) or ["x"]), unique=True, max_size=len(body_fields) or 1))
            body = {name: draw(field_value(body_fields.get(name, TEXT))) for name in chosen}
            body = json.dumps(body, allow_nan=True).encode()
        elif shape == "any":
            body = json.dumps(draw(json_values() if "unhashable_enums" not in KNOWN_HOLES or not body_fields
                                   else st.dictionaries(st.text(max_size=8), scalar_json(), max_size=4)),
                              allow_nan=True).encode()
        elif shape == "deep":
            depth = draw(st.integers(50, 5000))
            body = ("[" * depth + "]" * depth).encode() if draw(st.booleans()) else \
                ('{"a":' * depth + "1" + "}" * depth).encode()
        else:
            body = draw(st.binary(max_size=64))
        query = {k: draw(query_value(query_fields.get(k, TEXT)))
                 for k in draw(st.lists(st.sampled_from(sorted(query_fields) + ["page", "per_page", "zz"]),
                                        unique=True, max_size=4))}
        content_type = draw(st.sampled_from(["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded",
                                                                          "application/json; charset=latin-1"]))
        headers = {"Content-Type": content_type}
        token = draw(st.sampled_from(["own", "own", "own", "none", "other"]))
        if token == "other":
            headers["X-CSRF-Token"] = draw(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=50))
        return {"role": draw(st.sampled_from(["admin", "admin", "user", "other", "anonymous", "banned"])),
                "id": draw(path_id()), "query": query, "body": body, "headers": headers,
                "csrf": token == "own"}

    return case()


def draw_cases(route: str, n: int) -> list[dict[str, Any]]:
    """n cases for the route, the same on every run."""
    cases: list[dict[str, Any]] = []
    strategy = case_strategy(route)

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=["generate"])
    @given(strategy)
    def collect(case):
        cases.append(case)

    collect()
    return cases[:n]


# --- the properties --------------------------------------------------------------------------------

def json_routes(app) -> set[str]:
    return {f"{r.method} {r.resource.canonical}" for r in app.router.routes()
            if r.method != "HEAD" and r.resource.canonical.startswith("/api/")}


def test_every_json_route_is_fuzzed(client):
    assert sorted(json_routes(client.app) - ROUTES.keys()) == [], "JSON routes the fuzzer does not know"
    assert sorted(ROUTES.keys() - json_routes(client.app)) == [], "fuzzer rows for routes that are gone"


def state_keys(world) -> list[str]:
    keys = world.ctx.keys
    out = [keys.active_sales()] + [keys.user_auth(u["id"]) for u in world.users.values()]
    for name in ("upcoming_sale", "ended_sale"):
        sale = world._objects[name]
        out += [keys.sale_stock(sale), keys.sale_buyers(sale), keys.sale_stream(sale), keys.sale_results(sale),
                keys.sale_user_request(sale), keys.sale_dead(sale), keys.sale_stats(sale), keys.sale_released(sale)]
    return out


def diff(before, after) -> list[str]:
    return [k for part in (0, 1) for k in set(before[part]) | set(after[part])
            if before[part].get(k) != after[part].get(k)]


def check_envelope(status: int, content_type: str, raw: bytes) -> list[str]:
    problems = []
    if status >= 500:
        problems.append(f"status {status}")
    if content_type != "application/json":
        return problems + [f"not JSON: {content_type}"]
    try:
        body = json.loads(raw)
    except ValueError:
        return problems + ["unparsable JSON"]
    if not isinstance(body, dict) or set(body) != {"code", "msg", "data"} or body["code"] != status:
        problems.append(f"not the envelope: {raw[:200]!r}")
    elif 400 <= status < 500 and not (isinstance(body["data"], dict) and body["data"].get("reason")):
        problems.append(f"4xx without data.reason: {raw[:200]!r}")
    return problems


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_fuzz_route(world, snapshots, route):
    method, canonical = route.split(" ", 1)
    for name in ("address", "order_pending", "victim", "goods", "spare_category", "upcoming_sale", "ended_sale"):
        await world.get(name)
    snap = snapshots(world.ctx, state_keys(world))
    default_id = world._objects[PATH_OBJECT.get(canonical.split("/")[3 if canonical.startswith("/api/admin/") else 2],
                                                "goods")]
    if canonical.startswith("/api/seckill/{id}"):
        default_id = world._objects["ended_sale"]  # no purchase admitted: no order written behind our back
    problems = []
    current = None  # the state after the previous refusal is the state before this case
    for case in draw_cases(route, CASES_PER_ROUTE):
        path = canonical.replace("{id}", str(case["id"] if case["id"] is not None else default_id))
        if route == "POST /api/seckill/{id}/purchase" and case["id"] is not None:
            path = canonical.replace("{id}", str(world._objects["ended_sale"]))  # see above
        before = current if current is not None else await snap.take()
        current = None
        response = await world.call(method, path, case["role"], csrf=case["csrf"], headers=case["headers"],
                                    params=case["query"], data=case["body"])
        raw = await response.read()
        STATS["fuzz_cases"] += 1
        found = check_envelope(response.status, response.content_type, raw)
        if response.status == 200 and route == "GET /api/admin/orders/export.csv":
            found = [p for p in found if not p.startswith("not JSON")]
        if response.status == 200 and route == "GET /api/openapi.json":  # the document itself, not an envelope
            found = [p for p in found if not p.startswith("not the envelope")]
        if 400 <= response.status < 500:
            current = await snap.take()
            if current != before:
                found.append(f"a refusal changed the state: {diff(before, current)} -> {response.status} {raw[:120]!r}")
        if found:
            line = f"{method} {path[:80]} as {case['role']}: {found} (case {str(case)[:300]})"
            problems.append(line)
            if response.status >= 500:
                STATS["fuzz_5xx"].append(line)
    STATS["fuzz_routes"].add(route)
    assert problems == []


# --- issue 11's findings, one request each: the contract's answer (the last field: the hole it was) ----


LONG = "9" * 5000
PLAIN_LOGIN = b'{"username": "nobody", "password": "whatever1"}'
CUT_MULTIPART = (b"--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.png\"\r\n"
                 b"Content-Type: image/png\r\n\r\n\x89PNG\r\n")

# id, role, method, path ({name} = a world object), request kwargs or raw spec, expected (status, reason)
KNOWN = [
    ("csrf_non_utf8_json_route", "user", "POST", "/api/addresses", {"raw": {"X-CSRF-Token": b"\xff"}, "body": b"{}"},
     (403, "csrf"), "non_utf8_headers: X-CSRF-Token \\xff -> UnicodeEncodeError in csrf.py"),
    ("csrf_non_utf8_purchase", "user", "POST", "/api/seckill/{live_sale}/purchase",
     {"raw": {"X-CSRF-Token": b"\xff"}, "body": b'{"address_id": 1, "payment_method": "alipay"}'},
     (403, "csrf"), "non_utf8_headers: X-CSRF-Token \\xff -> UnicodeEncodeError in the purchase view"),
    ("orders_from_far_past", "admin", "GET", "/api/admin/orders?from=0001-01-01T00:00:00%2B01:00", {},
     (400, "validation"), "far_dates: OverflowError in jsonio.parse_time"),
    ("orders_to_far_future", "admin", "GET", "/api/admin/orders?to=9999-12-31", {},
     (400, "validation"), "far_dates: OverflowError in admin_orders._bound"),
    ("export_from_far_past", "admin", "GET", "/api/admin/orders/export.csv?from=0001-01-01T00:00:00%2B01:00", {},
     (400, "validation"), "far_dates: OverflowError in jsonio.parse_time"),
    ("sale_start_far_past", "admin", "POST", "/api/admin/seckill",
     {"json": {"goods_id": "{goods}", "price": "1.00", "total_stock": 1, "start_time": "0001-01-01T00:00:00+01:00",
               "end_time": "2100-01-01T00:00:00Z"}}, (400, "validation"), "far_dates: OverflowError in jsonio.parse_time"),
    ("order_id_5000_digits", "user", "GET", f"/api/orders/{LONG}", {}, (404, "not_found"),
     "long_ids: ValueError (int digit limit)"),
    ("address_id_5000_digits", "user", "PUT", f"/api/addresses/{LONG}", {"json": {}}, (404, "not_found"),
     "long_ids: ValueError (int digit limit)"),
    ("admin_sale_id_5000_digits", "admin", "GET", f"/api/admin/seckill/{LONG}", {}, (404, "not_found"), None),
    ("admin_user_id_5000_digits", "admin", "GET", f"/api/admin/users/{LONG}", {}, (404, "not_found"), None),
    ("admin_order_id_5000_digits", "admin", "GET", f"/api/admin/orders/{LONG}", {}, (404, "not_found"), None),
    ("goods_id_5000_digits", "anonymous", "GET", f"/api/goods/{LONG}", {}, (404, "not_found"), None),
    ("sale_id_5000_digits", "anonymous", "GET", f"/api/seckill/{LONG}", {}, (404, "not_found"), None),
    ("order_id_19_digits", "user", "GET", "/api/orders/9999999999999999999", {}, (404, "not_found"), None),
    ("goods_id_unicode_digit", "anonymous", "GET", "/api/goods/%D9%A3", {}, (404, "not_found"),
     "unicode_digit_ids: '\u0663' is an alias of id 3"),
    ("admin_user_id_unicode_digit", "admin", "GET", "/api/admin/users/%D9%A3", {}, (404, "not_found"),
     "unicode_digit_ids: '\u0663' is an alias of id 3"),
    ("login_gzip_plain_body", "anonymous", "POST", "/api/auth/login",
     {"raw": {"Content-Type": b"application/json", "Content-Encoding": b"gzip"}, "body": PLAIN_LOGIN},
     (400, None), "gzip_plain_body: RequestPayloadError in jsonio.read_json"),
    ("login_gzip_real_body", "anonymous", "POST", "/api/auth/login",
     {"raw": {"Content-Type": b"application/json", "Content-Encoding": b"gzip"}, "body": gzip.compress(PLAIN_LOGIN)},
     (401, "bad_credentials"), None),
    ("json_route_cut_multipart", "user", "POST", "/api/addresses",
     {"raw": {"Content-Type": b"multipart/form-data; boundary=b"}, "body": CUT_MULTIPART, "csrf": True},
     (400, None), "cut_multipart: ValueError on a JSON route"),
    ("photo_cut_multipart", "admin", "POST", "/api/admin/goods/{goods}/photo",
     {"raw": {"Content-Type": b"multipart/form-data; boundary=b"}, "body": CUT_MULTIPART, "csrf": True},
     (400, None), "cut_multipart: ValueError/InvalidHeader on the photo upload"),
    ("photo_no_boundary", "admin", "POST", "/api/admin/goods/{goods}/photo",
     {"raw": {"Content-Type": b"multipart/form-data"}, "body": b"--x\r\n\r\n", "csrf": True},
     (400, None), "cut_multipart: boundary-less multipart"),
    ("order_payment_method_list", "user", "POST", "/api/orders",
     {"json": {"goods_id": "{goods}", "quantity": 1, "address_id": "{address}", "payment_method": []}},
     (400, "validation"), "unhashable_enums: TypeError in validate.py"),
    ("purchase_payment_method_list", "user", "POST", "/api/seckill/{live_sale}/purchase",
     {"json": {"address_id": "{address}", "payment_method": []}}, (400, "validation"),
     "unhashable_enums: TypeError in the purchase view"),
    ("admin_status_dict", "admin", "POST", "/api/admin/orders/{order_pending}/status", {"json": {"status": {}}},
     (400, "validation"), "unhashable_enums: TypeError in validate.py"),
    ("admin_role_list", "admin", "PUT", "/api/admin/users/{victim}", {"json": {"role": []}},
     (400, "validation"), "unhashable_enums: TypeError in validate.py"),
    ("goods_price_1e30", "admin", "POST", "/api/admin/goods",
     {"json": {"name": "x", "category_id": "{category}", "price": "1e30", "stock": 1}}, (400, "validation"),
     "money_exponent: decimal.InvalidOperation in jsonio.parse_money"),
    ("sale_price_1e30", "admin", "POST", "/api/admin/seckill",
     {"json": {"goods_id": "{goods}", "price": "1e30", "total_stock": 1, "start_time": "2100-01-01T00:00:00Z",
               "end_time": "2100-01-02T00:00:00Z"}}, (400, "validation"),
     "money_exponent: decimal.InvalidOperation in jsonio.parse_money"),
    ("category_name_nul", "admin", "POST", "/api/admin/categories", {"json": {"name": "a\x00b"}},
     (400, "validation"), "nul_bytes: NUL bytes in names are stored"),
    ("goods_name_nul", "admin", "POST", "/api/admin/goods",
     {"json": {"name": "a\x00b", "category_id": "{category}", "price": "1.00", "stock": 1}}, (400, "validation"),
     "nul_bytes: NUL bytes in names are stored"),
    *[(f"sale_stock_shards_{label}", "admin", "POST", "/api/admin/seckill",
       {"json": {"goods_id": "{goods}", "price": "1.00", "total_stock": 1, "start_time": "2100-01-01T00:00:00Z",
                 "end_time": "2100-01-02T00:00:00Z", "stock_shards": value}}, (400, "validation"), None)
      for label, value in (("object", {"a": 1}), ("negative", -1), ("1e308", 1e308), ("nan_string", "NaN"))],
    ("deep_nesting_body", "user", "POST", "/api/addresses", {"body": b"[" * 100000 + b"]" * 100000},
     (400, None), None),
    ("huge_int_body", "user", "POST", "/api/orders", {"body": b'{"goods_id": ' + b"9" * 5000 + b"}"},
     (400, None), None),
]


def _fill(value, world):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in (
            "goods", "address", "category", "victim", "live_sale", "order_pending"):
        return world._objects[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("name,role,method,path,spec,expected",
                         [pytest.param(*case[:6], id=case[0]) for case in KNOWN])
async def test_known_hole(world, snapshots, raw, name, role, method, path, spec, expected):
    for obj in ("goods", "address", "category", "victim", "live_sale", "order_pending", "upcoming_sale", "ended_sale"):
        await world.get(obj)
    path = path.format(**world._objects)
    snap = snapshots(world.ctx, state_keys(world))
    before = await snap.take()
    STATS["known_hole_cases"] += 1
    if "raw" in spec:
        headers = {"Cookie": world.cookie.get(role, "")}
        if spec.get("csrf"):
            headers["X-CSRF-Token"] = world.csrf[role]
        headers.update(spec["raw"])
        status, payload = await raw(method, path, headers, spec["body"])
        content_type = "application/json" if payload.lstrip().startswith(b"{") else "?"
    else:
        kwargs = {"json": _fill(spec["json"], world)} if "json" in spec else {}
        if "body" in spec:
            kwargs = {"data": spec["body"], "headers": {"Content-Type": "application/json"}}
        response = await world.call(method, path, role, **kwargs)
        status, payload, content_type = response.status, await response.read(), response.content_type
    assert check_envelope(status, content_type, payload) == []
    body = json.loads(payload)
    assert status == expected[0], body
    if expected[1]:
        assert body["data"]["reason"] == expected[1]
    assert await snap.take() == before, "a refusal changed the state"
