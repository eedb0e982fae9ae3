"""MySQL through asyncmy: the pool's lifecycle and the few helpers every service uses."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncmy
from asyncmy.cursors import DictCursor
from asyncmy.pool import Pool

from flashsale.errors import Unavailable
from flashsale.settings import Settings

log = logging.getLogger(__name__)

# Every connection speaks UTC, so CURRENT_TIMESTAMP(3) and UTC_TIMESTAMP(3) agree. READ COMMITTED:
# InnoDB then takes no gap locks for plain reads and updates, which were the cause of deadlocks
# between users whose rows are neighbours in an index (two users adding addresses at once). Every
# invariant here is kept by row locks and conditional UPDATEs, never by a repeatable snapshot.
# A lock wait gives up after a few seconds (1205) and the transaction runner tries again.
INIT_COMMAND = ("SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION', "
                "tx_isolation = 'READ-COMMITTED', innodb_lock_wait_timeout = {lock_wait_s}")

# MySQL's error numbers that services turn into refusals (see errno())
DUP_ENTRY = 1062  # a unique key already holds the value
ROW_IS_REFERENCED = 1451  # a foreign key of another row still names this one
NO_REFERENCED_ROW = 1452  # the row a foreign key would name does not exist
# transient: the whole transaction was (or must be) rolled back and may simply run again
LOCK_WAIT_TIMEOUT = 1205
DEADLOCK = 1213
# the connection went away (server gone, lost during a query, cannot connect, server shutdown...)
CONNECTION_LOST = frozenset({2002, 2003, 2006, 2013, 2055, 1053, 1927})
# what asyncmy's RuntimeErrors say when the socket closed under them (others are real bugs)
LOST_RUNTIME_ERRORS = ("Transport does not expose socket", "handler is closed", "Transport is closed")

# a transaction's bounds, for work that sends them in one text with its first and last statements
BEGIN = "START TRANSACTION"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"

TRANSACTION_ATTEMPTS = 4
BACKOFF_FIRST_S = 0.010  # then doubled each attempt, each wait jittered to 1x..2x

T = TypeVar("T")


def connect_kwargs(settings: Settings, database: str | None = "") -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        charset="utf8mb4",
        init_command=INIT_COMMAND.format(lock_wait_s=int(settings.db_lock_wait_s)),
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


@contextlib.asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[Any]:
    """A pooled connection; losing MySQL (any of asyncmy's ways to say so, see
    is_connection_lost) becomes Unreachable, a 503, and the broken connection is closed so the
    pool drops it instead of handing it out again."""
    try:
        async with pool.acquire() as conn:
            try:
                yield conn
            except BaseException as exc:
                if is_connection_lost(exc):
                    conn.close()
                raise
    except Exception as exc:
        if is_connection_lost(exc):
            raise Unreachable() from exc
        raise


async def fetch_one(pool: Pool, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
    async with connection(pool) as conn:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return await cur.fetchone()


async def fetch_all(pool: Pool, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    async with connection(pool) as conn:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())


async def fetch_value(pool: Pool, sql: str, args: Sequence[Any] = ()) -> Any:
    async with connection(pool) as conn:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            row = await cur.fetchone()
            return row[0] if row else None


async def execute(pool: Pool, sql: str, args: Sequence[Any] = ()) -> int:
    """Run one statement on its own (autocommit); returns the affected row count."""
    async with connection(pool) as conn:
        async with conn.cursor() as cur:
            return await cur.execute(sql, args)


class Unreachable(Unavailable):
    """MySQL out of reach (refused, reset, gone away mid-query): 503 with Retry-After."""


class RetriesSpent(Unavailable):
    """A transaction kept meeting deadlocks, lock waits or lost connections: 503 with Retry-After."""


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or lock wait timeout: InnoDB rolled back (the statement or all); rerun the whole."""
    return isinstance(exc, asyncmy.errors.MySQLError) and errno(exc) in (DEADLOCK, LOCK_WAIT_TIMEOUT)


