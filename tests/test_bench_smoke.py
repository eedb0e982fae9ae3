"""A tiny `make bench` end to end (the report is written with every phase's figures, the verdict holds, an
oversold sale fails it), and the locustfile on its own against a server, buyers registering themselves."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from bench.config import BenchConfig
from bench.prepare import clear_keys, drop_database, prepare, schedule_sale
from bench.run_bench import Server, free_port
from bench.verdict import ClientView, compute
from flashsale import db
from flashsale.settings import ROOT

pytestmark = pytest.mark.slow

RUN_ID = os.getpid()
BUYERS, STOCK = 300, 200
WATCHERS = 20

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
                                  healthz_s=1, duration_s=60, drain_timeout_s=30, watchers=WATCHERS,
                                  watch_window_s=1.0, page_storm_s=1.0,
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
        "BENCH_WATCHERS": str(config.watchers), "BENCH_WATCH_WINDOW_S": str(config.watch_window_s),
        "BENCH_PAGE_STORM_S": str(config.page_storm_s),
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

    # the buyers long-polled like the page: every queued buyer saw its order, and the checks held
    outcome = summary["click_to_outcome"]
    assert outcome["buyers"] == STOCK and outcome["endings"] == {"purchase_to_order": STOCK}
    assert outcome["p50_ms"] is not None and outcome["p99_ms"] >= outcome["p50_ms"]
    assert summary["client_checks"]["passed"] and summary["client_checks"]["ended_final"] == STOCK
    # the page storm, measured against /healthz
    storm = summary["phases"]["page_storm"]
    assert storm["requests"] > 0 and storm["errors_by_status"] == {} and summary["cpu_page_vs_healthz"] > 0
    # the watchers: all open through the sale, MySQL sampled with and without them
    watchers = summary["watchers"]
    assert watchers["sockets"] == WATCHERS and watchers["client"]["failed"] == 0
    assert watchers["client"]["closed_early"] == 0 and watchers["client"]["messages"] >= WATCHERS
    assert watchers["mysql_questions_per_s_unwatched"] is not None
    assert watchers["mysql_questions_per_s_watched"] is not None and watchers["mysql_questions_per_s_sale"] is not None
    # the drain against a bare INSERT of as many rows, and the spread of the per-second ratios
    drain = summary["phases"]["drain"]
    assert drain["bare_insert"]["rows"] == STOCK and drain["bare_insert"]["rows_per_s"] > 0
    assert summary["drain_vs_bare_insert"] is not None
    assert set(summary["ratio_spread"]) >= {"cpu_purchase_vs_healthz", "cpu_sold_out_vs_healthz", "cpu_page_vs_healthz"}
    assert "click to outcome" in done.stdout and "watchers: 20 sockets" in done.stdout

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


@pytest.fixture
def standalone_config():
    config = BenchConfig.from_env({}, buyers=1, stock=3, workers=1, db_name=f"flashsale_bench_solo_{RUN_ID}",
                                  redis_prefix=f"benchsolo:{RUN_ID}:")
    yield config
    settings = config.settings()
    asyncio.run(drop_database(settings))
    asyncio.run(clear_keys(settings))


def test_the_locustfile_on_its_own_registers_buyers_finds_the_sale_and_checks_the_outcomes(standalone_config, tmp_path):
    settings = standalone_config.settings()
    prepared = asyncio.run(prepare(settings, 1, 3, tmp_path / "accounts.csv"))
    server = Server(standalone_config, free_port(), tmp_path / "server.log")
    server.start()
    try:
        opens = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
        asyncio.run(schedule_sale(settings, prepared.goods_id, 3, 1, opens, 600))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "PROMETHEUS_"))}
        done = subprocess.run(
            [sys.executable, "-m", "locust", "-f", "bench/locustfile.py", "--headless", "--host", server.base_url,
             "-u", "5", "-r", "5", "-t", "40s", "--only-summary", "--exit-code-on-error", "0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    finally:
        server.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # five buyers registered themselves, three bought the stock, and the run ended once all had their outcome
    checks = json.loads(output.split("client checks (ok): ", 1)[1].splitlines()[0])
    assert checks["buyers_queued"] == checks["requests_queued"] == checks["ended_final"] == 3
    assert checks["told_202_above_limit"] == checks["queued_never_final"] == 0
    assert "purchase_to_order" in output and "sold_out" in output
