"""This pytest process's own database, Redis key prefix and directories, so parallel runs never collide."""
from __future__ import annotations

import os
import pathlib
import tempfile

import asyncmy
from asyncmy.cursors import DictCursor
from redis import Redis as SyncRedis

from flashsale.db import connect_kwargs
from flashsale.settings import Settings

RUN_ID = f"{os.getpid()}"
TEST_DB = f"flashsale_test_{RUN_ID}"
TEST_PREFIX = f"test:{RUN_ID}:"


def run_dir() -> pathlib.Path:
    return pathlib.Path(tempfile.gettempdir()) / f"flashsale-test-{RUN_ID}"


def base_settings(**overrides) -> Settings:
    """The settings of this run: its database and key prefix, cheap hashing, its own directories."""
    env = dict(os.environ)
    env.setdefault("FLASHSALE_REDIS_URL", os.environ.get("FLASHSALE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    return Settings.from_env(
        env,
        db_name=TEST_DB,
        redis_prefix=TEST_PREFIX,
        secret_key="test-secret-" + RUN_ID,
        scrypt_n=16, scrypt_r=1, scrypt_p=1,  # cheap hashing: the KDF itself is tested separately
        # every test client is 127.0.0.1, for the whole run: the limit has its own tests (make_app(register_ip_limit=2))
        register_ip_limit=1_000_000,
        upload_dir=str(run_dir() / "uploads"),
        var_dir=str(run_dir() / "var"),
        **overrides,
    )


async def drop_database(settings: Settings) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
    finally:
        await conn.ensure_closed()


async def query(settings: Settings, sql: str, args=()) -> list[dict]:
    """One statement on a connection of its own (outside the app's pool), its rows as dicts."""
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings))
    try:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        await conn.ensure_closed()


def delete_run_keys(settings: Settings) -> None:
    """This run's keys only: everything under its prefix (never FLUSHDB: other runs share the Redis)."""
    redis = SyncRedis.from_url(settings.redis_url)
    try:
        batch = []
        for key in redis.scan_iter(match=settings.redis_prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                redis.delete(*batch)
                batch.clear()
        if batch:
            redis.delete(*batch)
    finally:
        redis.close()
