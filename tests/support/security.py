"""The security suites' world of actors (anonymous, owner, other user, banned user, admin), raw HTTP
requests and state snapshots; their fixtures are in tests/security/conftest.py."""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
from typing import Any

from tests.support.factory import PASSWORD

ROLES = ("anonymous", "user", "other", "banned", "admin")


_serial = itertools.count(1)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def serial(stem: str) -> str:
    return f"{stem}{next(_serial)}_{dt.datetime.now().strftime('%H%M%S%f')}"


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class World:
    """The actors, their sessions (a Cookie header and a CSRF token each) and objects made on demand."""

    def __init__(self, client, factory, ctx):
        self.client, self.factory, self.ctx = client, factory, ctx
        self.users: dict[str, dict[str, Any]] = {}
        self.cookie: dict[str, str] = {}
        self.csrf: dict[str, str] = {}
        self.addr: dict[str, int] = {}
        self._objects: dict[str, Any] = {}

    # --- sessions -------------------------------------------------------------------------------
    def _take_cookies(self) -> str:
        jar = self.client.session.cookie_jar
        header = "; ".join(f"{c.key}={c.value}" for c in jar)
        jar.clear()
        return header

    async def login(self, role: str) -> None:
        user = self.users[role]
        self.client.session.cookie_jar.clear()
        r = await self.client.post("/api/auth/login", json={"username": user["username"], "password": PASSWORD})
        assert r.status == 200, await r.text()
        self.csrf[role] = (await r.json())["data"]["csrf_token"]
        self.cookie[role] = self._take_cookies()

    async def anonymous_session(self) -> None:
        """An anonymous session that got a form token from the login page."""
        self.client.session.cookie_jar.clear()
        r = await self.client.get("/login")
        assert r.status == 200
        self.csrf["anonymous"] = CSRF_FIELD.search(await r.text()).group(1)
        self.cookie["anonymous"] = self._take_cookies()

    async def build(self) -> "World":
        for role in ("user", "other"):
            self.users[role] = await self.factory.user()
        self.users["admin"] = await self.factory.user(role="admin")
        for role in ("user", "other", "admin"):
            self.addr[role] = await self.factory.address(self.users[role]["id"])
            await self.login(role)
        await self.anonymous_session()
        await self.make_banned()
        return self

    async def make_banned(self) -> None:
        """A new banned user holding the session it had before the ban (dropped on its first use)."""
        self.users["banned"] = await self.factory.user()
        self.addr["banned"] = await self.factory.address(self.users["banned"]["id"])
        await self.login("banned")
        r = await self.call("PUT", f"/api/admin/users/{self.users['banned']['id']}", "admin",
                            json={"is_active": False})
        assert r.status == 200, await r.text()

    async def sessions_alive(self) -> bool:
        """Do the user, the other user and the admin still hold their sessions?"""
        for role in ("user", "other", "admin"):
            r = await self.call("GET", "/api/me", role)
            if r.status != 200 or (await r.json())["data"]["user"]["id"] != self.users[role]["id"]:
                return False
        return True

    async def renew(self, actors: bool) -> None:
        """Ready for another test on the same app: the objects are made afresh on first use and the
        banned user's one-use session anew; with `actors` (or when a session is gone) every actor too."""
        self._objects = {}
        if actors or not await self.sessions_alive():
            self.users, self.cookie, self.csrf, self.addr = {}, {}, {}, {}
            await self.build()
        else:
            await self.make_banned()

    async def call(self, method: str, path: str, role: str, csrf: bool = True, headers=None, **kwargs):
        """One request as `role`, with or without its CSRF token; the jar is emptied first."""
        self.client.session.cookie_jar.clear()
        sent = dict(headers or {})
        if self.cookie.get(role):
            sent["Cookie"] = self.cookie[role]
        if csrf and self.csrf.get(role):
            sent["X-CSRF-Token"] = self.csrf[role]
        kwargs.setdefault("allow_redirects", False)
        response = await self.client.request(method, path, headers=sent, **kwargs)
        await response.read()
        self.client.session.cookie_jar.clear()
        return response

    # --- objects, made once per world on first use ------------------------------------------------
    async def get(self, name: str) -> Any:
        if name not in self._objects:
            self._objects[name] = await getattr(self, "_make_" + name)()
        return self._objects[name]

    async def fields(self, names) -> dict[str, Any]:
        return {n: await self.get(n) for n in names}

    async def _ok(self, method, path, role="admin", status=(200, 201), **kwargs):
        r = await self.call(method, path, role, **kwargs)
        assert r.status in status, f"{method} {path}: {r.status} {await r.text()}"
        return await r.json()

    async def _make_category(self) -> int:
        return await self.factory.category()

    async def _make_spare_category(self) -> int:
        return await self.factory.category()

    async def _make_goods(self) -> int:
        return await self.factory.goods(stock=1000)

    async def _make_spare_goods(self) -> int:
        return await self.factory.goods(stock=10)

    async def _order(self, then: tuple[tuple[str, str, dict | None], ...] = ()) -> int:
        goods = await self.get("goods")
        body = {"goods_id": goods, "quantity": 1, "address_id": self.addr["user"], "payment_method": "alipay"}
        order = (await self._ok("POST", "/api/orders", "user", json=body))["data"]["order"]["id"]
        for role, action, json in then:
            await self._ok("POST", action.format(id=order), role, json=json)
        return order

    async def _make_order_pending(self) -> int:
        return await self._order()

    async def _make_order_paid(self) -> int:
        return await self._order((("user", "/api/orders/{id}/pay", None),))

    async def _make_order_shipped(self) -> int:
        return await self._order((("user", "/api/orders/{id}/pay", None),
                                  ("admin", "/api/admin/orders/{id}/status", {"status": "shipped"})))

    async def _make_order_cancelled(self) -> int:
        return await self._order((("user", "/api/orders/{id}/cancel", None),))

    async def _sale(self, start_in: dt.timedelta, length: dt.timedelta, limit: int = 5) -> int:
        goods = await self.factory.goods(stock=1000)
        start = utcnow() + start_in
        body = {"goods_id": goods, "price": "9.90", "total_stock": 50, "per_user_limit": limit,
                "start_time": iso(start), "end_time": iso(start + length)}
        return (await self._ok("POST", "/api/admin/seckill", json=body))["data"]["id"]

    async def _make_live_sale(self) -> int:
        return await self._sale(dt.timedelta(seconds=-5), dt.timedelta(hours=1))

    async def _make_upcoming_sale(self) -> int:
        return await self._sale(dt.timedelta(hours=1), dt.timedelta(hours=1))

    async def _make_ended_sale(self) -> int:
        """Ended: made upcoming, then moved into the past in MySQL (the API refuses past sales)."""
        sale = await self._sale(dt.timedelta(hours=1), dt.timedelta(hours=1))
        from flashsale import db
        past = utcnow() - dt.timedelta(hours=2)
        await db.execute(self.ctx.db, "UPDATE flash_sales SET start_time = %s, end_time = %s WHERE id = %s",
                         (past, past + dt.timedelta(hours=1), sale))
        return sale

    async def _make_address(self) -> int:
        """Another address of the owner's (its default one stays for orders and purchases)."""
        return await self.factory.address(self.users["user"]["id"], is_default=False)

    async def _make_victim(self) -> int:
        """A user for the admin user routes to change or delete."""
        return (await self.factory.user())["id"]

    async def _make_user_id(self) -> int:
        return self.users["user"]["id"]


