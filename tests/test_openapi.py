"""GET /api/openapi.json: every JSON route of the router is in the document and nothing else is; its
structure; and the Body specs behind it are the very checks the routes run."""
from __future__ import annotations

import re

import pytest

from flashsale import openapi
from flashsale.services import seckill

METHODS = {"get", "post", "put", "delete", "patch"}
WEBSOCKETS = {("GET", "/api/seckill/{id}/live")}  # not JSON: a WebSocket


def json_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path template) of every /api/ route of the router; HEAD is aiohttp's twin of GET."""
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith("/api/") and route.method in {m.upper() for m in METHODS}:
            out.add((route.method, path))
    return out - WEBSOCKETS


def documented(doc) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


async def test_every_json_route_is_documented_and_nothing_else(client):
    r = await client.get("/api/openapi.json")
    assert r.status == 200 and r.content_type == "application/json"
    doc = await r.json()
    routes = json_routes(client.app)
    assert len(routes) > 40
    assert routes - documented(doc) == set(), "routes missing from the document"
    assert documented(doc) - routes == set(), "documented operations the router does not have"


async def test_the_document_is_built_once_and_served_as_is(client):
    first = await (await client.get("/api/openapi.json")).read()
    second = await (await client.get("/api/openapi.json")).read()
    assert first == second == openapi.document_bytes()
    assert openapi.document_bytes() is openapi.document_bytes()


def test_document_structure():
    doc = openapi.build()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["components"]["schemas"]
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/api/")
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            assert op["responses"], (method, path)
            for status, answer in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status), (method, path, status)
                schema = next(iter(answer["content"].values()))["schema"]
                if int(status) >= 400:
                    reasons = schema["properties"]["data"]["properties"]["reason"]["enum"]
                    assert reasons and all(isinstance(r, str) and r for r in reasons), (method, path, status)
                    assert schema["properties"]["code"]["const"] == int(status)
            ids = [p for p in op.get("parameters", []) if p["in"] == "path"]
            assert bool(ids) == ("{id}" in path)
            for p in ids:
                assert p["schema"] == {"type": "string", "pattern": "^[0-9]{1,18}$"}
    assert len(operation_ids) == len(set(operation_ids))
    links = [link["operationId"] for item in doc["paths"].values() for op in item.values()
             for answer in op["responses"].values() for link in answer.get("links", {}).values()]
    assert set(links) <= set(operation_ids), "a link to an operation that does not exist"


def test_contract_reasons_are_listed():
    """A few refusals from the contract, each on its route."""
    doc = openapi.build()

    def reasons(method, path, status):
        schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        return set(schema["properties"]["data"]["properties"]["reason"]["enum"])

    assert {"username_taken", "email_taken", "phone_taken"} <= reasons("post", "/api/auth/register", 409)
    assert {"sold_out", "already_purchased", "not_started", "ended"} <= reasons("post", "/api/seckill/{id}/purchase", 409)
    assert {"bad_status", "expired"} <= reasons("post", "/api/orders/{id}/pay", 409)
    assert {"has_orders", "last_admin", "self"} <= reasons("delete", "/api/admin/users/{id}", 409)
    assert "forbidden" in reasons("get", "/api/admin/stats", 403)
    assert "csrf" in reasons("post", "/api/orders", 403)
    assert "validation" in reasons("post", "/api/orders", 400)


def test_a_body_spec_is_both_the_check_and_the_schema():
    """The sale body's schema states the limits its check enforces (stock_shards 1-64 included)."""
    schema = seckill.SALE_BODY.schema()
    assert schema["required"] == ["goods_id", "price", "total_stock", "start_time", "end_time"]
    shards = schema["properties"]["stock_shards"]
    assert (shards["minimum"], shards["maximum"], shards["default"]) == (1, 64, 1)
    good = {"goods_id": 1, "price": "9.90", "total_stock": 5, "start_time": "2030-01-01T00:00:00Z",
            "end_time": "2030-01-02T00:00:00Z"}
    assert seckill.SALE_BODY.clean(good)["stock_shards"] == 1
    for bad in (0, 65, {"a": 1}, "NaN", True):
        with pytest.raises(Exception) as caught:
            seckill.SALE_BODY.clean({**good, "stock_shards": bad})
        assert caught.value.errors == {"stock_shards": "Must be a whole number." if bad in ({"a": 1}, "NaN", True)
                                       else "Must be between 1 and 64."}


async def test_a_refused_body_names_the_same_limit_over_http(user_client, factory):
    """What the document says of a field is what the route refuses."""
    client, _, headers = user_client
    goods_id = await factory.goods()
    doc = openapi.build()
    limit = doc["paths"]["/api/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]["quantity"]["maximum"]
    r = await client.post("/api/orders", json={"goods_id": goods_id, "quantity": limit + 1, "address_id": 1,
                                                "payment_method": "card"}, headers=headers)
    assert r.status == 400
    assert (await r.json())["data"]["errors"] == {"quantity": f"Must be between 1 and {limit}."}
