"""The Lua scripts in flashsale/lua/, registered once per Redis client (called by SHA)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from flashsale.errors import AlreadyPurchased, Ended, NotStarted, RateLimited, Refusal, SoldOut, Unavailable

LUA_DIR = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True, slots=True)
class AdmitResult:
    """What one of admit.lua's codes means: its reason (the admissions metric's outcome) and,
    unless the purchase was queued, the refusal made from the script's detail."""
    reason: str
    refusal: Callable[[int], Refusal] | None


def _warming_up(_detail: int) -> Refusal:
    return Unavailable("The sale is warming up; try again in a moment.")


# admit.lua's codes (see its header) -> reason -> refusal; the only table of them
ADMIT_QUEUED, ADMIT_SOLD_OUT, ADMIT_COLD = 0, 1, -1
# a sale split over shards only: the caller's shard count is stale (detail: the sale's), and the
# home shard is dry with the buyer's slot reserved (admission.py takes a unit from a donor)
ADMIT_RESHARD, ADMIT_DRY = -2, 7
# the buyer check inside admit.lua and result.lua (a single Redis only): it needs MySQL (the
# caller checks as on a cluster, then calls again without it), or the session has ended
BUYER_CHECK_MYSQL, BUYER_SESSION_ENDED = -3, -4
ADMIT_RESULTS = {
    ADMIT_QUEUED: AdmitResult("queued", None),
    ADMIT_SOLD_OUT: AdmitResult("sold_out", lambda _: SoldOut()),
    2: AdmitResult("not_started", lambda ms: NotStarted(data={"starts_in_ms": int(ms)})),
    3: AdmitResult("ended", lambda _: Ended()),
    4: AdmitResult("ended", lambda _: Ended()),  # cancelled
    5: AdmitResult("already_purchased", lambda _: AlreadyPurchased()),
    6: AdmitResult("rate_limited", lambda ms: RateLimited(retry_after_s=max(1, -(-int(ms) // 1000)))),
    ADMIT_COLD: AdmitResult("cold", _warming_up),  # no state in Redis: a rebuild is under way
}
ADMIT_UNKNOWN = AdmitResult("error", _warming_up)


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
        self.take = load("take")
        self.unhold = load("unhold")
        self.cache_auth = load("cache_auth")
        self.result = load("result")
