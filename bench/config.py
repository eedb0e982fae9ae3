"""The benchmark's knobs: BENCH_* environment variables (or `make bench BENCH_X=...`), with defaults."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from flashsale.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

RESULTS_DIR = ROOT / "bench" / "results"
# Bench accounts are hashed with this cost, recorded in each hash, and the bench server runs
# with the same cost so that logging in does not re-hash at the production cost: 20,000
# logins at scrypt n=2**14 would take minutes of CPU and measure only the KDF.
BENCH_SCRYPT = {"scrypt_n": 16, "scrypt_r": 1, "scrypt_p": 1}
REDIS_MODES = ("single", "cluster")
CLUSTER_MASTERS = 3  # BENCH_REDIS=cluster: a local cluster of this many masters, no replicas


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    buyers: int = 20_000  # accounts that each try to buy once
    stock: int = 10_000  # units in the sale
    users: int = 200  # concurrent Locust buyers (connections) in the sale and in the /healthz phase
    browsers: int = 10  # Locust users walking the shop pages meanwhile
    workers: int = 0  # server processes (run.py serve --workers); 0: one per server core (see pin)
    duration_s: int = 120  # hard cap on the sale's Locust run
    spawn_rate: float = 200.0  # Locust users started per second (all before the sale opens)
    healthz_s: int = 10  # length of the /healthz phase
    per_user_limit: int = 1
    stock_shards: int = 1  # the sale's stock shards (1-64): a hot sale split over Redis hash tags
    redis: str = "single"  # single: FLASHSALE_REDIS_URL (default the local Redis); cluster: a local cluster for the run
    double_click: float = 0.1  # share of buyers who send their purchase 2-3 times at once
    locust_processes: int = 1  # Locust load processes (--processes); 1 keeps a core for the server
    start_delay_s: float = 0.0  # sale start after the logins; 0: enough to spawn every user
    login_concurrency: int = 64
    poll: bool = True  # buyers poll /result until their order shows (off: admission alone is measured)
    poll_first_ms: int = 200  # pause before re-polling a `queued` answer the server did not hold, doubling...
    poll_max_ms: int = 2000  # ...up to this
    poll_timeout_s: float = 60.0  # a buyer stops polling after this
    result_wait_ms: int = 5000  # each /result call long-polls this long (wait_ms); re-polled while `queued`
    watchers: int = 2000  # WebSockets open on the sale page's live feed from before the start to the end
    watch_window_s: float = 5.0  # length of the MySQL/CPU windows without and with the watchers
    page_storm_s: float = 5.0  # the sale page refreshed back to back by `users` before the start (0: none)
    pin: bool = True  # server on cores 0..n-2, load generators on the last core (needs 2+ cores)
    drain_timeout_s: float = 60.0  # wait this long for the stream to drain after the buyers
    deferred_drain: bool = False  # no consumers during the sale (and no polling); then drain in one go
    pyspy: bool = False  # record a py-spy profile of each server worker during the sale (and the deferred drain)
    port: int = 0  # 0: a free port
    db_name: str = "flashsale_bench"
    redis_prefix: str = "bench:"
    results_dir: str = str(RESULTS_DIR)
    # set by run_bench.py once it started the local cluster (any node's URL); not a knob. Empty:
    # FLASHSALE_REDIS_URL (with BENCH_REDIS=cluster, a cluster of one's own that it names)
    redis_url: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "BenchConfig":
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for field, name in ENV_NAMES.items():
            raw = env.get(name)
            if raw is not None and raw != "":
                values[field] = _convert(types[field], raw)
        values.update(overrides)
        if isinstance(values.get("redis"), str):
            values["redis"] = values["redis"].strip().lower()
        config = cls(**values)
        if config.redis not in REDIS_MODES:
            raise ValueError(f"BENCH_REDIS must be one of {', '.join(REDIS_MODES)}, not {config.redis!r}")
        if config.buyers < 1 or config.stock < 1 or config.users < 1 or config.workers < 0:
            raise ValueError("BENCH_BUYERS, BENCH_STOCK and BENCH_USERS must be at least 1, BENCH_WORKERS at least 0")
        if not 1 <= config.stock_shards <= 64:
            raise ValueError("BENCH_SHARDS must be 1 to 64")
        if not config.redis_prefix:
            raise ValueError("BENCH_REDIS_PREFIX must not be empty: the bench clears every key under it")
        return config

    def settings(self, **overrides) -> Settings:
        """The server's settings for the bench database and key space (on the run's Redis)."""
        return Settings.from_env(db_name=self.db_name, redis_prefix=self.redis_prefix,
                                 **{**BENCH_SCRYPT, **self.redis_settings(), **overrides})

    def redis_settings(self) -> dict[str, object]:
        """The Redis the run uses: the local one (or FLASHSALE_REDIS_URL), or the run's cluster."""
        values: dict[str, object] = {"redis_cluster": self.redis == "cluster"}
        if self.redis_url:
            values["redis_url"] = self.redis_url
        return values

    def server_env(self) -> dict[str, str]:
        """FLASHSALE_* variables that point a `run.py serve` at the bench database and keys."""
        return {
            "FLASHSALE_DB_NAME": self.db_name,
            "FLASHSALE_REDIS_PREFIX": self.redis_prefix,
            "FLASHSALE_SCRYPT_N": str(BENCH_SCRYPT["scrypt_n"]),
            "FLASHSALE_SCRYPT_R": str(BENCH_SCRYPT["scrypt_r"]),
            "FLASHSALE_SCRYPT_P": str(BENCH_SCRYPT["scrypt_p"]),
            "FLASHSALE_ACCESS_LOG": "false",
            # the bench's buyers and watchers all come from one address, standing for thousands
            "FLASHSALE_REGISTER_IP_LIMIT": "1000000",
            "FLASHSALE_WS_PER_CLIENT": "100000",
            "FLASHSALE_REDIS_CLUSTER": "true" if self.redis == "cluster" else "false",
            **({"FLASHSALE_REDIS_URL": self.redis_url} if self.redis_url else {}),
        }

    def public(self) -> dict[str, object]:
        values = dataclasses.asdict(self)
        del values["redis_url"]  # a port of this run only; run.json's `redis` says where Redis was
        return values


