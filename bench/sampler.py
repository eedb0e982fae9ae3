"""CPU time and RSS of the server, MariaDB, Redis and Locust from /proc, and the sale's state, over time.

A thread takes a sample every INTERVAL_S: per group, the CPU seconds (user + system) of its
processes since they started, and their summed RSS; while a sale is set, its Redis state
summed over the sale's stock shards (remaining stock, admissions so far, results written,
stream length), and the largest backlog (admitted, no result yet) of any one shard. Phases are
cut out of the series afterwards by time, so a phase's CPU is the difference of two
interpolated samples. On a Redis Cluster the shards' keys are read through the cluster client
(one pipeline, split per node) and the `redis` group is the cluster's own nodes.
"""
from __future__ import annotations

import csv
import re
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from flashsale.redis_keys import Keys

INTERVAL_S = 0.1
CHILDREN_REFRESH_S = 1.0
GROUPS = ("server", "mariadb", "redis", "locust")
SERVICE_NAMES = {"mariadb": ("mariadbd", "mysqld"), "redis": ("redis-server",)}


def find_service(names: tuple[str, ...]) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in names:
            found.append(proc)
    return found


def find_redis(url: str) -> list[psutil.Process]:
    """The redis-server serving `url` (its process title names its port: `redis-server 127.0.0.1:6379`),
    not the other Redis servers of the machine (a test run's cluster); all of them when none says so."""
    title = re.compile(rf":{urlsplit(url).port or 6379}(?!\d)")
    servers = find_service(SERVICE_NAMES["redis"])
    mine = []
    for proc in servers:
        try:
            if title.search(" ".join(proc.cmdline())):
                mine.append(proc)
        except psutil.Error:
            continue
    return mine or servers


@dataclass
class Group:
    """Processes followed together; a process that exits keeps its last CPU reading in the sum."""

    roots: list[psutil.Process] = field(default_factory=list)
    with_children: bool = True
    procs: dict[int, psutil.Process] = field(default_factory=dict)
    cpu_s: dict[int, float] = field(default_factory=dict)
    refreshed: float = 0.0

    def refresh(self, now: float) -> None:
        if now - self.refreshed < CHILDREN_REFRESH_S:
            return
        self.refreshed = now
        for root in self.roots:
            for proc in [root] + (self._children(root) if self.with_children else []):
                self.procs.setdefault(proc.pid, proc)

    @staticmethod
    def _children(root: psutil.Process) -> list[psutil.Process]:
        try:
            return root.children(recursive=True)
        except psutil.Error:
            return []

    def read(self) -> tuple[float, int]:
        rss = 0
        for pid, proc in list(self.procs.items()):
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    self.cpu_s[pid] = times.user + times.system
                    rss += proc.memory_info().rss
            except psutil.Error:
                del self.procs[pid]  # gone: its last CPU reading stays in cpu_s
        return sum(self.cpu_s.values()), rss


class Sampler:
    def __init__(self, redis_url: str, keys: Keys, *, cluster: bool = False,
                 redis_pids: list[int] | None = None):
        """`redis_pids`: the Redis processes to follow (the run's cluster nodes); by default the
        redis-server that serves `redis_url`."""
        self.groups = {name: Group() for name in GROUPS}
        self.groups["mariadb"] = Group(roots=find_service(SERVICE_NAMES["mariadb"]), with_children=False)
        if redis_pids is None:
            redis_procs = find_redis(redis_url)
        else:
            redis_procs = [p for p in (_process(pid) for pid in redis_pids) if p is not None]
        self.groups["redis"] = Group(roots=redis_procs, with_children=False)
        self.cluster = cluster
        if cluster:
            self.redis = RedisCluster.from_url(redis_url, decode_responses=True, socket_timeout=2)
        else:
            self.redis = Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
        self.keys = keys
        self.sale_id: int | None = None
        self.shards: int | None = None  # the sale's stock shards, read once from its window
        self.rows: list[dict] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def follow(self, group: str, pid: int) -> None:
        """Add a process (and, for server and Locust, its children) to a group."""
        with self.lock:
            g = self.groups[group]
            try:
                proc = psutil.Process(pid)
            except psutil.Error:
                return
            g.roots.append(proc)
            g.procs.setdefault(pid, proc)
            g.refreshed = 0.0

    def follow_sale(self, sale_id: int | None) -> None:
        self.sale_id = sale_id
        self.shards = None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        self.sample()  # a last one at the very end
        self.redis.close()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            self.sample()
            self.stop_event.wait(max(0.0, INTERVAL_S - (time.monotonic() - started)))

    def sample(self) -> dict:
        now = time.time()
        row: dict = {"t": now}
        with self.lock:
            for name, group in self.groups.items():
                group.refresh(now)
                cpu, rss = group.read()
                row[f"{name}_cpu_s"] = cpu
                row[f"{name}_rss"] = rss
        row.update(self._sale_state())
        with self.lock:
            self.rows.append(row)
        return row

    def _sale_state(self) -> dict:
        sale_id = self.sale_id
        if sale_id is None:
            return {}
        k = self.keys
        try:
            if self.shards is None:
                self.shards = max(1, int(self.redis.hget(k.sale_window(sale_id), "shards") or 1))
            with self.redis.pipeline(transaction=False) as pipe:
                for shard in range(self.shards):
                    pipe.get(k.sale_stock(sale_id, shard))
                    pipe.hget(k.sale_stats(sale_id, shard), "admitted")
                    pipe.hlen(k.sale_results(sale_id, shard))
                    pipe.xlen(k.sale_stream(sale_id, shard))
                replies = pipe.execute()
        except (RedisError, OSError):
            return {}
        return shard_sums([replies[i:i + 4] for i in range(0, len(replies), 4)])

    # --- reading the series ---
    def series(self) -> list[dict]:
        with self.lock:
            return list(self.rows)

    def write_csv(self, path: Path) -> None:
        rows = self.series()
        columns = ["t"] + [f"{g}_{m}" for g in GROUPS for m in ("cpu_s", "rss")] + list(SALE_COLUMNS)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)


