"""`make bench`: prepare, serve, measure /healthz, log the buyers in, run the sale, drain, judge, report.

Knobs are BENCH_* environment variables (bench/config.py lists them all), e.g.
    make bench BENCH_BUYERS=20000 BENCH_STOCK=10000 BENCH_USERS=200 BENCH_WORKERS=2
    make bench BENCH_REDIS=cluster BENCH_SHARDS=4   # on a local 3-master Redis Cluster started for the run
Exit status 0 when the verdict holds, 1 when it fails, 2 when the run itself broke.
"""
from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run_bench.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
import uvloop  # noqa: E402
from redis import Redis  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402
from redis.exceptions import ResponseError  # noqa: E402

from bench import report  # noqa: E402
from bench.config import CLUSTER_MASTERS, ROOT, BenchConfig  # noqa: E402
from bench.login import login_all  # noqa: E402
from bench.prepare import prepare, schedule_sale  # noqa: E402
from bench.calibrate import bare_insert  # noqa: E402
from bench.sampler import MysqlCounter, Sampler  # noqa: E402
from bench.verdict import ClientView, compute  # noqa: E402
from flashsale import db  # noqa: E402
from flashsale.redis_keys import Keys  # noqa: E402
from flashsale.settings import Settings  # noqa: E402

LOCUSTFILE = ROOT / "bench" / "locustfile.py"
WATCHERS = ROOT / "bench" / "watchers.py"
SALE_LENGTH_S = 3600  # the sale stays open well past the run: "ended" is not what is measured
SERVER_START_TIMEOUT_S = 60
# -> when each order of the sale was written (created_at is the INSERT statement's time)
ORDER_TIMES = """
SELECT request_id, UNIX_TIMESTAMP(created_at) AS written FROM orders WHERE flash_sale_id = %s ORDER BY id"""


class RunBroke(RuntimeError):
    """The run could not be carried out (as opposed to a failed verdict)."""


