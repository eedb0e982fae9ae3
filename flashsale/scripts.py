"""The Lua scripts in flashsale/lua/, registered once per Redis client (called by SHA)."""
from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

LUA_DIR = Path(__file__).resolve().parent / "lua"

# admit.lua's codes, by name
ADMIT_CODES = {
    0: "queued", 1: "sold_out", 2: "not_started", 3: "ended", 4: "ended",
    5: "already_purchased", 6: "rate_limited", -1: "cold",
}


class Scripts:
    """redis-py keeps each script's SHA and reloads it on NOSCRIPT."""

    def __init__(self, redis: Redis):
        def load(name: str) -> AsyncScript:
            return redis.register_script((LUA_DIR / f"{name}.lua").read_text(encoding="utf-8"))

        self.admit = load("admit")
        self.release = load("release")
        self.fail = load("fail")
        self.rebuild = load("rebuild")
        self.adjust = load("adjust")
