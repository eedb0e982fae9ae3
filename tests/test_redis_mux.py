"""The lean pipelined connection: RESP as redis-py would send it, one tick's calls in one write."""
from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from flashsale.redis_mux import RedisMux, pack


def test_pack_sends_str_bytes_int_and_float_as_resp():
    assert pack(("SET", "k:é", b"\x00v", 12, -3, 1.5, 10**20)) == (
        b"*7\r\n$3\r\nSET\r\n$4\r\nk:\xc3\xa9\r\n$2\r\n\x00v\r\n$2\r\n12\r\n$2\r\n-3\r\n$3\r\n1.5\r\n"
        b"$21\r\n100000000000000000000\r\n")


@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}])
def test_pack_refuses_what_redis_would_get_wrong(bad):
    with pytest.raises(TypeError):
        pack(("SET", "k", bad))


async def test_a_ticks_calls_go_together_and_each_gets_its_own_reply(migrated_db):
    key = f"{migrated_db.redis_prefix}mux:{{t}}"
    mux = RedisMux(migrated_db.redis_url)
    try:
        replies = await asyncio.gather(mux.call("SET", key, "7"), mux.call("INCRBY", key, 5),
                                       mux.call("GET", key), mux.call("HGET", key, "f"),
                                       return_exceptions=True)
        assert replies[:3] == ["OK", 12, "12"]
        assert isinstance(replies[3], ResponseError)  # WRONGTYPE, for that call alone
        assert await mux.call("DEL", key) == 1
    finally:
        await mux.close()
