"""A shop run as real processes for one test, and the invariants checked against it afterwards."""
from __future__ import annotations

import asyncio
import dataclasses
import collections
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

from flashsale.settings import Settings

from tests.support.isolation import query
from tests.support.fault_harness import (ADMIN_PASSWORD, PASSWORD, Client, Ledger, Proxy, RedisServer, ServerProcess, gather_bounded,
                      iso, utcnow)

ORDERS_OF_SALE = """
SELECT id, user_id, request_id, status, quantity FROM orders WHERE flash_sale_id = %s"""
FAILURES_OF_SALE = "SELECT request_id, user_id, reason FROM seckill_failures WHERE flash_sale_id = %s"
SALE_ROW = "SELECT total_stock, sold, per_user_limit FROM flash_sales WHERE id = %s"
GOODS_STOCK = "SELECT stock FROM goods WHERE id = %s"
ORDINARY_ORDERS_OF_GOODS = """
SELECT id, status, quantity FROM orders WHERE goods_id = %s AND flash_sale_id IS NULL"""
DEFAULTS_PER_USER = """
SELECT u.id, COUNT(a.id) AS addresses, COALESCE(SUM(a.is_default), 0) AS defaults
  FROM users u LEFT JOIN addresses a ON a.user_id = u.id
 WHERE u.role = 'user' GROUP BY u.id"""


@dataclasses.dataclass
class Shop:
    """One test's FlashSale: its database, its Redis, its proxies, its server and an admin."""

    name: str
    settings: Settings  # as the test reads it: MySQL and Redis directly, not through the proxies
    env: dict[str, str]
    workdir: Path
    ledger: Ledger
    redis: RedisServer
    mysql_proxy: Proxy
    redis_proxy: Proxy | None
    server: ServerProcess | None = None
    admin: Client | None = None
    faults: int = 0
    clients: list[Client] = dataclasses.field(default_factory=list)

    # --- processes

    async def start_server(self) -> ServerProcess:
        self.server = ServerProcess(self.env, int(self.env["FLASHSALE_PORT"]), self.workdir / "server.log")
        self.server.start()
        await self.server.ready()
        return self.server

    def client(self) -> Client:
        c = Client(self.server.base, self.ledger)
        self.clients.append(c)
        return c

    async def login_admin(self) -> Client:
        self.admin = self.client()
        r = await self.admin.login(f"admin_{self.name}", ADMIN_PASSWORD)
        assert r.status == 200, r
        return self.admin

    # --- catalog and sales, through the admin API

    async def goods(self, stock: int) -> int:
        r = await self.admin.call_retrying("POST", "/api/admin/categories",
                                           {"name": f"cat {time.monotonic_ns()}", "description": "faults"})
        assert r.status == 201, r
        category_id = r.data["category"]["id"]
        r = await self.admin.call_retrying("POST", "/api/admin/goods", {
            "category_id": category_id, "name": f"goods {time.monotonic_ns()}", "description": "faults",
            "price": "19.90", "original_price": "29.90", "stock": stock})
        assert r.status == 201, r
        return r.data["goods"]["id"]

    async def sale(self, stock: int, *, limit: int = 1, length_s: int = 600) -> int:
        goods_id = await self.goods(1000)
        start = utcnow() - dt.timedelta(seconds=1)
        r = await self.admin.call_retrying("POST", "/api/admin/seckill", {
            "goods_id": goods_id, "price": "9.90", "total_stock": stock, "per_user_limit": limit,
            "start_time": iso(start), "end_time": iso(start + dt.timedelta(seconds=length_s))})
        assert r.status == 201, r
        return r.data["id"]

    async def buyers(self, n: int, *, relogin: bool = True, concurrency: int = 32,
                     first: int = 0) -> list[Client]:
        """n users, each registered, logged in and with one address.

        relogin: log in again after adding the address, which writes the address ids to Redis
        (the purchase path then needs no MySQL); without it the first purchase asks MySQL.
        """
        async def one(i: int) -> Client:
            c = self.client()
            name = f"b{self.name}_{i}"
            r = await c.register_and_login(name)
            assert r.status == 200, r
            r = await c.add_address(i, default=True, retry=True)
            assert r.status == 201, r
            if relogin:
                r = await c.login(name, PASSWORD)
                assert r.status == 200, r
            return c
        self.ledger.phase = "setup"
        try:
            return await gather_bounded([one(i) for i in range(first, first + n)], concurrency)
        finally:
            self.ledger.phase = "normal"

    async def close_clients(self) -> None:
        for c in self.clients:
            await c.close()
        self.clients.clear()

    # --- direct reads for the checks

    async def rows(self, sql: str, args=()) -> list[dict[str, Any]]:
        return await query(self.settings, sql, args)


async def purchase(c: Client, sale_id: int):
    r = await c.call("POST", f"/api/seckill/{sale_id}/purchase",
                     {"address_id": c.addresses[0], "payment_method": "card"},
                     route="POST /api/seckill/{id}/purchase")
    return c, r


async def storm(buyers: list[Client], sale_id: int, admitted: dict[str, Client], concurrency: int = 64):
    """Every buyer purchases once; 202s are noted in admitted (request id -> buyer)."""
    answers = await gather_bounded([purchase(c, sale_id) for c in buyers], concurrency)
    for c, r in answers:
        if r.status == 202:
            admitted[r.data["request_id"]] = c
    return [r for _, r in answers]


async def place_order(c: Client, goods_id: int, placed: dict[int, int]):
    r = await c.call("POST", "/api/orders", {"goods_id": goods_id, "quantity": 1, "address_id": c.addresses[0],
                                             "payment_method": "alipay"}, route="POST /api/orders")
    if r.status == 201:
        placed[r.data["order"]["id"]] = r.data["order"]["quantity"]
    return r


