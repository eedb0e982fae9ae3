"""Settings read from the environment (and a `.env` file); the environment wins."""
from __future__ import annotations

import dataclasses
import os
import secrets
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and # comments are skipped, quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_secret_key(var_dir: Path) -> str:
    """Return the key in var/secret.key, creating it once; every worker reads the same file."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "secret.key"
    try:
        # O_EXCL: when two workers start together only one writes, the other reads.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty")
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


@dataclasses.dataclass(frozen=True)
class Settings:
    db_host: str = "127.0.0.1"
    db_port: int = 3306
    db_user: str = "root"
    db_password: str = ""
    db_name: str = "flashsale"
    db_pool_min: int = 2
    db_pool_max: int = 20
    db_lock_wait_s: int = 5  # a row lock waited for this long is given up (1205) and the transaction retried
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_max_connections: int = 64
    redis_pool_wait_s: float = 2.0  # a request waits this long for a free Redis connection, then 503
    redis_cluster: bool = False  # FLASHSALE_REDIS_URL names any node of a Redis Cluster
    # a purchase is answered 202 only once this many replicas hold it (one WAIT per node per tick)
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 500  # fewer replicas acknowledged by then: the tick's purchases get 503
    redis_prefix: str = ""  # prepended to every key: lets tests and the bench keep their own space
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    admin_password: str = ""
    pay_window_s: int = 900
    max_pending_orders: int = 10  # unpaid ordinary orders a user may hold at once (409 too_many_pending)
    cookie_secure: bool = False
    public_url: str = ""  # e.g. https://shop.example: links in mail; empty trusts the request's Host (dev only)
    metrics_token: str = ""  # GET /metrics with `Authorization: Bearer <token>`; empty: loopback only
    session_max_age_s: int = 7 * 24 * 3600
    max_body_bytes: int = 6 * 1024 * 1024
    body_timeout_s: float = 5.0  # a request body must arrive within this (else 408)
    # scrypt cost; stored with each hash, so raising it later re-hashes at next login
    scrypt_n: int = 2**14
    scrypt_r: int = 8
    scrypt_p: int = 1
    hash_threads: int = 2
    hash_queue: int = 32  # password hashes waiting for a thread; more get 503 with Retry-After at once
    ws_per_client: int = 8  # live WebSockets per client address per process (429 beyond)
    ws_per_process: int = 5000  # live WebSockets per process (503 beyond)
    login_fail_limit: int = 5  # failures per username and client address per window
    login_fail_user_limit: int = 100  # failures per username from all addresses per window
    login_fail_ip_limit: int = 50  # failures per IP per window
    register_ip_limit: int = 20  # registrations per client address per hour
    login_fail_window_s: int = 900
    reset_token_ttl_s: int = 900
    purchase_rate_per_s: int = 5  # purchase calls per user per second
    consumers: int = 2  # flash-sale stream consumer tasks per process
    consumer_batch: int = 500  # entries per read and per MySQL transaction
    consumer_block_ms: int = 1000
    reclaim_idle_ms: int = 30_000
    max_deliveries: int = 5
    sweep_interval_s: float = 5.0
    sale_state_keep_s: int = 7 * 24 * 3600  # an ended sale's Redis keys (results, buyers) live this long
    consumer_name: str = ""  # stable per process; defaults to host + worker index
    upload_dir: str = str(ROOT / "static" / "uploads")
    var_dir: str = str(ROOT / "var")
    access_log: bool = False
    background_tasks: bool = True  # consumers, reclaimer and sweeper run in this process

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        """Build settings from .env, then os.environ (which wins), then keyword overrides."""
        merged = read_dotenv(ROOT / ".env")
        merged.update(os.environ if env is None else env)
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = merged.get("FLASHSALE_" + field.name.upper())
            if raw is None:
                continue
            values[field.name] = _convert(field.type, raw)
        values.update(overrides)
        settings = cls(**values)
        if not settings.secret_key:
            settings = dataclasses.replace(settings, secret_key=load_secret_key(Path(settings.var_dir)))
        return settings

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def _convert(type_name: str, raw: str):
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw
