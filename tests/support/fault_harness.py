"""Pieces for running FlashSale as real processes under faults.

A TCP proxy the test can cut and restore, a private redis-server, a `run.py serve` subprocess,
an HTTP client that counts every answer, and the shop's API driven the way a client drives it.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from redis import Redis as SyncRedis

from flashsale.settings import ROOT

PASSWORD = "fault-suite-pass"
ADMIN_PASSWORD = "fault-suite-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# --- a TCP proxy with cut and restore ---------------------------------------------------------

class Proxy:
    """Forwards 127.0.0.1:<port> to a target port, on a thread and loop of its own.

    `cut()` aborts every open connection and answers new ones by closing them at once, as a
    network partition or a crashed database would look to the server; `restore()` ends that.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self.up = True
        self._loop = asyncio.new_event_loop()
        self._transports: set[asyncio.Transport] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)

    def start(self) -> "Proxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(5)

    def restore(self) -> None:
        self.up = True

    def stop(self) -> None:
        if not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _cut(self) -> None:
        self.up = False
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _stop(self) -> None:
        await self._cut()
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self._transports.update(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if self.up:
                    dst.close()
                else:
                    dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._transports.difference_update(pair)


# --- a private redis-server --------------------------------------------------------------------

class RedisServer:
    """A redis-server of the test's own on a free port; the test owns all of its keys."""

    def __init__(self, workdir: Path, *, aof: bool):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.aof = aof
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, *extra: str) -> "RedisServer":
        """Start and wait until it answers PING (loading included)."""
        self.start_no_wait(*extra)
        deadline = time.monotonic() + 30
        while True:
            try:
                with SyncRedis(port=self.port, socket_timeout=1) as r:
                    r.ping()
                    return self
            except Exception:  # not listening yet, or still loading its data
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def start_no_wait(self, *extra: str) -> None:
        """Start on the same port and directory; extra arguments go to redis-server."""
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.dir), "--daemonize", "no", "--logfile", str(self.dir / "redis.log"),
                "--appendonly", "yes" if self.aof else "no", "--appendfsync", "everysec", *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def load_delay_us(self, seconds: float) -> int:
        """A --key-load-delay (microseconds per key or AOF command) that makes loading what is on
        disk now take about `seconds`: long enough to be seen, short enough for a test. Redis
        answers (LOADING) only between batches of 1,024 commands, so a fixed delay on a big AOF
        would leave it silent for longer than any client waits."""
        commands = sum(path.read_bytes().count(b"\r\n*") + 1
                       for path in self.dir.rglob("appendonly.aof.*") if path.is_file())
        return max(1, int(seconds * 1_000_000 / max(commands, 1)))

    def crash(self) -> None:
        """SIGKILL: what a crash or an OOM kill does; AOF keeps what was fsynced (at most ~1 s lost)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.crash()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# --- the server under test ----------------------------------------------------------------------

class ServerProcess:
    """`run.py serve --workers N` with the given environment, its log in a file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, workers: int = 2):
        self.env, self.port, self.log_path, self.workers = env, port, log_path, workers
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "run.py", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Poll /readyz until 200; every worker answers on the shared port."""
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
                try:
                    async with s.get(self.base + "/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200 and len(self.worker_pids()) >= self.workers:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server not ready within {timeout_s}s: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [c.pid for c in children if any("spawn_main" in part for part in _cmdline(c))]

    def kill_worker(self) -> int:
        pid = self.worker_pids()[-1]
        os.kill(pid, signal.SIGKILL)
        return pid

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.worker_pids():  # only the children of the server this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


# --- counting every answer ----------------------------------------------------------------------

@dataclasses.dataclass
class Answer:
    status: int | None  # None: no answer (connection refused or reset, timeout)
    body: dict[str, Any] | None
    error: str = ""

    @property
    def data(self) -> dict[str, Any]:
        return (self.body or {}).get("data") or {}

    @property
    def reason(self) -> str | None:
        return self.data.get("reason")


class Ledger:
    """Every request a test sends and every answer, with the 5xx kept apart by phase."""

    def __init__(self):
        self.requests = 0
        self.statuses: collections.Counter = collections.Counter()
        self.fivexx: list[tuple[str, str, int, str]] = []  # (phase, route, status, reason)
        self.no_answer = 0
        self.phase = "normal"  # "outage" while a fault the test injected lasts

    def record(self, route: str, answer: Answer) -> None:
        self.requests += 1
        if answer.status is None:
            self.no_answer += 1
            return
        self.statuses[answer.status] += 1
        if answer.status >= 500:
            self.fivexx.append((self.phase, route, answer.status, answer.reason or ""))

    def fivexx_outside_outage(self) -> list[tuple[str, str, int, str]]:
        """5xx other than the injected outage's own 503 unavailable.

        A test's setup (making its buyers) retries a 503 and is not what a fault case checks;
        those are kept apart in `setup_503s` (the rush test asserts them)."""
        return [f for f in self.fivexx
                if not (f[0] in ("outage", "setup") and f[2] == 503 and f[3] == "unavailable")]

    def setup_503s(self) -> int:
        return sum(1 for f in self.fivexx if f[0] == "setup")

    def by_status(self, route_part: str = "") -> collections.Counter:
        return collections.Counter(f[2] for f in self.fivexx if route_part in f[1])


class Client:
    """One shopper or admin: a cookie jar of its own and its CSRF token."""

    def __init__(self, base: str, ledger: Ledger, timeout_s: float = 20.0):
        self.base, self.ledger = base, ledger
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s),
                                             cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.user: dict[str, Any] = {}
        self.addresses: list[int] = []

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, json: Any = None, route: str | None = None) -> Answer:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        try:
            async with self.session.request(method, self.base + path, json=json, headers=headers) as r:
                try:
                    body = await r.json(content_type=None)
                except ValueError:
                    body = None
                answer = Answer(r.status, body)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            answer = Answer(None, None, f"{type(exc).__name__}: {exc}")
        self.ledger.record(route or f"{method} {path}", answer)
        return answer

    async def call_retrying(self, method: str, path: str, json: Any = None, *, route: str | None = None,
                            tries: int = 8) -> Answer:
        """For a test's own setup: a 503 or no answer is tried again (and still counted)."""
        for attempt in range(tries):
            answer = await self.call(method, path, json, route=route)
            if answer.status is not None and answer.status != 503:
                return answer
            await asyncio.sleep(0.1 * (attempt + 1))
        return answer

    # the shop, as a client drives it

    async def register_and_login(self, username: str, *, retry: bool = True) -> Answer:
        call = self.call_retrying if retry else self.call
        r = await call("POST", "/api/auth/register",
                       {"username": username, "password": PASSWORD, "email": f"{username}@example.com"},
                       route="POST /api/auth/register")
        if r.status not in (201, 409):
            return r
        return await self.login(username, PASSWORD, retry=retry)

    async def login(self, username: str, password: str, *, retry: bool = True) -> Answer:
        call = self.call_retrying if retry else self.call
        r = await call("POST", "/api/auth/login", {"username": username, "password": password},
                       route="POST /api/auth/login")
        if r.status == 200:
            self.csrf = r.data["csrf_token"]
            self.user = r.data["user"]
        return r

    async def add_address(self, n: int = 0, *, default: bool = False, retry: bool = False) -> Answer:
        call = self.call_retrying if retry else self.call
        r = await call("POST", "/api/addresses", address_body(n, default), route="POST /api/addresses")
        if r.status == 201:
            self.addresses.append(int(r.data.get("address", r.data)["id"]))
        return r


def address_body(n: int, default: bool = False) -> dict[str, Any]:
    return {"receiver_name": f"Receiver {n}", "phone": "13800000000", "province": "Zhejiang",
            "city": "Hangzhou", "district": "Xihu", "detail_address": f"{n} Fault Road", "is_default": default}


async def gather_bounded(coros, limit: int):
    """Run coroutines with at most `limit` in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(coro):
        async with gate:
            return await coro
    return await asyncio.gather(*(one(c) for c in coros))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
