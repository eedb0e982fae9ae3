"""MySQL through asyncmy: the pool's lifecycle and the few helpers every service uses."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncmy
from asyncmy.cursors import DictCursor
from asyncmy.pool import Pool

from flashsale.settings import Settings

# Every connection speaks UTC, so CURRENT_TIMESTAMP(3) and UTC_TIMESTAMP(3) agree.
INIT_COMMAND = "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'"

# MySQL's error numbers that services turn into refusals (see errno())
DUP_ENTRY = 1062  # a unique key already holds the value
ROW_IS_REFERENCED = 1451  # a foreign key of another row still names this one
NO_REFERENCED_ROW = 1452  # the row a foreign key would name does not exist


def connect_kwargs(settings: Settings, database: str | None = "") -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        charset="utf8mb4",
        init_command=INIT_COMMAND,
        connect_timeout=5,
    )
    if database is not None:
        kwargs["db"] = database or settings.db_name
    return kwargs


async def create_pool(settings: Settings) -> Pool:
    # autocommit on: a bare SELECT then reads fresh data and leaves no transaction open;
    # writes go through transaction(), which starts one explicitly.
    return await asyncmy.create_pool(
        minsize=settings.db_pool_min,
        maxsize=settings.db_pool_max,
        pool_recycle=3600,
        autocommit=True,
        **connect_kwargs(settings),
    )


async def close_pool(pool: Pool) -> None:
    pool.close()
    await pool.wait_closed()


async def fetch_one(pool: Pool, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return await cur.fetchone()


async def fetch_all(pool: Pool, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())


async def fetch_value(pool: Pool, sql: str, args: Sequence[Any] = ()) -> Any:
    async with pool.acquire() as conn:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            row = await cur.fetchone()
            return row[0] if row else None


async def execute(pool: Pool, sql: str, args: Sequence[Any] = ()) -> int:
    """Run one statement on its own (autocommit); returns the affected row count."""
    async with pool.acquire() as conn:
        async with conn.cursor() as cur:
            return await cur.execute(sql, args)


@contextlib.asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[DictCursor]:
    """A short write transaction: commit on success, roll back on any error."""
    async with pool.acquire() as conn:
        await conn.begin()
        try:
            async with conn.cursor(DictCursor) as cur:
                yield cur
        except BaseException:
            await conn.rollback()
            raise
        else:
            await conn.commit()


def errno(exc: Exception) -> int | None:
    """MySQL's error number of an asyncmy error (DUP_ENTRY...), or None."""
    return exc.args[0] if exc.args else None
