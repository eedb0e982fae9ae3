"""Fixtures only: this run's database and Redis keys, the real app, factories, logged-in clients, browsers.

Helpers live in tests/support/ (see its __init__); import them as `from tests.support.<module> import ...`.
"""
from __future__ import annotations

import asyncio
import os

import pytest
import pytest_asyncio
from aiohttp import web

from flashsale.app import create_app
from flashsale.appkeys import CTX
from flashsale.context import Context
from flashsale.migrate import migrate
from flashsale.settings import Settings

from tests.support.auth import login
from tests.support.factory import Factory
from tests.support.redis_cluster import LocalCluster
from tests.support.isolation import base_settings, delete_run_keys, drop_database, query


@pytest.fixture(scope="session")
def migrated_db():
    """This run's database, built by the real migrations; dropped with this run's Redis keys at the end."""
    settings = base_settings()
    asyncio.run(drop_database(settings))
    asyncio.run(migrate(settings))
    yield settings
    asyncio.run(drop_database(settings))
    delete_run_keys(settings)


# the sales a module made end with it (moved two days into the past): every app a later module
# starts would otherwise follow them all (its engine starts consumers for each live sale, and its
# stop waits for them), which made every later test about a second slower
END_SALES = ("UPDATE flash_sales SET start_time = UTC_TIMESTAMP() - INTERVAL 3 DAY,"
             " end_time = UTC_TIMESTAMP() - INTERVAL 2 DAY WHERE end_time > UTC_TIMESTAMP() - INTERVAL 2 DAY")


@pytest.fixture(scope="module", autouse=True)
def sales_end_with_their_module(migrated_db):
    yield
    asyncio.run(query(migrated_db, END_SALES))


# --- Redis modes: the flash-sale modules (tests/test_seckill_*.py) run on a single Redis and again
# on a local 3-master Redis Cluster (started once per session, when first needed);
# FLASHSALE_TEST_CLUSTER=0 runs the single half alone
CLUSTER_MODULES = "test_seckill_"


def pytest_generate_tests(metafunc):
    module = metafunc.module.__name__.rpartition(".")[2]
    if (module.startswith(CLUSTER_MODULES) and "settings" in metafunc.fixturenames
            and os.environ.get("FLASHSALE_TEST_CLUSTER", "1") != "0"):
        metafunc.parametrize("redis_mode", ["single", "cluster"], indirect=True, scope="module")


@pytest.fixture(scope="session")
def redis_cluster():
    cluster = LocalCluster(masters=3).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def redis_mode(request) -> str:
    return getattr(request, "param", "single")


@pytest.fixture
def settings(migrated_db, redis_mode, request) -> Settings:
    if redis_mode == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        return migrated_db.replace(redis_url=cluster.url, redis_cluster=True)
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


@pytest.fixture
def factory(ctx) -> Factory:
    return Factory(ctx)


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