ENV_NAMES = {
    "buyers": "BENCH_BUYERS", "stock": "BENCH_STOCK", "users": "BENCH_USERS", "browsers": "BENCH_BROWSERS",
    "workers": "BENCH_WORKERS", "duration_s": "BENCH_DURATION", "spawn_rate": "BENCH_SPAWN_RATE",
    "healthz_s": "BENCH_HEALTHZ_S", "per_user_limit": "BENCH_LIMIT", "stock_shards": "BENCH_SHARDS", "redis": "BENCH_REDIS",
    "double_click": "BENCH_DOUBLE_CLICK",
    "locust_processes": "BENCH_LOCUST_PROCESSES", "start_delay_s": "BENCH_START_DELAY_S",
    "login_concurrency": "BENCH_LOGIN_CONCURRENCY", "poll": "BENCH_POLL", "poll_first_ms": "BENCH_POLL_FIRST_MS",
    "poll_max_ms": "BENCH_POLL_MAX_MS", "poll_timeout_s": "BENCH_POLL_TIMEOUT_S",
    "result_wait_ms": "BENCH_RESULT_WAIT_MS", "watchers": "BENCH_WATCHERS", "watch_window_s": "BENCH_WATCH_WINDOW_S",
    "page_storm_s": "BENCH_PAGE_STORM_S", "pin": "BENCH_PIN",
    "drain_timeout_s": "BENCH_DRAIN_TIMEOUT_S", "deferred_drain": "BENCH_DEFERRED_DRAIN",
    "pyspy": "BENCH_PYSPY", "port": "BENCH_PORT", "db_name": "BENCH_DB", "redis_prefix": "BENCH_REDIS_PREFIX",
    "results_dir": "BENCH_RESULTS_DIR",
}


def _convert(type_name: str, raw: str):
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw
