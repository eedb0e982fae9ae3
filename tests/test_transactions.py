"""The transaction runner: deadlocks, lock waits and lost connections rerun the whole transaction;
spent retries are 503 with Retry-After; concurrent writes of many users answer no 5xx."""
from __future__ import annotations

import asyncio

import pytest
from asyncmy.errors import OperationalError

from flashsale import db
from flashsale.services import addresses

from tests.support.auth import session_cookie
from tests.support.seckill import buyers

ADDRESS = {"receiver_name": "Rush Receiver", "phone": "13800000000", "province": "Zhejiang",
           "city": "Hangzhou", "district": "Xihu", "detail_address": "8 Rush Road"}


async def stock_of(ctx, goods_id) -> int:
    return await db.fetch_value(ctx.db, "SELECT stock FROM goods WHERE id = %s", (goods_id,))


async def kill_own_connection(ctx, cur) -> None:
    """The server drops the connection under `cur` (killed from another one)."""
    await cur.execute("SELECT CONNECTION_ID() AS id")
    own = (await cur.fetchone())["id"]
    await db.execute(ctx.db, "KILL CONNECTION %s", (own,))


async def test_a_real_deadlock_is_retried_and_both_transactions_commit(ctx, factory):
    a, b = await factory.goods(stock=10), await factory.goods(stock=10)
    holding = {"first": asyncio.Event(), "second": asyncio.Event()}
    attempts = {"first": 0, "second": 0}

    def locker(name, other, rows):
        async def work(cur):
            attempts[name] += 1
            await cur.execute("SELECT id FROM goods WHERE id = %s FOR UPDATE", (rows[0],))
            holding[name].set()
            try:  # the first attempts meet with one row each locked: then both reach for the other's row
                await asyncio.wait_for(holding[other].wait(), 2)
            except asyncio.TimeoutError:
                pass
            await cur.execute("UPDATE goods SET stock = stock - 1 WHERE id = %s", (rows[1],))
            await cur.execute("UPDATE goods SET stock = stock - 1 WHERE id = %s", (rows[0],))
            return name
        return work

    done = await asyncio.gather(db.run_transaction(ctx.db, locker("first", "second", (a, b))),
                                db.run_transaction(ctx.db, locker("second", "first", (b, a))))
    assert done == ["first", "second"]
    assert sorted(attempts.values()) == [1, 2]  # InnoDB chose one victim; its whole transaction ran again
    assert (await stock_of(ctx, a), await stock_of(ctx, b)) == (8, 8)  # each committed once


async def test_a_connection_lost_before_commit_reruns_the_whole_transaction(ctx, factory):
    goods_id = await factory.goods(stock=10)
    attempts = 0

    async def work(cur):
        nonlocal attempts
        attempts += 1
        await cur.execute("UPDATE goods SET stock = stock - 1 WHERE id = %s", (goods_id,))
        if attempts == 1:
            await kill_own_connection(ctx, cur)
            await cur.execute("SELECT 1")  # the server is gone for this one: lost before COMMIT
        return attempts

    assert await db.run_transaction(ctx.db, work) == 2
    assert await stock_of(ctx, goods_id) == 9  # the killed attempt was rolled back, the rerun committed


async def test_work_that_sends_its_own_bounds_is_rolled_back_when_it_fails_before_its_commit(ctx, factory):
    goods_id = await factory.goods(stock=10)

    async def work(cur):
        await db.run_statements(cur, cur.mogrify(f"{db.BEGIN}; UPDATE goods SET stock = stock - 1 WHERE id = %s",
                                                 (goods_id,)))
        raise OperationalError(1146, "Table 'nope' doesn't exist")

    with pytest.raises(OperationalError):
        await db.run_transaction(ctx.db, work, idempotent=True, bounds_in_work=True)
    assert await stock_of(ctx, goods_id) == 10  # the pooled connection is in autocommit: BEGIN held it back
    with pytest.raises(ValueError):
        await db.run_transaction(ctx.db, work, bounds_in_work=True)  # a COMMIT of its own needs idempotent work


async def test_work_that_sends_its_own_commit_is_rerun_after_a_lost_connection_and_commits_once(ctx, factory):
    goods_id = await factory.goods(stock=10)
    attempts = 0

    async def work(cur):
        nonlocal attempts
        attempts += 1
        # idempotent: the stock is set, not moved
        await db.run_statements(cur, cur.mogrify(f"{db.BEGIN}; UPDATE goods SET stock = 7 WHERE id = %s",
                                                 (goods_id,)))
        if attempts == 1:
            await kill_own_connection(ctx, cur)
        await db.run_statements(cur, f"SELECT 1; {db.COMMIT}")
        return attempts

    assert await db.run_transaction(ctx.db, work, idempotent=True, bounds_in_work=True) == 2
    assert await stock_of(ctx, goods_id) == 7
    # and the connection went back to the pool in autocommit: a bare write elsewhere is kept
    await db.execute(ctx.db, "UPDATE goods SET stock = 6 WHERE id = %s", (goods_id,))
    assert await stock_of(ctx, goods_id) == 6


async def test_refusals_are_not_retried(ctx, factory):
    calls = 0

    async def work(cur):
        nonlocal calls
        calls += 1
        raise OperationalError(1146, "Table 'nope' doesn't exist")

    with pytest.raises(OperationalError):
        await db.run_transaction(ctx.db, work)
    assert calls == 1


async def test_spent_retries_answer_503_with_retry_after(user_client, monkeypatch):
    client, user, headers = user_client
    calls = 0

    async def always_deadlocked(cur, user_id):
        nonlocal calls
        calls += 1
        raise OperationalError(db.DEADLOCK, "Deadlock found when trying to get lock; try restarting transaction")

    monkeypatch.setattr(addresses, "_lock_user", always_deadlocked)
    r = await client.post("/api/addresses", json=ADDRESS, headers=headers)
    assert r.status == 503 and r.headers["Retry-After"] == "1"
    assert (await r.json())["data"]["reason"] == "unavailable"
    assert calls == db.TRANSACTION_ATTEMPTS


async def test_a_sign_up_rush_of_address_writes_answers_no_5xx_and_one_default_each(client, factory, ctx):
    """40 users (with one address each) each add 3 more and switch their default, all at the same time."""
    users = await buyers(ctx, 40)
    sessions = {u["id"]: (await session_cookie(client.app, u["id"]))[0] for u in users}

    async def add(user_id, n):
        r = await client.post("/api/addresses", json={**ADDRESS, "detail_address": f"{n} Rush Road",
                                                      "is_default": n == 2}, headers=sessions[user_id])
        return r.status, (await r.json())["data"]

    added = await asyncio.gather(*(add(u["id"], n) for n in range(3) for u in users))
    assert [s for s, _ in added if s != 201] == []

    async def switch(user_id):
        rows = await db.fetch_all(ctx.db, "SELECT id FROM addresses WHERE user_id = %s", (user_id,))
        results = await asyncio.gather(*(client.post(f"/api/addresses/{r['id']}/default",
                                                     headers=sessions[user_id]) for r in rows))
        return [r.status for r in results]

    switched = await asyncio.gather(*(switch(u["id"]) for u in users))
    assert {s for statuses in switched for s in statuses} == {200}
    defaults = await db.fetch_all(ctx.db, "SELECT user_id, SUM(is_default) AS d, COUNT(*) AS n FROM addresses "
                                          "WHERE user_id IN (" + ",".join(str(u["id"]) for u in users) + ") "
                                          "GROUP BY user_id")
    assert len(defaults) == 40
    assert all(int(r["d"]) == 1 and r["n"] == 4 for r in defaults), defaults