# --- raw HTTP: bytes aiohttp's client will not send (non-UTF-8 headers, lying bodies) -------------

async def raw_request(client, head: bytes, body: bytes = b"", timeout_s: float = 10.0) -> tuple[int, bytes]:
    """Send bytes to the test server; (status, body) of the answer, read until the server closes."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


# --- state snapshots: what a refusal must leave as it was -----------------------------------------

TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"


class Snapshots:
    """Row count of every table; the values of the Redis keys the routes touch."""

    def __init__(self, ctx, keys: list[str]):
        self.ctx, self.keys = ctx, keys
        self.tables: list[str] | None = None

    async def take(self) -> tuple[Any, Any]:
        from flashsale import db
        if self.tables is None:
            rows = await db.fetch_all(self.ctx.db, TABLES)
            self.tables = sorted(next(iter(r.values())) for r in rows if next(iter(r.values())) != "schema_migrations")
        # row counts only: CHECKSUM TABLE flaked (addresses' checksum moved with no write seen)
        counts = await db.fetch_one(self.ctx.db, "SELECT " + ", ".join(
            f"(SELECT COUNT(*) FROM `{t}`) AS `{t}`" for t in self.tables))
        return (counts, await self._redis())

    async def _redis(self) -> dict[str, Any]:
        out = {}
        redis = self.ctx.redis
        for key in self.keys:
            kind = await redis.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "string":
                out[key] = await redis.get(key)
            elif kind == "hash":
                value = await redis.hgetall(key)
                # cache fills (the address ids) are not state; epoch, role and ban flag are
                out[key] = {k: v for k, v in value.items() if k not in (b"addrs", "addrs")}
            elif kind == "set":
                out[key] = sorted(await redis.smembers(key))
            elif kind == "stream":
                out[key] = await redis.xlen(key)
            elif kind == "zset":
                out[key] = await redis.zrange(key, 0, -1, withscores=True)
            elif kind == "list":
                out[key] = await redis.lrange(key, 0, -1)
            else:
                out[key] = kind
        return out
