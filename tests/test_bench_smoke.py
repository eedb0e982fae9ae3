"""A tiny `make bench` end to end (the report is written with every phase's figures, the verdict holds, an
oversold sale fails it), and the locustfile on its own against a server, buyers registering themselves.
Fast checks without a load run: BENCH_REDIS, compare.py side by side, clearing keys and sampling a
sharded sale on a local Redis Cluster."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from redis.cluster import RedisCluster

from bench import compare, report
from bench.config import ENV_NAMES, BenchConfig
from bench.prepare import clear_keys, drop_database, prepare, schedule_sale
from bench.run_bench import Server, free_port
from bench.sampler import Sampler
from bench.verdict import ClientView, compute
from flashsale import db
from flashsale.redis_keys import Keys
from flashsale.settings import ROOT
from tests.support.redis_cluster import LocalCluster

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


@pytest.mark.slow
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
    assert watchers["mysql_questions_per_s_unwatched_median"] is not None
    assert watchers["mysql_questions_per_s_watched_median"] is not None
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


@pytest.mark.slow
@pytest.mark.parametrize("client", ["lean", "locust"])
def test_the_locustfile_on_its_own_registers_buyers_finds_the_sale_and_checks_the_outcomes(standalone_config, tmp_path,
                                                                                            client):
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
             "-u", "5", "-r", "5", "-t", "40s", "--only-summary", "--exit-code-on-error", "0",
             *(["--locust-client"] if client == "locust" else [])],
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
    # either client shows the purchases and long-polls in Locust's statistics
    assert "POST     purchase" in output and "GET      result" in output, output


# --- fast: no load run -----------------------------------------------------------------------------

def test_bench_redis_picks_the_redis_mode_and_points_every_component_at_it():
    assert ENV_NAMES["redis"] == "BENCH_REDIS" and ENV_NAMES["stock_shards"] == "BENCH_SHARDS"
    single = BenchConfig.from_env({})
    assert single.redis == "single" and single.stock_shards == 1
    assert single.server_env()["FLASHSALE_REDIS_CLUSTER"] == "false"
    assert "FLASHSALE_REDIS_URL" not in single.server_env()  # the server's own FLASHSALE_REDIS_URL
    assert single.settings().redis_cluster is False

    config = BenchConfig.from_env({"BENCH_REDIS": " Cluster ", "BENCH_SHARDS": "4"})
    assert config.redis == "cluster" and config.stock_shards == 4
    assert config.public()["redis"] == "cluster" and "redis_url" not in config.public()
    started = dataclasses.replace(config, redis_url="redis://127.0.0.1:31001/0")  # as run_bench does
    assert started.server_env()["FLASHSALE_REDIS_CLUSTER"] == "true"
    assert started.server_env()["FLASHSALE_REDIS_URL"] == "redis://127.0.0.1:31001/0"
    settings = started.settings()
    assert settings.redis_cluster is True and settings.redis_url == "redis://127.0.0.1:31001/0"
    assert settings.redis_prefix == config.redis_prefix

    with pytest.raises(ValueError, match="BENCH_REDIS"):
        BenchConfig.from_env({"BENCH_REDIS": "sentinel"})
    with pytest.raises(ValueError, match="BENCH_SHARDS"):
        BenchConfig.from_env({"BENCH_REDIS": "cluster", "BENCH_SHARDS": "0"})


def _summary(mode: str | None, shards: int, cpu_us: float, drain: float) -> dict:
    summary = {
        "when": "2025-06-01T09:00:00Z", "git_commit": "0123456789abcdef",
        "settings": {"buyers": 2000, "stock": 1000, "workers": 2, "stock_shards": shards},
        "phases": {"healthz": {"rps": 4000.0, "server_cpu_us_per_request": 100.0},
                   "admission": {"rps": 1500.0, "server_cpu_us_per_purchase": cpu_us,
                                 "redis_cpu_us_per_purchase": 25.0},
                   "drain": {"mode": "live", "orders": 1000, "orders_per_s_with_backlog": drain,
                             "orders_per_s_peak_1s": drain * 1.5}},
        "cpu_purchase_vs_healthz": cpu_us / 100.0, "verdict": {"passed": True, "orders": 1000},
    }
    if mode is not None:  # a run from before BENCH_REDIS has neither
        summary["settings"]["redis"] = mode
        summary["redis"] = {"mode": mode, "shards": shards}
    return summary


def test_compare_puts_single_and_cluster_runs_side_by_side(tmp_path, capsys):
    paths = []
    for name, summary in [("single1", _summary("single", 1, 300.0, 5000.0)),
                          ("cluster1", _summary("cluster", 1, 330.0, 5000.0)),
                          ("cluster4", _summary("cluster", 4, 360.0, 8000.0))]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
        paths.append(str(tmp_path / name))
    paths[2] += "/summary.json"  # a run directory or its summary.json

    assert compare.main(paths) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["A", "single/1", "B", "cluster/1", "C", "cluster/4"]
    rows = {line[:42].strip(): line[42:].split() for line in lines if line[:42].strip()}
    assert rows["redis"] == ["single", "cluster", "cluster", "differs"]
    assert rows["shards"] == ["1", "1", "4", "differs"]
    assert rows["admission server CPU us/purchase"] == ["300.0", "330.0", "360.0"]
    assert rows["CPU purchase / healthz"] == ["3.00", "3.30", "3.60"]
    assert rows["admission Redis CPU us/purchase"] == ["25.0", "25.0", "25.0"]
    assert rows["drain orders/s (backlog)"] == ["5,000.0", "5,000.0", "8,000.0"]
    out = "\n".join(lines)
    assert "  vs A" in out and "1.10x" in out and "1.60x" in out  # CPU B/A, drain C/A
    assert out.index("drain orders/s (backlog)") < out.index("other figures") < out.index("healthz req/s")

    # two runs: the A/B table with its change column, as before; an older run reads as single/1
    assert compare.main([paths[0], paths[2]]) == 0
    pair = capsys.readouterr().out
    assert pair.splitlines()[0].split() == ["A", "single/1", "B", "cluster/4", "change"]
    assert "+20.0% worse" in pair and "+60.0% better" in pair
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_summary(None, 1, 300.0, 5000.0)))
    assert compare.main([str(old), paths[1]]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["A", "single/1", "B", "cluster/1", "change"]
    assert compare.main([paths[0]]) == 2  # one run: nothing to compare


def test_the_printed_table_names_the_redis_mode_and_shards():
    summary = {**_summary("cluster", 4, 360.0, 8000.0), "redis": {"mode": "cluster", "shards": 4, "masters": 3},
               "verdict": None}
    assert report.table(summary).splitlines()[0].startswith("cluster (3 masters), 4 shards; 2 workers")
    older = {**_summary(None, 1, 300.0, 5000.0), "verdict": None}
    assert report.table(older).splitlines()[0].startswith("single Redis, 1 shard;")


@pytest.fixture(scope="module")
def local_cluster():
    cluster = LocalCluster(masters=3).start()
    yield cluster
    cluster.stop()


def test_on_a_cluster_keys_are_cleared_on_every_master_and_the_sampler_sums_the_shards(local_cluster):
    prefix = f"benchclear:{RUN_ID}:"
    config = dataclasses.replace(BenchConfig.from_env({"BENCH_REDIS": "cluster"}, redis_prefix=prefix),
                                 redis_url=local_cluster.url)
    settings = config.settings()
    k = Keys(prefix)
    redis = RedisCluster.from_url(local_cluster.url, decode_responses=True)
    try:
        sale, shards = 7, 4
        redis.hset(k.sale_window(sale), "shards", shards)
        for shard in range(shards):  # shard k: stock 10+k, admitted 5, results k, stream 5 - k
            redis.set(k.sale_stock(sale, shard), 10 + shard)
            redis.hset(k.sale_stats(sale, shard), "admitted", 5)
            for n in range(shard):
                redis.hset(k.sale_results(sale, shard), f"r{n}", "ok")
            for _ in range(5 - shard):
                redis.xadd(k.sale_stream(sale, shard), {"r": "x"})
        for n in range(40):  # keys in many slots, so on every master
            redis.set(f"{prefix}other:{{{n}}}", n)
        redis.set(f"keep:{RUN_ID}:{{x}}", 1)  # not under the prefix
        masters = {redis.get_node_from_key(f"{prefix}other:{{{n}}}").port for n in range(40)}
        assert len(masters) == 3

        sampler = Sampler(settings.redis_url, k, cluster=True, 
                          redis_pids=[proc.pid for proc in local_cluster.procs.values()])
        sampler.follow_sale(sale)
        state = sampler.sample()
        sampler.redis.close()
        assert (state["shards"], state["stock"], state["admitted"], state["results"], state["stream"]) == \
            (4, 46, 20, 6, 14)
        assert state["backlog_max_shard"] == 5  # shard 0: 5 admitted, no result yet
        assert state["redis_rss"] > 0  # the cluster's own nodes

        # the window; stock, stats, stream of each shard and results of shards 1-3; the 40 others
        assert asyncio.run(clear_keys(settings)) == 1 + 3 * shards + 3 + 40
        assert redis.get(f"keep:{RUN_ID}:{{x}}") == "1"
        assert not any(redis.scan_iter(match=f"{prefix}*", target_nodes=RedisCluster.PRIMARIES))
    finally:
        redis.delete(f"keep:{RUN_ID}:{{x}}")
        redis.close()


def test_a_background_burst_moves_the_mean_of_a_window_but_not_its_median_second():
    from bench.sampler import mysql_rate

    def window(extra_at: dict[int, int]):
        """Samples every 0.5 s for 5 s: the sampler's own statement each, plus `extra_at` ones."""
        rows, questions = [], 0
        for i in range(11):
            questions += 1 + extra_at.get(i, 0)
            rows.append((100 + i * 0.5, questions, questions))
        return rows

    quiet = mysql_rate(window({}), 100, 105)
    burst = mysql_rate(window({5: 6}), 100, 105)  # the pay-window sweep: six statements at once
    every_second = mysql_rate(window({i: 1 for i in range(2, 11, 2)}), 100, 105)  # one per second
    assert burst["questions_per_s"] > quiet["questions_per_s"] == 0
    assert burst["questions_per_s_median"] == quiet["questions_per_s_median"] == 0
    assert every_second["questions_per_s_median"] == 1.0