async def settled(shop: Shop, sale_id: int, admitted: dict[str, Client], timeout_s: float = 15.0) -> None:
    """Wait until every admitted request is an order or a recorded failure (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = {r["request_id"] for r in await shop.rows(ORDERS_OF_SALE, (sale_id,))}
        done |= {r["request_id"] for r in await shop.rows(FAILURES_OF_SALE, (sale_id,))}
        if set(admitted) <= done:
            return
        await asyncio.sleep(0.25)


async def sale_violations(shop: Shop, sale_id: int, admitted: dict[str, Client], *,
                          results: bool = True) -> list[str]:
    """What MySQL, Redis and each buyer's result say, against what every buyer was told."""
    await settled(shop, sale_id, admitted)
    bad: list[str] = []
    orders = await shop.rows(ORDERS_OF_SALE, (sale_id,))
    failures = {r["request_id"]: r for r in await shop.rows(FAILURES_OF_SALE, (sale_id,))}
    sale = (await shop.rows(SALE_ROW, (sale_id,)))[0]
    by_request: dict[str, list[dict]] = {}
    for o in orders:
        by_request.setdefault(o["request_id"], []).append(o)
    for request_id in admitted:
        made = len(by_request.get(request_id, []))
        failed = request_id in failures
        if made + failed != 1:
            bad.append(f"request {request_id}: {made} orders, failure recorded {failed}")
    doubled = [rid for rid, os_ in by_request.items() if len(os_) > 1]
    if doubled:
        bad.append(f"{len(doubled)} request ids with more than one order")
    live = [o for o in orders if o["status"] != "cancelled"]
    units = sum(o["quantity"] for o in live)
    if units > sale["total_stock"]:
        bad.append(f"oversold: {units} units in orders, stock {sale['total_stock']}")
    if units != sale["sold"]:
        bad.append(f"flash_sales.sold {sale['sold']} != {units} units in live orders")
    per_user: dict[int, int] = {}
    for o in live:
        per_user[o["user_id"]] = per_user.get(o["user_id"], 0) + o["quantity"]
    over = {u: n for u, n in per_user.items() if n > sale["per_user_limit"]}
    if over:
        bad.append(f"per-user limit broken for {len(over)} users")
    r = await shop.admin.call_retrying("GET", f"/api/seckill/{sale_id}", route="GET /api/seckill/{id}")
    if r.status != 200:
        bad.append(f"sale detail answered {r.status}")
    elif r.data["remaining"] != sale["total_stock"] - units:
        bad.append(f"Redis remaining {r.data['remaining']} != {sale['total_stock']} - {units}")
    if results:
        bad += await result_violations(shop, sale_id, admitted, by_request, failures)
    return bad


async def result_violations(shop: Shop, sale_id: int, admitted: dict[str, Client],
                            by_request: dict[str, list[dict]], failures: dict[str, dict]) -> list[str]:
    """Every buyer told 202 asks for the result: success with that order, or an explicit failure."""
    async def ask(request_id: str, c: Client) -> str | None:
        r = await c.call_retrying("GET", f"/api/seckill/{sale_id}/result?wait_ms=3000",
                                  route="GET /api/seckill/{id}/result")
        if r.status != 200:
            return f"result for {request_id} answered {r.status}"
        status = r.data.get("status")
        if request_id in by_request:
            if status != "success" or r.data.get("order_id") != by_request[request_id][0]["id"]:
                return f"result for {request_id} is {r.data}, order {by_request[request_id][0]['id']}"
        elif request_id in failures and status != "failed":
            return f"result for {request_id} is {r.data}, a failure is recorded"
        return None
    answers = await gather_bounded([ask(rid, c) for rid, c in admitted.items()], 32)
    return [a for a in answers if a]


async def goods_violations(shop: Shop, goods_id: int, initial: int, placed: dict[int, int]) -> list[str]:
    """Stock exact (initial minus units in live ordinary orders) and every 201 a real order."""
    bad = []
    orders = await shop.rows(ORDINARY_ORDERS_OF_GOODS, (goods_id,))
    ids = {o["id"] for o in orders}
    lost = set(placed) - ids
    if lost:
        bad.append(f"{len(lost)} orders answered 201 are not in MySQL")
    held = sum(o["quantity"] for o in orders if o["status"] != "cancelled")
    stock = (await shop.rows(GOODS_STOCK, (goods_id,)))[0]["stock"]
    if stock != initial - held:
        bad.append(f"goods stock {stock} != {initial} - {held}")
    return bad


def case_db_name(case: str) -> str:
    return f"fs_fault_{os.getpid()}_{case}"[:64]


# what the whole suite saw, printed as one line at the end of the run
TOTALS = {"cases": 0, "faults": 0, "requests": 0, "fivexx": 0, "violations": 0}
RUSH_LINES: list[str] = []


def record_case(shop: Shop, violations: list[str]) -> None:
    TOTALS["cases"] += 1
    TOTALS["faults"] += shop.faults
    TOTALS["requests"] += shop.ledger.requests
    TOTALS["fivexx"] += len(shop.ledger.fivexx_outside_outage())
    TOTALS["violations"] += len(violations)
    print(f"case {shop.name}: faults {shop.faults}, requests {shop.ledger.requests}, "
          f"statuses {dict(shop.ledger.statuses)}, no answer {shop.ledger.no_answer}, "
          f"setup 503s {shop.ledger.setup_503s()}, 5xx outside outages "
          f"{collections.Counter(f[1:] for f in shop.ledger.fivexx_outside_outage())}, "
          f"violations {violations[:5]}")
