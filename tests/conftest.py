"""Test fixtures: a database and Redis key space of this run's own, the real app, factories."""
from __future__ import annotations

import asyncio
import itertools
import os
from decimal import Decimal
from typing import Any

import asyncmy
import pytest
import pytest_asyncio
from aiohttp import web
from redis import Redis as SyncRedis

from flashsale.app import create_app
from flashsale.appkeys import CTX
from flashsale.context import Context
from flashsale.db import connect_kwargs
from flashsale.migrate import migrate
from flashsale.settings import Settings

RUN_ID = f"{os.getpid()}"
TEST_DB = f"flashsale_test_{RUN_ID}"
TEST_PREFIX = f"test:{RUN_ID}:"
PASSWORD = "correct horse battery"
_names = itertools.count(1)


def unique(stem: str = "u") -> str:
    return f"{stem}{RUN_ID}_{next(_names)}"


def base_settings(**overrides) -> Settings:
    env = dict(os.environ)
    env.setdefault("FLASHSALE_REDIS_URL", os.environ.get("FLASHSALE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    return Settings.from_env(
        env,
        db_name=TEST_DB,
        redis_prefix=TEST_PREFIX,
        secret_key="test-secret-" + RUN_ID,
        scrypt_n=16, scrypt_r=1, scrypt_p=1,  # cheap hashing: the KDF itself is tested separately
        upload_dir=str(_tmp_upload_dir()),
        var_dir=str(_tmp_upload_dir().parent / "var"),
        **overrides,
    )


def _tmp_upload_dir():
    import pathlib
    import tempfile

    return pathlib.Path(tempfile.gettempdir()) / f"flashsale-test-{RUN_ID}" / "uploads"


async def _drop_database(settings: Settings) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
    finally:
        await conn.ensure_closed()


@pytest.fixture(scope="session")
def migrated_db():
    """This run's database, built by the real migrations, dropped at the end."""
    settings = base_settings()
    asyncio.run(_drop_database(settings))
    asyncio.run(migrate(settings))
    yield settings
    asyncio.run(_drop_database(settings))
    # this run's keys only: everything under its prefix
    redis = SyncRedis.from_url(settings.redis_url)
    batch = []
    for key in redis.scan_iter(match=TEST_PREFIX + "*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            redis.delete(*batch)
            batch.clear()
    if batch:
        redis.delete(*batch)
    redis.close()


@pytest.fixture
def settings(migrated_db) -> Settings:
    return migrated_db


@pytest.fixture
def make_app(settings):
    def make(**overrides):
        return create_app(settings.replace(**overrides) if overrides else settings)
    return make


@pytest.fixture
async def client(aiohttp_client, make_app):
    return await aiohttp_client(make_app())


@pytest.fixture
def ctx(client) -> Context:
    return client.app[CTX]


class Factory:
    """Makes rows through the real services (or plain SQL where no service exists yet)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    async def user(self, *, role: str = "user", password: str = PASSWORD, **fields) -> dict[str, Any]:
        from flashsale.services import accounts

        username = fields.pop("username", None) or unique("u")
        body = {"username": username, "password": password, "email": f"{username}@example.com", **fields}
        user = await accounts.register(self.ctx, body, role=role)
        return {**user, "password": password}

    async def category(self, name: str | None = None) -> int:
        from flashsale import db

        return await _insert(self.ctx, "INSERT INTO categories (name, description) VALUES (%s, %s)",
                             (name or unique("cat"), "test category"))

    async def goods(self, *, category_id: int | None = None, stock: int = 100,
                    price: str = "19.90", name: str | None = None, sales: int = 0) -> int:
        from flashsale import db
        from flashsale.services import search

        category_id = category_id or await self.category()
        async with db.transaction(self.ctx.db) as cur:
            await cur.execute(
                "INSERT INTO goods (category_id, name, description, price, original_price, stock, sales) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (category_id, name or unique("goods"), "test goods", Decimal(price), Decimal(price) + 10,
                 stock, sales))
            goods_id = cur.lastrowid
            await search.index_goods(cur, goods_id)  # searchable, as the service's goods are
        return goods_id

    async def address(self, user_id: int, *, is_default: bool = True) -> int:
        return await _insert(
            self.ctx,
            "INSERT INTO addresses (user_id, receiver_name, phone, province, city, district, "
            "detail_address, is_default) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (user_id, "Test Receiver", "13800000000", "Zhejiang", "Hangzhou", "Xihu", "1 Test Road",
             int(is_default)))


async def _insert(ctx: Context, sql: str, args) -> int:
    from flashsale import db

    async with db.transaction(ctx.db) as cur:
        await cur.execute(sql, args)
        return cur.lastrowid


@pytest.fixture
def factory(ctx) -> Factory:
    return Factory(ctx)


async def login(client, username: str, password: str = PASSWORD) -> str:
    """Log in through the API; returns the session's CSRF token."""
    r = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status == 200, await r.text()
    return (await r.json())["data"]["csrf_token"]


@pytest.fixture
async def user_client(client, factory):
    """A logged-in shopper: (client, user, csrf headers)."""
    user = await factory.user()
    token = await login(client, user["username"])
    return client, user, {"X-CSRF-Token": token}


@pytest.fixture
async def admin_client(client, factory):
    admin = await factory.user(role="admin")
    token = await login(client, admin["username"])
    return client, admin, {"X-CSRF-Token": token}


# --- browser tests: the system Chromium, the real app on a free port, a fresh page ---------------
# Browser modules run on one loop per module (`pytestmark = pytest.mark.asyncio(loop_scope="module")`):
# Playwright, the served app and its pools are bound to that loop.

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                           args=["--disable-gpu", "--disable-quic"])
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def live_app(settings):
    """The real app, background tasks included, on 127.0.0.1 and a free port: (base URL, app)."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", app
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    yield page
    await context.close()
