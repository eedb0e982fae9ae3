"""The OpenAPI 3.1 document of every JSON route (/api/openapi.json), built from the services' Body specs.

Each route is one `Op`: who may call it, its Body and query, its answer's data and the refusals'
reasons. tests/test_openapi.py holds the list to the router's, both ways."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flashsale.bodies import Body
from flashsale.jsonio import dumps
from flashsale.openapi_schemas import INT, SCHEMAS, STR, TIME, array, obj, page_of, ref, wrap
from flashsale.sessions import SESSION_COOKIE
from flashsale.services import accounts, addresses, admin_orders, admin_stats, catalog, catalog_admin
from flashsale.services import orders, seckill
from flashsale.validate import MAX_PER_PAGE

MAX_PATH_ID = 18  # digits

# --- parameters ----------------------------------------------------------------------------------

PATH_ID = {"name": "id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": f"^[0-9]{{1,{MAX_PATH_ID}}}$"},
           "description": f"At most {MAX_PATH_ID} ASCII digits; longer is 404."}
PAGE = [{"name": "page", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}},
        {"name": "per_page", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 20}}]


def q_param(max_len: int, doc: str = "") -> dict[str, Any]:
    return {"name": "q", "in": "query", "required": False, "description": doc or f"Cut to {max_len} characters.",
            "schema": {"type": "string", "maxLength": max_len}}


def choice_param(name: str, options: list[str]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string", "enum": options}}


ORDER_FILTERS = [
    choice_param("status", ["all", *orders.STATUSES]), q_param(admin_orders.MAX_QUERY_LEN, "Order number or username."),
    *({"name": name, "in": "query", "required": False, "description": "A date (2026-11-24, whole UTC day) or an ISO time.",
       "schema": {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}} for name in ("from", "to")),
]

# --- operations ----------------------------------------------------------------------------------

PUBLIC, USER, ADMIN = "public", "user", "admin"


@dataclass
class Op:
    method: str
    path: str
    operation_id: str
    summary: str
    auth: str = PUBLIC
    body: Body | None = None
    query: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    data: dict[str, Any] | None = None  # None: data is null
    reasons: dict[int, list[str]] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    content_type: str = "application/json"

    @property
    def has_id(self) -> bool:
        return "{id}" in self.path


def link(operation_id: str, *, id_from: str | None = "$response.body#/data/id",
         body: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": operation_id}
    if id_from:
        out["parameters"] = {"path.id": id_from}
    if body:
        out["requestBody"] = body
    return out


ADDRESS_LINKS = {"GetAddress": link("getAddress", id_from="$response.body#/data/address/id"),
                 "UpdateAddress": link("updateAddress", id_from="$response.body#/data/address/id"),
                 "SetDefaultAddress": link("setDefaultAddress", id_from="$response.body#/data/address/id"),
                 "PlaceOrder": link("placeOrder", id_from=None,
                                    body={"address_id": "$response.body#/data/address/id"})}
ORDER_LINKS = {name: link(op, id_from="$response.body#/data/order/id") for name, op in (
    ("GetOrder", "getOrder"), ("PayOrder", "payOrder"), ("CancelOrder", "cancelOrder"),
    ("ConfirmOrder", "confirmOrder"), ("AdminGetOrder", "adminGetOrder"), ("AdminSetOrderStatus", "adminSetOrderStatus"))}
PAID_LINKS = {name: link(op, id_from="$response.body#/data/order/id") for name, op in (
    ("ConfirmOrder", "confirmOrder"), ("CancelOrder", "cancelOrder"), ("AdminSetOrderStatus", "adminSetOrderStatus"))}
CATEGORY_LINKS = {"UpdateCategory": link("adminUpdateCategory", id_from="$response.body#/data/category/id"),
                  "CreateGoods": link("adminCreateGoods", id_from=None,
                                      body={"category_id": "$response.body#/data/category/id"})}
GOODS_LINKS = {"GetGoods": link("getGoods", id_from="$response.body#/data/goods/id"),
               "AdminGetGoods": link("adminGetGoods", id_from="$response.body#/data/goods/id"),
               "UpdateGoods": link("adminUpdateGoods", id_from="$response.body#/data/goods/id"),
               "CreateSale": link("adminCreateSale", id_from=None,
                                  body={"goods_id": "$response.body#/data/goods/id"})}
SALE_LINKS = {"GetSale": link("getSale"), "AdminGetSale": link("adminGetSale"),
              "UpdateSale": link("adminUpdateSale"), "SaleResult": link("saleResult")}

OPS: list[Op] = [
    # operations
    Op("get", "/api/time", "serverTime", "The server clock", data=wrap(server_time=TIME)),
    Op("get", "/api/openapi.json", "openapi", "This document", data=None, content_type="application/json"),
    # accounts
    Op("post", "/api/auth/register", "register", "Make an account", body=accounts.REGISTER_BODY, status=201,
       data=wrap(user=ref("User")),
       reasons={409: ["username_taken", "email_taken", "phone_taken"], 429: ["rate_limited"]},
       links={"Login": link("login", id_from=None, body={"username": "$request.body#/username",
                                                         "password": "$request.body#/password"})}),
    Op("post", "/api/auth/login", "login", "Log in: a new session", body=accounts.LOGIN_BODY,
       data=wrap(user=ref("User"), csrf_token=STR),
       reasons={401: ["bad_credentials"], 403: ["banned"], 429: ["rate_limited"]}),
    Op("post", "/api/auth/logout", "logout", "End this session"),
    Op("post", "/api/auth/logout-all", "logoutAll", "End every session of the user, this one included",
       auth=USER),
    Op("get", "/api/me", "me", "Who is logged in", auth=USER, data=wrap(user=ref("User"), csrf_token=STR)),
    Op("post", "/api/me/password", "changePassword", "Change the password; other sessions end", auth=USER,
       body=accounts.PASSWORD_BODY, data=wrap(csrf_token=STR), reasons={400: ["bad_credentials"]}),
    Op("post", "/api/auth/reset-request", "resetRequest", "Mail a reset link when the account exists",
       body=accounts.RESET_REQUEST_BODY, status=202, reasons={429: ["rate_limited"]}),
    Op("post", "/api/auth/reset", "reset", "Set a new password with a reset token", body=accounts.RESET_BODY,
       reasons={400: ["invalid_token"]}),
    # catalog
    Op("get", "/api/categories", "listCategories", "Categories", data=wrap(items=array(ref("Category")))),
    Op("get", "/api/goods", "listGoods", "Goods, paginated", data=page_of("GoodsSummary"),
       query=[*catalog.GOODS_QUERY.parameters(), q_param(catalog.MAX_QUERY_LEN), *PAGE]),
    Op("get", "/api/goods/{id}", "getGoods", "One goods with related goods and its flash sale",
       data=ref("GoodsDetail")),
    # addresses
    Op("get", "/api/addresses", "listAddresses", "The user's addresses", auth=USER,
       data=wrap(items=array(ref("Address")))),
    Op("post", "/api/addresses", "createAddress", "Add an address", auth=USER, body=addresses.ADDRESS_BODY,
       status=201, data=wrap(address=ref("Address")), reasons={409: ["limit_reached"]}, links=ADDRESS_LINKS),
    Op("get", "/api/addresses/{id}", "getAddress", "One own address", auth=USER, data=wrap(address=ref("Address"))),
    Op("put", "/api/addresses/{id}", "updateAddress", "Change an own address", auth=USER,
       body=addresses.ADDRESS_BODY, data=wrap(address=ref("Address"))),
    Op("delete", "/api/addresses/{id}", "deleteAddress", "Delete an own address", auth=USER),
    Op("post", "/api/addresses/{id}/default", "setDefaultAddress", "Make an own address the default", auth=USER,
       data=wrap(address=ref("Address"))),
    # orders
    Op("post", "/api/orders", "placeOrder", "Order goods", auth=USER, body=orders.ORDER_BODY, status=201,
       data=wrap(order=ref("Order")), reasons={409: ["out_of_stock"]}, links=ORDER_LINKS),
    Op("get", "/api/orders", "listOrders", "The user's orders, paginated", auth=USER, data=page_of("Order"),
       query=[choice_param("status", ["all", *orders.STATUSES]), *PAGE]),
    Op("get", "/api/orders/{id}", "getOrder", "One own order with its log", auth=USER,
       data=wrap(order=ref("OrderDetail"))),
    Op("post", "/api/orders/{id}/pay", "payOrder", "Pay a pending order", auth=USER, data=wrap(order=ref("Order")),
       reasons={409: ["bad_status", "expired"]}, links=PAID_LINKS),
    Op("post", "/api/orders/{id}/cancel", "cancelOrder", "Cancel a pending or paid order", auth=USER,
       data=wrap(order=ref("Order")), reasons={409: ["bad_status"]},
       links={"DeleteOrder": link("deleteOrder", id_from="$response.body#/data/order/id")}),
    Op("post", "/api/orders/{id}/confirm", "confirmOrder", "Confirm a shipped order", auth=USER,
       data=wrap(order=ref("Order")), reasons={409: ["bad_status"]}),
    Op("delete", "/api/orders/{id}", "deleteOrder", "Hide a cancelled or completed order", auth=USER,
       reasons={409: ["bad_status"]}),
    # flash sales
    Op("get", "/api/seckill", "listSales", "Flash sales: live, then upcoming, then ended", data=page_of("Sale"),
       query=[choice_param("state", ["live", "upcoming", "ended"]), *PAGE]),
    Op("get", "/api/seckill/{id}", "getSale", "One flash sale and the server clock",
       data={"allOf": [ref("Sale"), obj(server_time=TIME)]}),
    Op("post", "/api/seckill/{id}/purchase", "purchase", "Join a flash sale's queue", auth=USER,
       body=Body(orders.ORDER_BODY["address_id"], orders.ORDER_BODY["payment_method"]), status=202,
       data=obj(status={"type": "string", "enum": ["queued"]}, request_id=STR),
       reasons={409: ["sold_out", "already_purchased", "not_started", "ended"], 429: ["rate_limited"]},
       links={"SaleResult": link("saleResult", id_from="$request.path.id")}),
    Op("get", "/api/seckill/{id}/result", "saleResult", "The user's outcome in a flash sale", auth=USER,
       data=obj(required=False, status={"type": "string", "enum": ["queued", "success", "failed", "none"]},
                request_id=STR, order_id=INT, reason=STR)),
    # admin: catalog
    Op("get", "/api/admin/categories", "adminListCategories", "Categories", auth=ADMIN,
       data=wrap(items=array(ref("AdminCategory")))),
    Op("post", "/api/admin/categories", "adminCreateCategory", "Add a category", auth=ADMIN,
       body=catalog_admin.CATEGORY_BODY, status=201, data=wrap(category=ref("AdminCategory")),
       reasons={409: ["name_taken"]}, links=CATEGORY_LINKS),
    Op("put", "/api/admin/categories/{id}", "adminUpdateCategory", "Change a category", auth=ADMIN,
       body=catalog_admin.CATEGORY_BODY, data=wrap(category=ref("AdminCategory")), reasons={409: ["name_taken"]}),
    Op("delete", "/api/admin/categories/{id}", "adminDeleteCategory", "Delete a category without goods",
       auth=ADMIN, reasons={409: ["in_use"]}),
    Op("get", "/api/admin/goods", "adminListGoods", "Goods, paginated", auth=ADMIN, data=page_of("AdminGoods"),
       query=[*catalog.GOODS_QUERY.without("sort", "order").parameters(), q_param(catalog.MAX_QUERY_LEN), *PAGE]),
    Op("post", "/api/admin/goods", "adminCreateGoods", "Add goods", auth=ADMIN, body=catalog_admin.GOODS_BODY,
       status=201, data=wrap(goods=ref("AdminGoods")), links=GOODS_LINKS),
    Op("get", "/api/admin/goods/{id}", "adminGetGoods", "One goods", auth=ADMIN, data=wrap(goods=ref("AdminGoods"))),
    Op("put", "/api/admin/goods/{id}", "adminUpdateGoods", "Change goods (fields left out keep their value)",
       auth=ADMIN, body=catalog_admin.GOODS_BODY, data=wrap(goods=ref("AdminGoods"))),
    Op("delete", "/api/admin/goods/{id}", "adminDeleteGoods", "Delete goods no order or sale names", auth=ADMIN,
       reasons={409: ["in_use"]}),
    Op("post", "/api/admin/goods/{id}/photo", "adminUploadPhoto", "Set the goods' picture (JPEG, PNG or WebP)",
       auth=ADMIN, data=wrap(goods=ref("AdminGoods")), reasons={400: ["bad_image"]}),
    # admin: flash sales
    Op("get", "/api/admin/seckill", "adminListSales", "Flash sales", auth=ADMIN, data=page_of("Sale"),
       query=[choice_param("state", ["live", "upcoming", "ended"]), *PAGE]),
    Op("post", "/api/admin/seckill", "adminCreateSale", "Schedule a flash sale", auth=ADMIN, body=seckill.SALE_BODY,
       status=201, data=ref("Sale"), links=SALE_LINKS),
    Op("get", "/api/admin/seckill/{id}", "adminGetSale", "One flash sale", auth=ADMIN, data=ref("Sale")),
    Op("put", "/api/admin/seckill/{id}", "adminUpdateSale",
       "Change a sale (before its start anything; once live only end_time and total_stock)", auth=ADMIN,
       body=seckill.SALE_BODY, data=ref("Sale"), reasons={409: ["bad_status"]}),
    Op("post", "/api/admin/seckill/{id}/cancel", "adminCancelSale", "Cancel a flash sale", auth=ADMIN,
       data=ref("Sale"), reasons={409: ["bad_status"]}),
    # admin: orders
    Op("get", "/api/admin/orders", "adminListOrders", "Every order, paginated, with the shop's figures", auth=ADMIN,
       data={"allOf": [page_of("AdminOrder"), obj(stats={"type": "object"})]}, query=[*ORDER_FILTERS, *PAGE]),
    Op("get", "/api/admin/orders/export.csv", "adminExportOrders", "The matching orders as CSV", auth=ADMIN,
       query=ORDER_FILTERS, content_type="text/csv"),
    Op("get", "/api/admin/orders/{id}", "adminGetOrder", "One order with log and remarks", auth=ADMIN,
       data=wrap(order=ref("AdminOrderDetail"))),
    Op("post", "/api/admin/orders/{id}/status", "adminSetOrderStatus", "Ship, complete or cancel an order",
       auth=ADMIN, body=admin_orders.STATUS_BODY, data=wrap(order=ref("AdminOrderDetail")),
       reasons={409: ["bad_status"]}),
    Op("post", "/api/admin/orders/{id}/remarks", "adminAddRemark", "An admin's note on an order", auth=ADMIN,
       body=admin_orders.REMARK_BODY, status=201, data=wrap(remark=ref("Remark"))),
    # admin: users and figures
    Op("get", "/api/admin/users", "adminListUsers", "Users, paginated", auth=ADMIN, data=page_of("AdminUser"),
       query=[q_param(254, "A username, email or phone prefix."), *PAGE]),
    Op("get", "/api/admin/users/{id}", "adminGetUser", "One user", auth=ADMIN, data=wrap(user=ref("AdminUser"))),
    Op("put", "/api/admin/users/{id}", "adminUpdateUser", "Role, ban flag and contact", auth=ADMIN,
       body=accounts.USER_EDIT_BODY, data=wrap(user=ref("AdminUser")),
       reasons={409: ["last_admin", "self", "email_taken", "phone_taken"]}),
    Op("delete", "/api/admin/users/{id}", "adminDeleteUser", "Delete a user without orders", auth=ADMIN,
       reasons={409: ["has_orders", "last_admin", "self"]}),
    Op("get", "/api/admin/stats", "adminStats", "The dashboard's figures (only=live: live_sales alone)",
       auth=ADMIN, data={"type": "object"},
       query=[*admin_stats.STATS_QUERY.parameters(), choice_param("only", ["live"])]),
]
PHOTO_BODY = {"multipart/form-data": {"schema": obj(photo={"type": "string", "format": "binary"})}}

# --- the document ----------------------------------------------------------------------------------

COMMON_REASONS = {503: ["unavailable"]}
STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 400: "Refused: bad request",
               401: "Refused: not logged in", 403: "Refused: not allowed", 404: "Refused: not found",
               409: "Refused: conflict", 413: "Refused: body too large", 429: "Refused: too many requests",
               503: "Refused: briefly unavailable"}


def envelope_schema(status: int, data: dict[str, Any] | None) -> dict[str, Any]:
    return obj(code={"type": "integer", "const": status}, msg=STR, data=data if data is not None else {"type": "null"})


def refusal_schema(status: int, reasons: list[str]) -> dict[str, Any]:
    data = obj(required=False, reason={"type": "string", "enum": reasons}, errors=ref("ValidationErrors"),
               retry_after=INT)
    data["required"] = ["reason"]
    return envelope_schema(status, data)


def refusals(op: Op) -> dict[int, list[str]]:
    """Each refusal status of the operation and its reasons (the contract's common ones included)."""
    out: dict[int, list[str]] = {}

    def add(status: int, *names: str) -> None:
        out.setdefault(status, [])
        out[status] += [n for n in names if n not in out[status]]

    writes = op.method != "get"
    if op.body is not None or op.query or op.operation_id == "adminUploadPhoto":
        add(400, "validation", "bad_request")
    if op.body is not None or op.operation_id == "adminUploadPhoto":
        add(413, "too_large")
    if op.auth in (USER, ADMIN):
        add(401, "unauthenticated")
        add(403, "banned")
    if op.auth == ADMIN:
        add(403, "forbidden")
    if writes:
        add(403, "csrf")
    if op.has_id:
        add(404, "not_found")
    for status, names in {**op.reasons, **COMMON_REASONS}.items():
        add(status, *names)
    for status, names in op.reasons.items():
        add(status, *names)
    return dict(sorted(out.items()))


def operation(op: Op) -> dict[str, Any]:
    if op.content_type == "text/csv":
        ok = {"description": "The orders as CSV, streamed", "content": {"text/csv": {"schema": STR}}}
    elif op.operation_id == "openapi":
        ok = {"description": "This document", "content": {"application/json": {"schema": {"type": "object"}}}}
    else:
        ok = {"description": STATUS_TEXT[op.status],
              "content": {"application/json": {"schema": envelope_schema(op.status, op.data)}}}
    if op.links:
        ok["links"] = op.links
    responses: dict[str, Any] = {str(op.status): ok}
    for status, reasons in refusals(op).items():
        responses[str(status)] = {
            "description": STATUS_TEXT.get(status, "Refused"),
            "content": {"application/json": {"schema": refusal_schema(status, reasons)}},
            **({"headers": {"Retry-After": {"schema": INT}}} if status == 429 else {}),
        }
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "responses": responses,
                           "tags": [op.auth]}
    params = ([PATH_ID] if op.has_id else []) + op.query
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body.schema()}}}
    elif op.operation_id == "adminUploadPhoto":
        out["requestBody"] = {"required": True, "content": PHOTO_BODY}
    if op.auth != PUBLIC:
        out["security"] = [{"session": [], "csrf": []}] if op.method != "get" else [{"session": []}]
    return out


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPS:
        paths.setdefault(op.path, {})[op.method] = operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "FlashSale", "version": "1",
                 "description": "Every JSON answer is the envelope {code, msg, data}; a refusal's data has a "
                                "machine-readable reason, and validation failures errors = {field: message}."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                            "description": "The session cookie set by login."},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                         "description": "The session's token (login, GET /api/me); state changes need it."},
            },
        },
    }


_DOCUMENT: bytes | None = None


def document_bytes() -> bytes:
    """The document as JSON, built once per process."""
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = dumps(build())
    return _DOCUMENT
