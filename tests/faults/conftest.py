"""Fixtures of the fault suite and the rush test: a whole shop as real processes per test.

Each test gets its own database (named after the pytest pid and the case), a private
redis-server, TCP proxies in front of MySQL and Redis, `run.py serve --workers 2` pointed through
them, and an admin made with `run.py create-admin`. Everything is dropped at the end.
"""
from __future__ import annotations

import asyncio
import os
import re
import sys

import asyncmy
import pytest

from flashsale.db import connect_kwargs
from flashsale.migrate import migrate
from flashsale.settings import ROOT, Settings

from tests.support.fault_harness import ADMIN_PASSWORD, Ledger, Proxy, RedisServer, free_port, remove_tree
from tests.support.fault_shop import RUSH_LINES, TOTALS, Shop, case_db_name

def pytest_terminal_summary(terminalreporter):
    for line in RUSH_LINES:
        terminalreporter.write_line(line)
    if TOTALS["cases"]:
        terminalreporter.write_line(
            "fault suite: {cases} cases, faults injected {faults}, requests sent {requests}, "
            "5xx outside injected outages {fivexx}, invariant violations {violations}".format(**TOTALS))


async def _drop(settings: Settings) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
    finally:
        await conn.ensure_closed()


def server_env(settings: Settings, *, db_port: int, redis_url: str, port: int, workdir, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASHSALE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "FLASHSALE_DB_HOST": settings.db_host, "FLASHSALE_DB_PORT": str(db_port),
        "FLASHSALE_DB_USER": settings.db_user, "FLASHSALE_DB_PASSWORD": settings.db_password,
        "FLASHSALE_DB_NAME": settings.db_name, "FLASHSALE_REDIS_URL": redis_url,
        "FLASHSALE_REDIS_PREFIX": settings.redis_prefix, "FLASHSALE_PORT": str(port),
        "FLASHSALE_SECRET_KEY": settings.secret_key, "FLASHSALE_VAR_DIR": str(workdir / "var"),
        "FLASHSALE_UPLOAD_DIR": str(workdir / "uploads"), "FLASHSALE_LOG_LEVEL": "WARNING",
        "FLASHSALE_SCRYPT_N": "16", "FLASHSALE_SCRYPT_R": "1", "FLASHSALE_SCRYPT_P": "1",
        "FLASHSALE_REGISTER_IP_LIMIT": "1000000",  # every buyer registers from 127.0.0.1
        "FLASHSALE_RECLAIM_IDLE_MS": "1000", "FLASHSALE_SWEEP_INTERVAL_S": "0.5",
        "FLASHSALE_CONSUMER_BLOCK_MS": "200", "FLASHSALE_ADMIN_PASSWORD": ADMIN_PASSWORD,
    })
    env.update({f"FLASHSALE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


@pytest.fixture
async def make_shop(request, tmp_path):
    """make_shop(aof=False, **settings) -> a running Shop; all of it is torn down afterwards."""
    made: list[Shop] = []
    case = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower().removeprefix("test_"))[:30]

    async def make(*, aof: bool = False, redis_proxy: bool = True, **extra) -> Shop:
        name = f"{len(made)}{case}"[:20]
        settings = Settings.from_env({}, db_name=case_db_name(f"{len(made)}_{case}"),
                                     redis_prefix=f"fault:{os.getpid()}:{name}:", secret_key="fault-" + name,
                                     scrypt_n=16, scrypt_r=1, scrypt_p=1)
        workdir = tmp_path / name
        redis = RedisServer(workdir / "redis", aof=aof).start()
        rproxy = Proxy(redis.port).start() if redis_proxy else None
        mproxy = Proxy(settings.db_port).start()
        settings = settings.replace(redis_url=redis.url)
        shop = Shop(name=name, settings=settings, env={}, workdir=workdir, ledger=Ledger(), redis=redis,
                    mysql_proxy=mproxy, redis_proxy=rproxy)
        made.append(shop)
        await _drop(settings)
        await migrate(settings)
        redis_url = f"redis://127.0.0.1:{rproxy.port}/0" if rproxy else redis.url
        shop.env = server_env(settings, db_port=mproxy.port, redis_url=redis_url, port=free_port(),
                              workdir=workdir, **extra)
        direct = {**shop.env, "FLASHSALE_DB_PORT": str(settings.db_port), "FLASHSALE_REDIS_URL": redis.url}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "run.py", "create-admin", "--username", f"admin_{name}",
            "--email", f"admin_{name}@example.com", cwd=ROOT, env=direct,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        await shop.start_server()
        await shop.login_admin()
        return shop

    yield make
    for shop in made:
        await shop.close_clients()
        if shop.server:
            shop.server.stop()
        for proxy in (shop.mysql_proxy, shop.redis_proxy):
            if proxy:
                proxy.stop()
        shop.redis.stop()
        await _drop(shop.settings)
        if not os.environ.get("FLASHSALE_FAULTS_KEEP"):  # keep logs to read after a failure
            remove_tree(shop.workdir)
