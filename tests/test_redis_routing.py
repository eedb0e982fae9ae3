"""ReplicatedMux (FLASHSALE_REDIS_WAIT_REPLICAS): a tick's scripted writes resolve only after the
WAIT queued behind them on their connection answers, and never hang when that connection is lost."""
from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from flashsale.context import open_redis
from flashsale.redis_routing import NotReplicated, ReplicatedMux, open_mux
from flashsale.scripts import Scripts

from tests.support.redis_cluster import LocalCluster

INCR = "return redis.call('INCR', KEYS[1])"


@pytest.fixture
async def key(migrated_db):
    name = f"{migrated_db.redis_prefix}routing:{{t}}"
    yield name
    mux = ReplicatedMux(migrated_db.redis_url, 0, 10)
    await mux.call("DEL", name)
    await mux.close()


async def test_writes_resolve_after_wait_and_fail_when_too_few_replicas_hold_them(migrated_db, key):
    # the test Redis has no replica: WAIT 0 is met at once, WAIT 1 never within its timeout
    for replicas, met in ((0, True), (1, False)):
        mux = ReplicatedMux(migrated_db.redis_url, replicas, 50)
        sha = await mux.call("SCRIPT", "LOAD", INCR)
        replies = await asyncio.gather(*[mux.call("EVALSHA", sha, 1, key) for _ in range(3)],
                                       mux.call("GET", key), mux.call("EVALSHA", "0" * 40, 0),
                                       return_exceptions=True)
        writes, read, missing = replies[:3], replies[3], replies[4]
        if met:
            assert writes == [1, 2, 3]
        else:
            assert all(isinstance(w, NotReplicated) for w in writes), writes
        assert int(read) == (3 if met else 6)  # the write happened on the master either way
        assert isinstance(missing, NoScriptError)  # an error is answered at once, no WAIT needed
        await mux.close()


async def test_a_write_waiting_for_replicas_fails_when_its_connection_is_lost(migrated_db, key):
    mux = ReplicatedMux(migrated_db.redis_url, 1, 5000)
    sha = await mux.call("SCRIPT", "LOAD", INCR)
    write = mux.call("EVALSHA", sha, 1, key)
    await asyncio.sleep(0.2)  # the script answered; its WAIT is still waiting
    assert not write.done()
    mux.conn.transport.abort()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(write, 2)
    assert int(await mux.call("GET", key)) == 1  # a new connection serves the next calls
    await mux.close()


async def test_a_burst_on_a_cluster_waits_for_a_turn_instead_of_failing(migrated_db, redis_cluster):
    """redis-py's cluster pools raise MaxConnectionsError at their cap; ours queue the burst."""
    settings = migrated_db.replace(redis_url=redis_cluster.url, redis_cluster=True, redis_max_connections=4,
                                   redis_pool_wait_s=2.0)
    redis = open_redis(settings)
    key = f"{settings.redis_prefix}burst:{{t}}"
    try:
        # 300 commands at once take turns, four at a time, on four connections at most
        replies = await asyncio.gather(*(redis.eval("redis.call('INCR', KEYS[1]) return 1", 1, key)
                                         for _ in range(300)))
        assert replies == [1] * 300 and int(await redis.get(key)) == 300
        node = redis.get_node_from_key(key)
        assert len(node._connections) <= 4
        # a caller that cannot get a turn in time is told so as a connection error (a 503), not a 500
        slow = open_redis(settings.replace(redis_max_connections=1, redis_pool_wait_s=0.05))
        try:
            blocked = asyncio.ensure_future(slow.execute_command("BLPOP", f"{key}:none", 0.5))
            await asyncio.sleep(0.1)
            with pytest.raises(RedisConnectionError, match="No connection available"):
                await slow.get(key)
            assert await blocked is None
        finally:
            await slow.aclose()
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_the_routed_purchase_connection_follows_a_slot_moved_to_another_master(migrated_db):
    """A slot migrates between masters mid-use: while it moves, its owner answers ASK (sent on
    with ASKING to the importing node); once moved, MOVED (the topology is read again); the new
    node does not know the script yet (NOSCRIPT: loaded there, sent again). Nothing is lost."""
    cluster = LocalCluster(masters=3).start()
    settings = migrated_db.replace(redis_url=cluster.url, redis_cluster=True)
    redis = open_redis(settings)
    scripts = Scripts(redis)
    mux = open_mux(settings, redis, scripts)
    key = f"{settings.redis_prefix}moving:{{m}}"
    sha = await redis.script_load(INCR)
    mux.sources[sha] = INCR
    try:
        assert await mux.call("EVALSHA", sha, 1, key) == 1
        slot = redis.keyslot(key)
        source = redis.get_node_from_key(key)
        target = next(n for n in redis.get_primaries() if n.name != source.name)
        src, dst = cluster.node(source.port), cluster.node(target.port)
        src_id, dst_id = src.execute_command("CLUSTER MYID"), dst.execute_command("CLUSTER MYID")
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", key)
        # mid-migration: the key is on the importing node, its old owner answers ASK
        assert await mux.call("EVALSHA", sha, 1, key) == 2
        for port in cluster.master_ports():
            cluster.node(port).execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        # moved: the old owner answers MOVED
        assert await mux.call("EVALSHA", sha, 1, key) == 3
        assert int(dst.get(key)) == 3 and src.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0
        assert redis.get_node_from_key(key).name == target.name  # the client's slot map was refreshed
    finally:
        await mux.close()
        await redis.aclose()
        cluster.stop()
