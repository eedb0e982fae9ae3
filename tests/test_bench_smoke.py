"""A tiny `make bench` end to end: the report is written, the verdict holds, and an oversold sale fails it."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from bench.config import BenchConfig
from bench.prepare import clear_keys, drop_database
from bench.verdict import ClientView, compute
from flashsale import db
from flashsale.settings import ROOT

pytestmark = pytest.mark.slow

RUN_ID = os.getpid()
BUYERS, STOCK = 300, 200

# -> a buyer without an order of the sale (was refused), with their address
UNSERVED_BUYER = """
SELECT u.id AS user_id, a.id AS address_id FROM users u JOIN addresses a ON a.user_id = u.id
 WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id) ORDER BY u.id LIMIT 1"""
# one order more than the sale admitted, as an oversold engine would write it
INSERT_EXTRA_ORDER = """
INSERT INTO orders (order_number, user_id, goods_id, flash_sale_id, request_id, quantity, unit_price,
                    total_amount, payment_method, status, address_id, receiver_name, phone, province,
                    city, district, detail_address)
SELECT 'OVERSOLD-1', %s, s.goods_id, s.id, 'not-a-real-request', 1, s.price, s.price, 'alipay', 'pending',
       %s, 'Extra Buyer', '13900000000', 'Zhejiang', 'Hangzhou', 'Xihu', '1 Extra Road'
  FROM flash_sales s WHERE s.id = %s"""


@pytest.fixture
def bench_config(tmp_path):
    config = BenchConfig.from_env({}, buyers=BUYERS, stock=STOCK, users=20, browsers=1, workers=1,
                                  healthz_s=1, duration_s=60, drain_timeout_s=30,
                                  db_name=f"flashsale_bench_test_{RUN_ID}",
                                  redis_prefix=f"benchtest:{RUN_ID}:", results_dir=str(tmp_path / "results"))
    yield config
    settings = config.settings()
    asyncio.run(drop_database(settings))
    asyncio.run(clear_keys(settings))


def bench_env(config: BenchConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "PROMETHEUS_"))}
    env.update({
        "BENCH_BUYERS": str(config.buyers), "BENCH_STOCK": str(config.stock), "BENCH_USERS": str(config.users),
        "BENCH_BROWSERS": str(config.browsers), "BENCH_WORKERS": str(config.workers),
        "BENCH_HEALTHZ_S": str(config.healthz_s), "BENCH_DURATION": str(config.duration_s),
        "BENCH_DRAIN_TIMEOUT_S": str(config.drain_timeout_s), "BENCH_DB": config.db_name,
        "BENCH_REDIS_PREFIX": config.redis_prefix, "BENCH_RESULTS_DIR": config.results_dir,
    })
    return env


async def inject_extra_order(config: BenchConfig, sale_id: int) -> None:
    pool = await db.create_pool(config.settings(db_pool_min=1, db_pool_max=1))
    try:
        buyer = await db.fetch_one(pool, UNSERVED_BUYER)
        async with db.transaction(pool) as cur:
            assert await cur.execute(INSERT_EXTRA_ORDER, (buyer["user_id"], buyer["address_id"], sale_id)) == 1
    finally:
        await db.close_pool(pool)


def test_tiny_bench_writes_its_report_and_its_verdict_catches_an_oversold_sale(bench_config):
    done = subprocess.run([sys.executable, "bench/run_bench.py"], cwd=ROOT, env=bench_env(bench_config),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr

    results = ROOT / bench_config.results_dir
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1
    run_dir = runs[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert json.loads((results / "latest.json").read_text()) == summary
    for name in ("chart.png", "healthz.html", "sale.html", "sale_stats.csv", "sale_stats_history.csv",
                 "healthz_stats.csv", "timeline.csv", "orders.csv"):
        assert (run_dir / name).stat().st_size > 0, name
    assert not (run_dir / "sessions.csv").exists()  # session cookies are not kept

    verdict = summary["verdict"]
    assert verdict["passed"], verdict
    assert verdict["orders"] == verdict["accepted_server"] == verdict["accepted_client"] == STOCK
    assert verdict["redis_remaining"] == 0
    assert verdict["refused_sold_out_while_stock_remained"] == 0
    assert summary["outcomes_client"]["queued"] == STOCK
    assert summary["git_commit"] and summary["hardware"]["cores"] >= 1
    for name in ("healthz", "admission"):
        phase = summary["phases"][name]
        assert phase["requests"] > 0 and phase["rps"] > 0 and phase["p99_ms"] is not None, name
        assert phase["cpu_s"]["server"] is not None, name
    assert summary["phases"]["drain"]["orders"] == STOCK
    assert summary["cpu_purchase_vs_healthz"] is not None and summary["purchase_vs_healthz"] is not None
    assert "verdict: PASS" in done.stdout

    # one order more than the sale admitted: the verdict must fail, from the database alone
    sale_id = summary["sale_id"]
    asyncio.run(inject_extra_order(bench_config, sale_id))
    oversold = asyncio.run(compute(bench_config.settings(), sale_id, ClientView.from_samples(run_dir)))
    assert not oversold["passed"]
    assert {"orders_within_stock", "orders_equal_accepted", "redis_remaining_matches",
            "mysql_sold_matches"} <= set(oversold["failed_checks"])
    assert oversold["orders"] == STOCK + 1

    cli = subprocess.run([sys.executable, "bench/verdict.py", "--sale", str(sale_id), "--db", bench_config.db_name,
                          "--prefix", bench_config.redis_prefix, "--samples", str(run_dir)],
                         cwd=ROOT, env=bench_env(bench_config), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["failed_checks"] == oversold["failed_checks"]
