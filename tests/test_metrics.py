"""GET /metrics: counts of every worker process merged, route templates, the sales' stream gauges."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis as SyncRedis

from flashsale.redis_keys import Keys
from flashsale.settings import ROOT

from tests.support.waiting import wait_until, wait_until_sync

SALE_ID = 900_001  # far above any id the test database hands out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_workers(settings, tmp_path):
    """`run.py serve --workers 2` on a free port against this run's database; (base url, metrics dir)."""
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    env = {
        **os.environ,
        "FLASHSALE_DB_NAME": settings.db_name,
        "FLASHSALE_REDIS_URL": settings.redis_url,
        "FLASHSALE_REDIS_PREFIX": settings.redis_prefix,
        "FLASHSALE_SECRET_KEY": settings.secret_key,
        "FLASHSALE_VAR_DIR": str(tmp_path / "var"),
        "FLASHSALE_BACKGROUND_TASKS": "false",  # no consumer touches the streams made below
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "run.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # each worker makes its metric files while building its app, before it listens
        wait_until_sync(lambda: len(list(metrics_dir.glob("counter_*.db"))) == 2, timeout=30,
                        what="two workers' metric files")
        wait_until_sync(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), timeout=30, what="the server to answer")
        yield f"http://127.0.0.1:{port}", metrics_dir
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
            raise AssertionError("the server did not stop on SIGTERM:\n" + log_path.read_text())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, whatever the order of its labels."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if found == labels:
            return float(match.group(4))
    return None


def per_worker_counts(metrics_dir: Path, route: str, status: str) -> dict[str, float]:
    """Requests each worker process recorded in its own file, by pid."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if (sample.name == "flashsale_http_requests_total" and sample.labels.get("route") == route
                        and sample.labels.get("status") == status):
                    total += sample.value
        counts[path.stem.removeprefix("counter_")] = total
    return counts


async def fetch_fresh(base: str, method: str, path: str, times: int) -> list[int]:
    """`times` requests, each on a new connection so that the kernel spreads them over the workers."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async def one() -> int:
            async with http.request(method, base + path) as response:
                await response.read()
                return response.status
        return list(await asyncio.gather(*(one() for _ in range(times))))


async def scrape(base: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/metrics") as response:
            assert response.status == 200, await response.text()
            assert response.headers["Content-Type"].startswith("text/plain")
            return await response.text()


async def scrape_until(base: str, check, timeout_s: float = 5.0) -> str:
    """Scrape until `check(text)` holds: another worker's tallies arrive within a second."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = await scrape(base)
        if check(text) or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.2)


async def test_metrics_merges_the_request_counts_of_both_workers(two_workers):
    base, metrics_dir = two_workers
    before = await scrape(base)
    healthz_before = sample_value(before, "flashsale_http_requests_total",
                                  route="/healthz", method="GET", status="200") or 0

    # rounds of fresh connections until both workers have answered some (a worker that is still
    # starting up gets none); each worker flushes its tallies to its file within a second
    sent = 0
    deadline = time.monotonic() + 30
    while True:
        assert await fetch_fresh(base, "GET", "/healthz", 30) == [200] * 30
        sent += 30
        await wait_until(lambda: sum(per_worker_counts(metrics_dir, "/healthz", "200").values())
                         >= healthz_before + sent, timeout=5, what="the workers' flush of every request sent")
        counts = per_worker_counts(metrics_dir, "/healthz", "200")
        if len(counts) == 2 and all(counts.values()):
            break
        assert time.monotonic() < deadline, f"one worker answered nothing: {counts}"
    assert await fetch_fresh(base, "GET", "/no/such/page", 4) == [404] * 4
    assert await fetch_fresh(base, "GET", "/api/admin/users/12345", 3) == [401] * 3

    want = healthz_before + sent
    text = await scrape_until(base, lambda t: (
        sample_value(t, "flashsale_http_requests_total", route="/healthz", method="GET", status="200") == want
        and sample_value(t, "flashsale_http_requests_total", route="unmatched", method="GET", status="404") == 4
        and sample_value(t, "flashsale_http_requests_total",
                         route="/api/admin/users/{id}", method="GET", status="401") == 3))
    assert sample_value(text, "flashsale_http_requests_total",
                        route="/healthz", method="GET", status="200") == want
    # a dynamic route is counted under its template; unmatched paths share one label value
    assert sample_value(text, "flashsale_http_requests_total",
                        route="/api/admin/users/{id}", method="GET", status="401") == 3
    assert sample_value(text, "flashsale_http_requests_total",
                        route="unmatched", method="GET", status="404") == 4
    assert sample_value(text, "flashsale_http_request_duration_seconds_count", route="/healthz") == want
    assert sample_value(text, "flashsale_http_request_duration_seconds_bucket",
                        route="/healthz", le="+Inf") == want

    by_worker = per_worker_counts(metrics_dir, "/healthz", "200")
    assert len(by_worker) == 2
    assert all(count > 0 for count in by_worker.values()), by_worker
    assert sum(by_worker.values()) == want

    # the engine's counters are declared, so a scrape shows them before the first sale
    for name in ("flashsale_orders_written_total", "flashsale_reclaims_total", "flashsale_dead_letters_total",
                 "flashsale_consumer_batch_size_count"):
        assert sample_value(text, name) == 0, name


async def test_metrics_reports_stream_lag_pending_and_dead_letters_of_active_sales(two_workers, settings):
    base, _ = two_workers
    keys = Keys(settings.redis_prefix)
    redis = SyncRedis.from_url(settings.redis_url, decode_responses=True)
    stream, dead = keys.sale_stream(SALE_ID), keys.sale_dead(SALE_ID)
    try:
        redis.xgroup_create(stream, keys.consumer_group(), id="0", mkstream=True)
        for n in range(3):
            redis.xadd(stream, {"n": n})
        redis.xreadgroup(keys.consumer_group(), "test-consumer", {stream: ">"}, count=1)
        redis.xadd(dead, {"n": 0})
        redis.xadd(dead, {"n": 1})
        redis.set(keys.sale_stock(SALE_ID), 7)
        redis.sadd(keys.active_sales(), SALE_ID)

        text = await scrape(base)
        sale = str(SALE_ID)
        assert sample_value(text, "flashsale_stream_length", sale=sale) == 3
        assert sample_value(text, "flashsale_stream_pending", sale=sale) == 1
        assert sample_value(text, "flashsale_stream_lag", sale=sale) == 2  # 3 added, 1 delivered
        assert sample_value(text, "flashsale_dead_letter_stream_length", sale=sale) == 2
        assert sample_value(text, "flashsale_stock_remaining", sale=sale) == 7
    finally:
        redis.srem(keys.active_sales(), SALE_ID)
        redis.delete(stream, dead, keys.sale_stock(SALE_ID))
        redis.close()


async def test_metrics_in_one_process_counts_requests_by_template(client):
    before = await (await client.get("/metrics")).text()
    count_before = sample_value(before, "flashsale_http_requests_total",
                                route="/api/admin/users/{id}", method="GET", status="401") or 0
    for user_id in (1, 2):
        r = await client.get(f"/api/admin/users/{user_id}")
        assert r.status == 401, await r.text()
    r = await client.get("/metrics")
    assert r.status == 200
    text = await r.text()
    assert sample_value(text, "flashsale_http_requests_total",
                        route="/api/admin/users/{id}", method="GET", status="401") == count_before + 2
