"""Was the sale correct? Judged from MySQL and Redis after the drain, with the client's view as a cross-check.

    python bench/verdict.py --sale ID [--db flashsale_bench --prefix bench:] [--samples DIR]

prints the verdict as JSON and exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/verdict.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis  # noqa: E402
from redis.asyncio.cluster import RedisCluster  # noqa: E402
from redis.exceptions import ResponseError  # noqa: E402

from bench.config import BenchConfig  # noqa: E402
from flashsale import db  # noqa: E402
from flashsale.redis_keys import Keys  # noqa: E402
from flashsale.settings import Settings  # noqa: E402

# -> total_stock, sold, per_user_limit of the sale
SALE = "SELECT total_stock, sold, per_user_limit FROM flash_sales WHERE id = %s"
# -> orders of the sale and the units they hold (cancelled orders hold none)
ORDER_TOTALS = """
SELECT COUNT(*) AS orders,
       COALESCE(SUM(IF(status <> 'cancelled', quantity, 0)), 0) AS units,
       COUNT(request_id) AS with_request,
       COUNT(DISTINCT request_id) AS distinct_requests
  FROM orders WHERE flash_sale_id = %s"""
# -> buyers holding more units than the limit
OVER_LIMIT = """
SELECT COUNT(*) FROM (
  SELECT user_id FROM orders WHERE flash_sale_id = %s AND status <> 'cancelled'
   GROUP BY user_id HAVING SUM(quantity) > %s) AS over_limit"""
# -> explicit failures of admitted requests
FAILURES = "SELECT COUNT(*) FROM seckill_failures WHERE flash_sale_id = %s"
# -> every request id that ended, as an order or as a failure
ENDED_REQUESTS = """
SELECT request_id FROM orders WHERE flash_sale_id = %s AND request_id IS NOT NULL
UNION
SELECT request_id FROM seckill_failures WHERE flash_sale_id = %s"""


@dataclass
class ClientView:
    """What the buyers saw: request ids answered 202, and sold_out refusals with their timing."""

    accepted: set[str] = field(default_factory=set)
    sold_out: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered) per refusal
    last_accept_sent: float | None = None

    @classmethod
    def from_samples(cls, samples_dir: Path, phase: str = "sale") -> "ClientView":
        view = cls()
        for path in sorted(samples_dir.glob(f"{phase}-*.csv")):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if row["type"] != "ADMISSION":
                        continue
                    start, ms = float(row["start"]), float(row["ms"])
                    if row["name"] == "queued" and row["detail"]:
                        view.accepted.add(row["detail"])
                        if view.last_accept_sent is None or start > view.last_accept_sent:
                            view.last_accept_sent = start
                    elif row["name"] == "sold_out":
                        view.sold_out.append((start, start + ms / 1000))
        return view

    def sold_out_before_last_accept(self) -> int:
        """Refusals answered before the last accepted purchase was even sent: stock surely remained.

        (Sound while no unit comes back during the sale; in the bench none does unless an
        admitted request fails, which the verdict reports on its own.)
        """
        if self.last_accept_sent is None:
            return 0
        return sum(1 for _, answered in self.sold_out if answered < self.last_accept_sent)


async def redis_state(settings: Settings, sale_id: int) -> dict:
    """The sale's Redis figures, summed over its stock shards (each has its stock, stream, stats)."""
    k = Keys(settings.redis_prefix)
    client = RedisCluster if settings.redis_cluster else Redis  # each shard on its own slot
    redis = client.from_url(settings.redis_url, decode_responses=True)
    total: dict = {"remaining": 0, "stats": {}, "pending": 0, "lag": 0, "has_group": False,
                   "stream_entries": 0, "dead_letters": 0}
    try:
        shards = int(await redis.hget(k.sale_window(sale_id), "shards") or 1)
        total["shards"] = shards
        for shard in range(shards):
            part = await _shard_state(redis, k, sale_id, shard)
            if part["remaining"] is None or total["remaining"] is None:
                total["remaining"] = None
            else:
                total["remaining"] += part["remaining"]
            for name, v in part["stats"].items():
                total["stats"][name] = total["stats"].get(name, 0) + v
            for name in ("pending", "stream_entries", "dead_letters"):
                total[name] += part[name]
            total["lag"] = total["lag"] if part["lag"] == 0 else part["lag"]
            total["has_group"] = total["has_group"] or part["has_group"]
    finally:
        await redis.aclose()
    return total


