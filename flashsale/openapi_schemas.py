"""The OpenAPI document's data shapes: schema helpers and the named component schemas."""
from __future__ import annotations

from typing import Any

from flashsale.services import accounts, catalog, orders

# --- data shapes ---------------------------------------------------------------------------------

def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: bool = True, **props: Any) -> dict[str, Any]:
    """An object with these properties (all required unless told); more properties may come."""
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required and props:
        out["required"] = list(props)
    return out


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "description": 'Two decimals: "19.90".'}
TIME = {"type": "string", "format": "date-time", "description": "UTC with Z: 2026-11-24T12:00:00.000Z."}
N_STR, N_INT, N_MONEY, N_TIME = nullable(STR), nullable(INT), nullable(MONEY), nullable(TIME)
ORDER_STATUS = {"type": "string", "enum": list(orders.STATUSES)}

SCHEMAS: dict[str, dict[str, Any]] = {
    "User": obj(id=INT, username=STR, role={"type": "string", "enum": sorted(accounts.ROLES)},
                email=N_STR, phone=N_STR, created_at=TIME),
    "AdminUser": {"allOf": [ref("User"), obj(is_active=BOOL)]},
    "Category": obj(id=INT, name=STR, description=STR, goods_count=INT),
    "AdminCategory": {"allOf": [ref("Category"), obj(created_at=TIME)]},
    "GoodsSummary": obj(id=INT, name=STR, price=MONEY, original_price=N_MONEY, stock=INT, sales=INT,
                        photo_url=N_STR, category_id=INT),
    "Goods": obj(id=INT, name=STR, price=MONEY, original_price=N_MONEY, stock=INT, sales=INT,
                 photo_url=N_STR, description=N_STR, category=obj(id=INT, name=STR),
                 **{name: N_STR for name, _ in catalog.SPEC_FIELDS}),
    "GoodsDetail": {"allOf": [ref("Goods"), obj(related=array(ref("GoodsSummary")),
                                                flash_sale=nullable(ref("Sale")))]},
    "AdminGoods": {"allOf": [ref("Goods"), obj(category_id=INT, created_at=TIME, updated_at=TIME)]},
    "Address": obj(id=INT, receiver_name=STR, phone=STR, province=STR, city=STR, district=STR,
                   detail_address=STR, is_default=BOOL, created_at=TIME, updated_at=TIME),
    "Order": obj(
        id=INT, order_number=STR, status=ORDER_STATUS, goods=obj(id=INT, name=STR, photo_url=N_STR),
        flash_sale_id=N_INT, quantity=INT, unit_price=MONEY, total_amount=MONEY,
        payment_method=nullable({"type": "string", "enum": sorted(orders.PAYMENT_METHODS)}),
        address=obj(receiver_name=STR, phone=STR, province=STR, city=STR, district=N_STR, detail_address=STR),
        created_at=TIME, pay_deadline=N_TIME, paid_at=N_TIME, shipped_at=N_TIME, completed_at=N_TIME,
        cancelled_at=N_TIME, transaction_id=N_STR),
    "OrderLog": obj(**{"from": nullable(ORDER_STATUS), "to": ORDER_STATUS, "at": TIME, "by": STR,
                       "remark": N_STR}),
    "OrderDetail": {"allOf": [ref("Order"), obj(log=array(ref("OrderLog")))]},
    "AdminOrder": {"allOf": [ref("Order"), obj(user=obj(id=INT, username=STR, email=N_STR, phone=N_STR),
                                               deleted_by_user=BOOL)]},
    "Remark": obj(id=INT, content=STR, admin=nullable(obj(id=INT, username=STR)), created_at=TIME),
    "AdminOrderDetail": {"allOf": [ref("AdminOrder"), obj(log=array(ref("OrderLog")),
                                                          remarks=array(ref("Remark")),
                                                          next_statuses=array(ORDER_STATUS))]},
    "Sale": obj(id=INT, goods=obj(id=INT, name=STR, photo_url=N_STR, original_price=N_MONEY), price=MONEY,
                total_stock=INT, remaining=INT, per_user_limit=INT, start_time=TIME, end_time=TIME,
                state={"type": "string", "enum": ["upcoming", "live", "ended", "cancelled"]}),
    "ListPage": obj(items={"type": "array"}, page=INT, per_page=INT, total=INT, pages=INT),
    "ValidationErrors": {"type": "object", "additionalProperties": STR,
                         "description": "field -> message"},
}


def page_of(item: str) -> dict[str, Any]:
    return {"allOf": [ref("ListPage"), obj(items=array(ref(item)))]}


def wrap(**props: Any) -> dict[str, Any]:
    return obj(**props)