SALE_COLUMNS = ("stock", "admitted", "results", "stream", "shards", "backlog_max_shard")


def shard_sums(per_shard: list[list]) -> dict:
    """(stock, admitted, results, stream length) of each shard -> the sale's sums, the shard
    count and the largest backlog (admitted, no result yet) of one shard. A figure no shard
    has (the sale's keys not written yet) stays None."""
    row: dict = {"shards": len(per_shard)}
    for i, name in enumerate(SALE_COLUMNS[:4]):
        values = [_int(shard[i]) for shard in per_shard]
        present = [v for v in values if v is not None]
        row[name] = sum(present) if present else None
    backlogs = [(_int(s[1]) or 0) - (_int(s[2]) or 0) for s in per_shard]
    row["backlog_max_shard"] = max(backlogs) if backlogs else None
    return row


def _int(value) -> int | None:
    return int(value) if value is not None else None


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def value_at(rows: list[dict], column: str, t: float) -> float | None:
    """A cumulative column (CPU seconds) at time t, interpolated between the samples around it."""
    times = [r["t"] for r in rows if r.get(column) is not None]
    values = [r[column] for r in rows if r.get(column) is not None]
    if not times:
        return None
    i = bisect_left(times, t)
    if i <= 0:
        return values[0]
    if i >= len(times):
        return values[-1]
    t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


def peak_in(rows: list[dict], column: str, start: float, end: float) -> float | None:
    """The largest sample of a column within [start, end] (or the nearest sample if none falls in)."""
    inside = [r[column] for r in rows if start <= r["t"] <= end and r.get(column) is not None]
    if inside:
        return max(inside)
    near = [r for r in rows if r.get(column) is not None]
    if not near:
        return None
    return min(near, key=lambda r: abs(r["t"] - (start + end) / 2))[column]


class MysqlCounter:
    """MariaDB's global statement counters ('Questions', 'Queries') every INTERVAL_S, in a thread.

    Each sample is one statement itself; mysql_rate() takes those out. The counters are global:
    other clients of the same MariaDB count too (the no-watchers window shows that floor).
    """

    INTERVAL_S = 0.5
    STATUS = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Queries')"

    def __init__(self, settings) -> None:
        self.settings = settings
        self.rows: list[tuple[float, int, int]] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-mysql-counter", daemon=True)
        self.error = ""

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)

    def _run(self) -> None:
        import asyncio

        import asyncmy

        from flashsale import db

        async def loop() -> None:
            conn = await asyncmy.connect(autocommit=True, **db.connect_kwargs(self.settings, database=None))
            try:
                async with conn.cursor() as cur:
                    while not self.stop_event.is_set():
                        started = time.monotonic()
                        await cur.execute(self.STATUS)
                        values = {name: int(value) for name, value in await cur.fetchall()}
                        self.rows.append((time.time(), values.get("Questions", 0), values.get("Queries", 0)))
                        await asyncio.sleep(max(0.0, self.INTERVAL_S - (time.monotonic() - started)))
            finally:
                await conn.ensure_closed()

        try:
            asyncio.run(loop())
        except Exception as exc:  # the bench goes on without MySQL figures
            self.error = f"{type(exc).__name__}: {exc}"

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["t", "questions", "queries"])
            writer.writerows(list(self.rows))


def mysql_rate(rows: list[tuple[float, int, int]], start: float, end: float, *, cover: bool = False) -> dict | None:
    """Statements per second within [start, end] from the samples inside it, less the sampler's own.
    With `cover`, a window holding fewer than two samples (a sale drained faster than the sampling
    interval) is measured from the last sample before it to the first after it."""
    inside = [r for r in rows if start <= r[0] <= end]
    if cover and len(inside) < 2:
        before = [r for r in rows if r[0] < start][-1:]
        after = [r for r in rows if r[0] > end][:1]
        inside = before + inside + after
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, q0, u0), (t1, q1, u1) = inside[0], inside[-1]
    own = len(inside) - 1
    seconds = t1 - t0
    return {"questions_per_s": round(max(0, q1 - q0 - own) / seconds, 1),
            "queries_per_s": round(max(0, u1 - u0 - own) / seconds, 1), "seconds": round(seconds, 2),
            "questions_per_s_median": _median_per_second(inside)}


def _median_per_second(samples: list[tuple[float, int, int]]) -> float | None:
    """The median of the window's whole seconds' statement rates (less the sampler's own): a
    background loop's burst (the pay-window sweep, every 4-6 s) moves one second of a window, not
    its median, while anything that asks every second moves every second."""
    spacing = (samples[-1][0] - samples[0][0]) / (len(samples) - 1)
    # a window of less than a second is one span
    step = min(max(1, round(1.0 / spacing)) if spacing > 0 else 1, len(samples) - 1)
    rates = []
    for i in range(0, len(samples) - step, step):  # whole spans; a short last one is left out
        (ta, qa, _), (tb, qb, _) = samples[i], samples[i + step]
        if tb > ta:
            rates.append(max(0, qb - qa - step) / (tb - ta))
    if not rates:
        return None
    rates.sort()
    mid = len(rates) // 2
    return round(rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2, 1)