def is_connection_lost(exc: BaseException) -> bool:
    """Every way asyncmy says MySQL went away or cannot be reached: the client error numbers
    (2003 cannot connect, 2006 gone away, 2013 lost during a query...), InterfaceError (used on a
    closed connection), a socket error (reset, refused, timed out), a read cut short, and the
    RuntimeError it raises when the socket closed under it ("Transport does not expose socket
    instance" while connecting; uvloop's "handler is closed")."""
    if isinstance(exc, Unreachable):
        return True
    if isinstance(exc, asyncmy.errors.InterfaceError):
        return True
    if isinstance(exc, asyncmy.errors.MySQLError):
        return errno(exc) in CONNECTION_LOST
    if isinstance(exc, RuntimeError):
        return any(part in str(exc) for part in LOST_RUNTIME_ERRORS)
    return isinstance(exc, (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError))


async def _rollback_quietly(conn) -> None:
    try:
        await conn.rollback()
    except Exception:  # the connection is gone: the server rolled back; the pool drops it
        conn.close()


async def run_transaction(pool: Pool, work: Callable[[DictCursor], Awaitable[T]], *,
                          attempts: int = TRANSACTION_ATTEMPTS, idempotent: bool = False,
                          bounds_in_work: bool = False) -> T:
    """Run `work(cur)` in one transaction and commit; rerun the WHOLE of it on a deadlock (1213),
    a lock wait timeout (1205) or a connection lost before COMMIT was sent, after a jittered,
    doubling back-off; after `attempts` tries raise RetriesSpent (503 with Retry-After).

    `work` must only touch MySQL through `cur` (it may run several times): side effects outside
    the transaction (Redis, caches, mail) belong after this call returns, i.e. after the commit.
    A connection lost DURING the commit is ambiguous (the server may have committed): it is
    retried only when the caller says the work is `idempotent` (running it twice changes nothing
    twice, e.g. inserts keyed by a unique request id); otherwise it propagates as an outage (503)
    without a second try, so that nothing is ever written twice.

    With `bounds_in_work` (idempotent work only), `work` sends BEGIN and COMMIT itself, each in
    one text with its first and last statements (`run_statements`): two round trips fewer, which
    count when the machine is busy and every answer waits for its turn on a core. A failure
    before its COMMIT rolls back as usual; a connection lost during it is retried (idempotent).
    """
    if bounds_in_work and not idempotent:
        raise ValueError("only idempotent work may send its own COMMIT")
    delay = BACKOFF_FIRST_S
    for attempt in range(1, attempts + 1):
        committing = False
        try:
            async with pool.acquire() as conn:
                try:
                    if not bounds_in_work:
                        await conn.begin()
                    async with conn.cursor(DictCursor) as cur:
                        result = await work(cur)
                    if not bounds_in_work:
                        committing = True
                        await conn.commit()
                    return result
                except BaseException:
                    await _rollback_quietly(conn)
                    raise
        except Exception as exc:
            lost = is_connection_lost(exc)
            transient = is_retryable(exc) or (lost and (not committing or idempotent))
            if not transient:
                if lost:  # during the commit: it may have been written; do not write it twice
                    raise Unreachable() from exc
                raise
            if attempt == attempts:
                log.warning("transaction gave up after %s attempts: %s", attempts, exc)
                raise RetriesSpent() from exc
            log.info("transaction attempt %s failed (%s); retrying", attempt, exc)
            await asyncio.sleep(delay * (1 + random.random()))
            delay *= 2
    raise AssertionError("unreachable")


async def run_statements(cur: DictCursor, sql: str) -> list[tuple[int, list[dict[str, Any]]]]:
    """Several statements sent as one text, in one round trip (every value in it escaped already
    by `cur.mogrify`): each statement's (row count, rows). Every result is read, so the connection
    stays in step; the first failing statement raises and the ones after it do not run."""
    await cur.execute(sql)
    results = [(cur.rowcount, list(await cur.fetchall()))]
    while await cur.nextset():
        results.append((cur.rowcount, list(await cur.fetchall())))
    return results


async def write(pool: Pool, sql: str, args: Sequence[Any] = ()) -> int:
    """One write statement as its own transaction through run_transaction (retried when
    transient); returns the affected row count."""
    async def work(cur) -> int:
        return await cur.execute(sql, args)

    return await run_transaction(pool, work)


@contextlib.asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[DictCursor]:
    """One attempt of a write transaction (commit on success, roll back on any error), for
    scripts and tests; services use run_transaction(), which retries transient failures."""
    async with connection(pool) as conn:
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