async def _shard_state(redis: Redis, k: Keys, sale_id: int, shard: int) -> dict:
    remaining = await redis.get(k.sale_stock(sale_id, shard))
    stats = await redis.hgetall(k.sale_stats(sale_id, shard))
    try:
        groups = await redis.xinfo_groups(k.sale_stream(sale_id, shard))
        info = await redis.xinfo_stream(k.sale_stream(sale_id, shard))
    except ResponseError:  # no stream: nothing was ever admitted
        groups, info = [], {}
    dead = await redis.xlen(k.sale_dead(sale_id, shard))
    group = next((g for g in groups if g["name"] == k.consumer_group()), None)
    pending = int(group["pending"]) if group else 0
    lag = group.get("lag") if group else 0
    if group and lag is None:  # Redis cannot tell (entries were deleted): compare ids instead
        lag = 0 if _id(group["last-delivered-id"]) >= _id(info.get("last-generated-id", "0-0")) else -1
    return {"remaining": int(remaining) if remaining is not None else None,
            "stats": {name: int(v) for name, v in stats.items()},
            "pending": pending, "lag": int(lag or 0), "has_group": group is not None,
            "stream_entries": int(info.get("length", 0)) if info else 0, "dead_letters": int(dead)}


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def mysql_state(settings: Settings, sale_id: int) -> dict:
    pool = await db.create_pool(settings.replace(db_pool_min=1, db_pool_max=2))
    try:
        sale = await db.fetch_one(pool, SALE, (sale_id,))
        if sale is None:
            raise LookupError(f"no sale {sale_id} in {settings.db_name}")
        totals = await db.fetch_one(pool, ORDER_TOTALS, (sale_id,))
        over = await db.fetch_value(pool, OVER_LIMIT, (sale_id, sale["per_user_limit"]))
        failures = await db.fetch_value(pool, FAILURES, (sale_id,))
        ended = {r["request_id"] for r in await db.fetch_all(pool, ENDED_REQUESTS, (sale_id, sale_id))}
    finally:
        await db.close_pool(pool)
    return {"total_stock": int(sale["total_stock"]), "sold": int(sale["sold"]),
            "per_user_limit": int(sale["per_user_limit"]), "orders": int(totals["orders"]),
            "units": int(totals["units"]), "with_request": int(totals["with_request"]),
            "distinct_requests": int(totals["distinct_requests"]), "users_above_limit": int(over),
            "failures": int(failures), "ended": ended}


async def compute(settings: Settings, sale_id: int, client: ClientView | None = None) -> dict:
    """The verdict: every check with the figures it rests on; `passed` only if all hold."""
    my = await mysql_state(settings, sale_id)
    rs = await redis_state(settings, sale_id)
    admitted = rs["stats"].get("admitted", 0)
    client = client or ClientView()
    lost_client = sorted(client.accepted - my["ended"])
    # stock never ran out if units are left beyond what failed requests gave back
    stock_never_ran_out = rs["remaining"] is not None and rs["remaining"] > my["failures"]
    refused_while_remaining = (len(client.sold_out) if stock_never_ran_out
                               else client.sold_out_before_last_accept())
    server_sold_out = rs["stats"].get("sold_out", 0)
    if stock_never_ran_out:
        refused_while_remaining = max(refused_while_remaining, server_sold_out)
    checks = {
        # every unit sold is backed by stock
        "orders_within_stock": my["units"] <= my["total_stock"],
        # each accepted request became exactly one order, unless it failed explicitly
        "orders_equal_accepted": my["orders"] == admitted - my["failures"]
        and my["with_request"] == my["orders"] and my["distinct_requests"] == my["orders"],
        "no_user_above_limit": my["users_above_limit"] == 0,
        # every accepted request ended as an order or an explicit failure, as the server and the
        # buyers counted them
        "no_request_lost": len(my["ended"]) == admitted and not lost_client,
        "stream_drained": (rs["has_group"] and rs["pending"] == 0 and rs["lag"] == 0) if admitted
        else rs["pending"] == 0,
        "redis_remaining_matches": rs["remaining"] == my["total_stock"] - my["units"],
        "mysql_sold_matches": my["sold"] == my["units"],
        "none_refused_while_stock_remained": refused_while_remaining == 0,
        # a sale split over shards too: once anyone was told sold_out, every shard ran dry (units
        # that failed requests gave back afterwards aside)
        "sold_out_only_when_all_shards_dry": not (client.sold_out or server_sold_out)
        or (rs["remaining"] is not None and rs["remaining"] <= my["failures"]),
    }
    return {
        "passed": all(checks.values()),
        "failed_checks": [name for name, ok in checks.items() if not ok],
        "checks": checks,
        "total_stock": my["total_stock"],
        "stock_shards": rs.get("shards", 1),
        "per_user_limit": my["per_user_limit"],
        "orders": my["orders"],
        "units_sold": my["units"],
        "mysql_sold": my["sold"],
        "accepted_server": admitted,
        "accepted_client": len(client.accepted),
        "failures": my["failures"],
        "requests_ended": len(my["ended"]),
        "lost_requests_client": len(lost_client),
        "lost_request_ids_sample": lost_client[:5],
        "users_above_limit": my["users_above_limit"],
        "redis_remaining": rs["remaining"],
        "stream_pending": rs["pending"],
        "stream_lag": rs["lag"],
        "stream_entries_left": rs["stream_entries"],
        "dead_letters": rs["dead_letters"],
        "refused_sold_out_while_stock_remained": refused_while_remaining,
        "refused_sold_out_client": len(client.sold_out),
        "server_outcomes": rs["stats"],
    }


def main() -> int:
    config = BenchConfig.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sale", type=int, required=True)
    parser.add_argument("--db", default=config.db_name)
    parser.add_argument("--prefix", default=config.redis_prefix)
    parser.add_argument("--samples", type=Path, help="a run's directory: adds the buyers' view")
    args = parser.parse_args()
    settings = Settings.from_env(db_name=args.db, redis_prefix=args.prefix)
    client = ClientView.from_samples(args.samples) if args.samples else None
    verdict = asyncio.run(compute(settings, args.sale, client))
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