def say(started: float, message: str) -> None:
    print(f"[bench {time.monotonic() - started:6.1f}s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def git_state() -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip() != ""
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, None


class Server:
    """`run.py serve` in its own session, pointed at the bench database and keys."""

    def __init__(self, config: BenchConfig, port: int, log_path: Path, *, background: bool = True):
        self.config, self.port, self.log_path, self.background = config, port, log_path, background
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, on_workers=None) -> None:
        """Spawn the server; call on_workers(pids) as soon as its workers exist; wait until it answers."""
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(self.config.server_env())
        env["FLASHSALE_BACKGROUND_TASKS"] = "true" if self.background else "false"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "run.py", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.config.workers)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        announced = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RunBroke(f"the server exited with {self.proc.returncode}; see {self.log_path}")
            workers = self.worker_pids()
            if not announced and len(workers) >= self.config.workers:
                announced = True
                if on_workers is not None:
                    on_workers(workers)
            if announced and answers(self.base_url + "/readyz"):
                time.sleep(1.0)  # the last worker may still be binding its socket
                return
            time.sleep(0.05)
        raise RunBroke(f"the server did not become ready in {SERVER_START_TIMEOUT_S} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        if self.config.workers == 1:
            return [self.proc.pid]
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return []
        # spawn also starts a resource tracker; the workers are the ones running spawn_main
        return [c.pid for c in children if "spawn_main" in " ".join(_cmdline(c))]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # the parent forwards it to the workers
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def cores_for(config: BenchConfig) -> tuple[set[int] | None, set[int] | None]:
    """(server cores, load-generator cores): the last core for Locust and the watchers, the rest
    for the server workers, so that neither steals the other's CPU; None: no pinning."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if not config.pin or len(available) < 2:
        return None, None
    return set(available[:-1]), {available[-1]}


def pin(pids: list[int], cores: set[int] | None) -> None:
    if not cores:
        return
    for pid in pids:
        try:
            psutil.Process(pid).cpu_affinity(sorted(cores))
        except psutil.Error:
            pass


def run_locust(config: BenchConfig, run_dir: Path, phase: str, classes: list[str], users: int,
               spawn_rate: float, run_time_s: int, base_url: str, sampler: Sampler,
               plan_path: Path | None = None, cores: set[int] | None = None) -> int:
    """Locust headless, bounded in time, against 127.0.0.1 only; returns its exit status."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base_url,
               "-u", str(users), "-r", str(spawn_rate), "-t", f"{run_time_s}s", "--stop-timeout", "5",
               "--csv", str(run_dir / phase), "--csv-full-history", "--html", str(run_dir / f"{phase}.html"),
               "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    if config.locust_processes > 1:
        command += ["--processes", str(config.locust_processes)]
    command += classes
    env = {**os.environ, "BENCH_PHASE": phase, "BENCH_SAMPLES_DIR": str(run_dir)}
    if plan_path is not None:
        env["BENCH_PLAN"] = str(plan_path)
    with open(run_dir / f"locust-{phase}.log", "ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pin([proc.pid], cores)  # before it spawns anything: its children inherit the affinity
    sampler.follow("locust", proc.pid)
    try:
        return proc.wait(run_time_s + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise RunBroke(f"Locust ({phase}) did not stop in time; see locust-{phase}.log") from None
    except BaseException:  # Ctrl-C, SIGTERM: no load left running against a server that is going away
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise


def start_profilers(run_dir: Path, pids: list[int]) -> list[subprocess.Popen]:
    """py-spy on each server worker until stopped (SIGINT makes it write its flame graph)."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return []
    procs = []
    for pid in pids:
        out = run_dir / f"profile-{pid}.svg"
        log = open(run_dir / f"py-spy-{pid}.log", "wb")
        procs.append(subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
                                       "--format", "flamegraph", "--output", str(out)],
                                      stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def stop_profilers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_drained(settings: Settings, sale_id: int, timeout_s: float) -> float | None:
    """Until every admitted request has its result and nothing waits in the stream; the time, or None."""
    k = Keys(settings.redis_prefix)
    client = RedisCluster if settings.redis_cluster else Redis
    redis = client.from_url(settings.redis_url, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    try:
        shards = int(redis.hget(k.sale_window(sale_id), "shards") or 1)
        while time.monotonic() < deadline:
            admitted = sum(int(redis.hget(k.sale_stats(sale_id, s), "admitted") or 0) for s in range(shards))
            results = sum(redis.hlen(k.sale_results(sale_id, s)) for s in range(shards))
            idle = True
            for s in range(shards):
                try:
                    groups = redis.xinfo_groups(k.sale_stream(sale_id, s))
                except ResponseError:
                    groups = []
                group = next((g for g in groups if g["name"] == k.consumer_group()), None)
                idle = idle and (group is None or (not group["pending"] and not group.get("lag")))
            if results >= admitted and idle:
                return time.time()
            time.sleep(0.05)
    finally:
        redis.close()
    return None


async def order_times(settings: Settings, sale_id: int) -> list[tuple[str, float]]:
    pool = await db.create_pool(settings.replace(db_pool_min=1, db_pool_max=1))
    try:
        return [(r["request_id"] or "", float(r["written"])) for r in await db.fetch_all(pool, ORDER_TIMES, (sale_id,))]
    finally:
        await db.close_pool(pool)


class WatcherProcess:
    """bench/watchers.py: N WebSockets on the sale's live feed, held until stop()."""

    def __init__(self, run_dir: Path, base_url: str, sale_id: int, count: int):
        self.out = run_dir / "watchers.json"
        self.log = run_dir / "watchers.log"
        url = base_url.replace("http://", "ws://") + f"/api/seckill/{sale_id}/live"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(WATCHERS), url, str(count), str(self.out)],
                                         cwd=ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True)

    def wait_ready(self, timeout_s: float) -> tuple[int, int]:
        """(opened, failed) once every socket was tried."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            line = self.proc.stdout.readline().decode().split()
            if line[:1] == ["ready"]:
                return int(line[1]), int(line[2])
            if not line and self.proc.poll() is not None:
                break
        raise RunBroke(f"the watchers did not open in {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> dict | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return json.loads(self.out.read_text()) if self.out.exists() else None


def start_cluster(started: float):
    """The run's own Redis Cluster: CLUSTER_MASTERS masters, no replicas, no persistence, on free
    ports, from tests/support/redis_cluster.py. Its nodes are left unpinned, like the system
    Redis of a single-Redis run: neither on the server's cores nor on the load generators'."""
    from tests.support.redis_cluster import LocalCluster

    say(started, f"starting a local Redis Cluster: {CLUSTER_MASTERS} masters, no replicas")
    cluster = LocalCluster(masters=CLUSTER_MASTERS)
    try:
        cluster.start()
    except BaseException as exc:
        cluster.stop()
        if isinstance(exc, Exception):
            raise RunBroke(f"the local Redis Cluster did not start: {exc}") from exc
        raise
    say(started, f"  nodes on ports {', '.join(map(str, cluster.ports))}")
    return cluster


def redis_record(config: BenchConfig, cluster) -> dict:
    """Where the run's Redis was: run.json and summary.json keep it as `redis`."""
    url = config.settings().redis_url
    parts = urllib.parse.urlsplit(url)
    record: dict = {"mode": config.redis, "shards": config.stock_shards,
                    "endpoint": f"{parts.hostname}:{parts.port or 6379}", "pinned": False,
                    "server_version": _redis_version(url)}
    if cluster is not None:
        record.update({"masters": CLUSTER_MASTERS, "replicas": 0, "ports": list(cluster.ports)})
    return record


def _redis_version(url: str) -> str | None:
    try:
        with Redis.from_url(url, socket_timeout=2) as redis:
            return redis.info("server").get("redis_version")
    except Exception:
        return None


def raise_open_files() -> None:
    """As many open files as allowed: the server (a child) holds a socket per watcher and buyer."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(config: BenchConfig) -> tuple[dict, Path]:
    """The whole bench, on its own Redis Cluster with BENCH_REDIS=cluster (stopped at the end,
    whatever happens); returns the summary and the run directory."""
    started = time.monotonic()
    if not config.workers:  # one server process per core it may use
        server_cores, _ = cores_for(config)
        config = dataclasses.replace(config, workers=len(server_cores) if server_cores else os.cpu_count() or 1)
    cluster = start_cluster(started) if config.redis == "cluster" else None
    try:
        if cluster is not None:
            config = dataclasses.replace(config, redis_url=cluster.url)
        return _run(config, started, cluster)
    finally:
        if cluster is not None:
            cluster.stop()
            say(started, "the local Redis Cluster is stopped")


def _run(config: BenchConfig, started: float, cluster) -> tuple[dict, Path]:
    when = dt.datetime.now(dt.timezone.utc)
    results_dir = Path(config.results_dir)
    run_dir = results_dir / when.strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=False)
    commit, dirty = git_state()
    record: dict = {"when": when.isoformat(timespec="seconds").replace("+00:00", "Z"), "git_commit": commit,
                    "git_dirty": dirty, "hardware": report.hardware(), "config": config.public(),
                    "redis": redis_record(config, cluster), "marks": {}, "notes": []}
    settings = config.settings()
    marks = record["marks"]

    say(started, f"preparing {config.buyers} buyers in {config.db_name} (keys under {config.redis_prefix!r}, "
                 f"{'the local cluster' if cluster is not None else 'Redis ' + record['redis']['endpoint']})")
    prepared = asyncio.run(prepare(settings, config.buyers, config.stock, run_dir / "accounts.csv"))
    marks["prepare_s"] = round(prepared.seconds, 2)

    raise_open_files()
    server_cores, load_cores = cores_for(config)
    record["affinity"] = {"server": sorted(server_cores) if server_cores else None,
                          "load": sorted(load_cores) if load_cores else None,
                          "redis": None}  # never pinned: the system Redis, or the run's cluster nodes
    port = config.port or free_port()
    server = Server(config, port, run_dir / "server.log", background=not config.deferred_drain)
    sampler = Sampler(settings.redis_url, Keys(settings.redis_prefix), cluster=settings.redis_cluster,
                      redis_pids=[proc.pid for proc in cluster.procs.values()] if cluster is not None else None)
    profilers: list[subprocess.Popen] = []
    drain_server: Server | None = None
    watchers: WatcherProcess | None = None
    mysql = MysqlCounter(settings)
    sale_id = None
    try:
        say(started, f"starting the server: {config.workers} worker(s) on 127.0.0.1:{port}"
                     + (f", pinned to cores {sorted(server_cores)}; load on {sorted(load_cores)}" if server_cores else ""))
        server.start(on_workers=lambda pids: pin(pids, server_cores))
        pin([server.proc.pid] + server.worker_pids(), server_cores)
        sampler.follow("server", server.proc.pid)
        sampler.start()
        mysql.start()

        say(started, f"logging {config.buyers} buyers in")
        marks["login"] = uvloop.run(login_all(server.base_url, run_dir / "accounts.csv", run_dir / "sessions.csv",
                                               prepared.password, config.login_concurrency))
        say(started, f"  {marks['login']['per_s']:.0f} logins/s")

        spawn_s = (config.users + config.browsers) / config.spawn_rate
        # before the opening: a window without watchers, the page storm, the watchers opening, a window
        # with them, the /healthz reference (Locust takes about 2 s to start and stop)
        before = (2 * config.watch_window_s + config.watchers / 200 + 3.0 if config.watchers else 0.0) + \
            (config.page_storm_s + 3.0 if config.page_storm_s > 0 else 0.0) + config.healthz_s + 4.0
        delay = config.start_delay_s or (before + spawn_s + 4.0 + (2.0 if config.locust_processes > 1 else 0.0))
        start_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay)).replace(microsecond=0) \
            + dt.timedelta(seconds=1)
        sale = asyncio.run(schedule_sale(settings, prepared.goods_id, config.stock, config.per_user_limit,
                                         start_at, SALE_LENGTH_S, config.stock_shards))
        sale_id = record["sale_id"] = sale["id"]
        sampler.follow_sale(sale_id)
        plan = {"sale_id": sale_id, "goods_id": prepared.goods_id, "start_epoch": start_at.timestamp(),
                "sessions_file": str(run_dir / "sessions.csv"), "users": config.users, "browsers": config.browsers,
                "locust_processes": config.locust_processes, "double_click": config.double_click,
                # with the consumers held back no result would come: polling would only add load
                "poll": config.poll and not config.deferred_drain, "poll_first_ms": config.poll_first_ms, "poll_max_ms": config.poll_max_ms,
                "poll_timeout_s": config.poll_timeout_s, "result_wait_ms": config.result_wait_ms,
                "per_user_limit": config.per_user_limit}
        plan_path = run_dir / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=2))
        marks["sale_opens"] = start_at.timestamp()

        if config.watchers:
            say(started, f"{config.watch_window_s:.0f} s without watchers (MySQL queries/s, server CPU)")
            marks["unwatched"] = {"start": time.time()}
            time.sleep(config.watch_window_s)
            marks["unwatched"]["end"] = time.time()
        if config.page_storm_s > 0:
            say(started, f"page storm: the sale page refreshed by {config.users} users for {config.page_storm_s:.0f} s")
            marks["page_storm"] = {"start": time.time()}
            run_locust(config, run_dir, "pages", ["PageStormUser"], config.users, config.users,
                       int(config.page_storm_s + 1), server.base_url, sampler, plan_path, cores=load_cores)
            marks["page_storm"]["end"] = time.time()
        if config.watchers:
            say(started, f"opening {config.watchers} watchers on the live feed")
            watchers = WatcherProcess(run_dir, server.base_url, sale_id, config.watchers)
            pin([watchers.proc.pid], load_cores)
            sampler.follow("locust", watchers.proc.pid)
            opened, failed = watchers.wait_ready(60 + config.watchers / 50)
            marks["watchers_ready"] = {"at": time.time(), "opened": opened, "failed": failed}
            say(started, f"  {opened} open, {failed} failed; {config.watch_window_s:.0f} s with them")
            marks["watched"] = {"start": time.time()}
            time.sleep(config.watch_window_s)
            marks["watched"]["end"] = time.time()
        # the reference right before the sale, on the server as the sale finds it (its buyers logged
        # in, the watchers open): the machine's speed drifts over a minute, and so would a reference
        # taken before the logins
        say(started, f"/healthz for {config.healthz_s} s at {config.users} concurrent users (the reference "
                     "before the sale)")
        marks["healthz"] = {"start": time.time()}
        run_locust(config, run_dir, "healthz", ["HealthzUser"], config.users, config.users,
                   config.healthz_s + 1, server.base_url, sampler, cores=load_cores)
        marks["healthz"]["end"] = time.time()
        if time.time() > start_at.timestamp() - spawn_s:
            record["notes"].append("the phases before the sale ran past its opening: buyers started late")

        if config.pyspy:
            profilers = start_profilers(run_dir, server.worker_pids())
        say(started, f"sale {sale_id}: stock {config.stock}, opens {start_at:%H:%M:%S}Z; "
                     f"{config.users} buyers + {config.browsers} browsers")
        marks["sale"] = {"start": time.time()}
        classes = ["Buyer", "Browser"] if config.browsers > 0 else ["Buyer"]
        run_locust(config, run_dir, "sale", classes, config.users + config.browsers,
                   config.spawn_rate, config.duration_s, server.base_url, sampler, plan_path, cores=load_cores)
        marks["sale"]["end"] = time.time()
        if watchers is not None:
            record["watchers"] = watchers.stop()
            marks["watchers_closed"] = time.time()
            watchers = None
        if marks["sale"]["end"] - marks["sale"]["start"] >= config.duration_s:
            record["notes"].append(f"the sale run hit BENCH_DURATION ({config.duration_s} s) before every "
                                   "buyer finished")
        stop_profilers(profilers)
        profilers = []
        # the reference again, on the same server after the sale: the ratios divide by the mean of
        # the two, and the drift between them says how steady the machine was over the run
        say(started, f"/healthz again for {config.healthz_s} s (the reference after the sale)")
        marks["healthz_after"] = {"start": time.time()}
        run_locust(config, run_dir, "healthz_after", ["HealthzUser"], config.users, config.users,
                   config.healthz_s + 1, server.base_url, sampler, cores=load_cores)
        marks["healthz_after"]["end"] = time.time()

        if config.deferred_drain:
            say(started, "stopping the sale server; draining the stream with a fresh server")
            server.stop()
            drain_server = Server(config, free_port(), run_dir / "server-drain.log", background=True)
            marks["drain_server_started"] = time.time()

            def follow_drain(pids: list[int]) -> None:  # its consumers write while it comes up: follow at once
                pin(pids, server_cores)
                for pid in pids:
                    sampler.follow("server", pid)
                if config.pyspy:  # the drain's own profile (profile-<pid>.svg of the drain server's workers)
                    profilers.extend(start_profilers(run_dir, pids))

            drain_server.start(on_workers=follow_drain)
        say(started, "waiting for the stream to drain")
        drained = wait_drained(settings, sale_id, config.drain_timeout_s)
        marks["drained"] = drained
        stop_profilers(profilers)
        profilers = []
        if drained is None:
            record["notes"].append(f"the stream did not drain within {config.drain_timeout_s} s")
    finally:
        if watchers is not None:
            record["watchers"] = watchers.stop()
        stop_profilers(profilers)
        mysql.stop()
        mysql.write_csv(run_dir / "mysql.csv")
        if mysql.error:
            record["notes"].append(f"MySQL counters: {mysql.error}")
        sampler.stop()
        server.stop()
        if drain_server is not None:
            drain_server.stop()
        sampler.write_csv(run_dir / "timeline.csv")

    if sale_id is None:
        raise RunBroke("no sale was scheduled")
    say(started, "judging")
    times = asyncio.run(order_times(settings, sale_id))
    with open(run_dir / "orders.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", "written"])
        writer.writerows(times)
    if times:
        say(started, f"calibrating: {len(times)} rows of bare multi-row INSERT in batches of {settings.consumer_batch}")
        record["bare_insert"] = asyncio.run(bare_insert(settings, len(times), settings.consumer_batch))
    client = ClientView.from_samples(run_dir)
    record["verdict"] = asyncio.run(compute(settings, sale_id, client))
    for path in (run_dir / "server.log", run_dir / "server-drain.log"):
        if path.exists() and "Traceback" in path.read_text(errors="replace"):
            record["notes"].append(f"{path.name} holds tracebacks")
    (run_dir / "run.json").write_text(json.dumps(record, indent=2))
    for secret in ("sessions.csv", "accounts.csv"):  # session cookies: no use after the run
        (run_dir / secret).unlink(missing_ok=True)
    summary = report.write(run_dir, results_dir)
    say(started, f"report in {run_dir}")
    return summary, run_dir


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: the server and the cluster are stopped


def main() -> int:
    config = BenchConfig.from_env()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        summary, run_dir = run(config)
    except RunBroke as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print()
    print(report.table(summary))
    for note in summary.get("notes", []):
        print("note:", note)
    print(f"\nsummary: {run_dir / 'summary.json'}  chart: {run_dir / 'chart.png'}")
    return 0 if summary["verdict"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
