"""Locust users of the flash-sale bench: buyers, shop browsers, the sale page storm, the /healthz baseline.

Two ways to run it:

* By `make bench` (bench/run_bench.py): headless against 127.0.0.1 with BENCH_PLAN pointing at a
  JSON plan (sale id, start time, the logged-in sessions file, polling knobs). Besides Locust's own
  stats, every request is written to BENCH_SAMPLES_DIR/<phase>-<pid>.csv (start, ms, type, name,
  status, error, detail) so that the report can cut the run into phases by time.
* On its own, against any deployment, without access to its database:
      locust -f bench/locustfile.py --host https://shop.example [--buyers-csv FILE] [--sale-id N]
  (web UI, or add --headless -u 500 -r 50 -t 2m). Each Buyer is one buyer: it logs in with a row
  of the CSV (username,password[,address_id]) or registers itself (register, login, add an
  address) before the sale, waits for the opening (by the server's clock), purchases and
  long-polls its outcome, like the sale page. The sale is --sale-id or the first live or
  upcoming one of GET /api/seckill. Only Buyer runs unless other classes are named.

Custom Locust stats: request type ADMISSION, one row per purchase outcome (queued, sold_out,
already_purchased, ...; the "response time" is the purchase's), and ORDER, click to outcome: the
time from sending the purchase that was queued to its final outcome seen through /result
(purchase_to_order for an order; failed, none, unresolved otherwise). Run by `make bench` they
go straight into its per-request samples instead, not through Locust's statistics, so that the
load generator's one core goes to the requests the server sees.

Client-side checks, in both ways: no buyer is told 202 more often than the sale's per-user limit,
and every 202 ends final (an order or a failure) within the poll timeout. Violations are printed
when Locust stops and make its exit code 1.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import secrets
import string
import time
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy

import gevent
import orjson
from locust import FastHttpUser, between, constant, events, task
from locust.exception import StopUser
from locust.runners import STATE_SPAWNING, LocalRunner, MasterRunner, WorkerRunner

try:
    from bench.lean_http import LeanHttp
except ImportError:  # run as `locust -f bench/locustfile.py`: bench/ itself is on the path
    from lean_http import LeanHttp

PLAN: dict = {}
if os.environ.get("BENCH_PLAN"):
    with open(os.environ["BENCH_PLAN"]) as plan_file:
        PLAN = json.load(plan_file)
IN_BENCH = "BENCH_PHASE" in os.environ  # started by run_bench.py (every phase sets it)
PHASE = os.environ.get("BENCH_PHASE", "run")
SAMPLES_DIR = os.environ.get("BENCH_SAMPLES_DIR", "")
DONE_MESSAGE = "bench_buyers_done"
NOT_STARTED_RETRIES = 5
NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])  # each buyer's session goes in its own header
DEFAULT_WAIT_MS = 5000
DEFAULT_POLL_FIRST_MS, DEFAULT_POLL_MAX_MS, DEFAULT_POLL_TIMEOUT_S = 200, 2000, 60.0
LOGIN_ATTEMPTS = 5
POLL_CONNECTIONS = 1000  # a Buyer user's long-polls at once (each stands for another buyer's browser)
POLL_WARM = 8  # of them open before the sale: the buyers' pages are loaded, their connections kept alive


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    group = parser.add_argument_group("FlashSale buyers (when run on its own)")
    group.add_argument("--buyers-csv", default="", env_var="FLASHSALE_BUYERS_CSV",
                       help="CSV of buyers: username,password[,address_id]; without it each buyer registers")
    group.add_argument("--sale-id", type=int, default=0, env_var="FLASHSALE_SALE_ID",
                       help="the sale to buy from (default: the first live or upcoming one)")
    group.add_argument("--result-wait-ms", type=int, default=DEFAULT_WAIT_MS, env_var="FLASHSALE_RESULT_WAIT_MS",
                       help="long-poll of /result per call (0-10000 ms)")
    group.add_argument("--double-click", type=float, default=0.1, env_var="FLASHSALE_DOUBLE_CLICK",
                       help="share of buyers who send their purchase 2-3 times at once")
    group.add_argument("--poll-timeout", type=float, default=DEFAULT_POLL_TIMEOUT_S,
                       env_var="FLASHSALE_POLL_TIMEOUT", help="seconds a buyer waits for its outcome")
    group.add_argument("--locust-client", action="store_true", default=False, env_var="FLASHSALE_LOCUST_CLIENT",
                       help="send every request through Locust's FastHttpSession (default: the hot ones "
                            "through the lean keep-alive client, on plain http)")


# --- per-request samples ---------------------------------------------------------------------

class Samples:
    """Every request of this process, written out when the process stops."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, request_type, name, response_time, response_length=0, response=None, context=None,
            exception=None, start_time=None, **_kwargs) -> None:
        context = context or {}
        status = context.get("status")
        if status is None:
            status = getattr(response, "status_code", 0) or 0
        start = start_time if start_time is not None else time.time() - response_time / 1000
        self.rows.append((round(start, 6), round(response_time, 3), request_type, name, status,
                          1 if exception else 0, context.get("detail", "")))

    def write(self) -> None:
        if not SAMPLES_DIR or not self.rows:
            return
        rows, self.rows = self.rows, []
        path = os.path.join(SAMPLES_DIR, f"{PHASE}-{os.getpid()}.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["start", "ms", "type", "name", "status", "error", "detail"])
            writer.writerows(rows)


SAMPLES = Samples()


@events.request.add_listener
def record_sample(**kwargs) -> None:
    SAMPLES.add(**kwargs)


def record(environment, **sample) -> None:
    """A pseudo-request of our own (an admission outcome, an order seen): on its own, an event
    that Locust's statistics and UI show; in the bench straight into the samples, so that the load
    generator, one core for all the buyers, spends its time on the requests the server sees."""
    if IN_BENCH:
        SAMPLES.add(**sample)
    else:
        environment.events.request.fire(**sample)


@events.test_stop.add_listener
def write_samples_on_stop(**_kwargs) -> None:
    SAMPLES.write()


@events.quitting.add_listener
def write_samples_on_quit(**_kwargs) -> None:
    SAMPLES.write()


# --- client-side checks --------------------------------------------------------------------

class Checks:
    """What this process's buyers were told: 202s per buyer, and which of them ended final."""

    def __init__(self) -> None:
        self.queued: dict[str, list[str]] = {}  # username -> request ids answered 202
        self.final: set[str] = set()
        self.limit = 1
        self.polling = True

    def told_queued(self, username: str, request_id: str) -> None:
        self.queued.setdefault(username, []).append(request_id)

    def ended(self, request_id: str) -> None:
        self.final.add(request_id)

    def violations(self) -> dict:
        twice = sorted(u for u, ids in self.queued.items() if len(ids) > self.limit)
        unfinished = sorted(r for ids in self.queued.values() for r in ids if r not in self.final) \
            if self.polling else []
        return {"buyers_queued": len(self.queued), "requests_queued": sum(map(len, self.queued.values())),
                "ended_final": len(self.final), "told_202_above_limit": len(twice),
                "told_202_above_limit_sample": twice[:5], "queued_never_final": len(unfinished),
                "queued_never_final_sample": unfinished[:5], "polling": self.polling}


CHECKS = Checks()


@events.quitting.add_listener
def report_checks(environment, **_kwargs) -> None:
    if not CHECKS.queued:
        return
    found = CHECKS.violations()
    bad = found["told_202_above_limit"] or found["queued_never_final"]
    print(f"client checks ({'FAILED' if bad else 'ok'}): {json.dumps(found)}", flush=True)
    if SAMPLES_DIR:
        with open(os.path.join(SAMPLES_DIR, f"{PHASE}-checks-{os.getpid()}.json"), "w") as f:
            json.dump(found, f)
    if bad:
        environment.process_exit_code = 1


# --- the buyers' accounts, shared by the buyers of one process --------------------------------

@dataclass
class Account:
    username: str
    user_id: int
    address_id: int
    cookie: str
    csrf: str
    password: str = ""
    sent_at: float = 0.0  # when its (first) purchase was sent
    answered_at: float = 0.0
    request_id: str = ""
    request_ids: list[str] = field(default_factory=list)


class Accounts:
    """This process's share of the buyers and how many of its Buyer users still run.

    In the bench: the sessions run_bench.py logged in. On its own: the rows of --buyers-csv
    (logged in by the Buyer that takes them), or none (each Buyer registers one).
    """

    def __init__(self, environment) -> None:
        runner = environment.runner
        index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        if isinstance(runner, WorkerRunner):  # a worker of --processes N buys with every Nth row
            processes = max(1, int(PLAN.get("locust_processes") or getattr(options(environment), "processes", 1) or 1))
        else:
            processes = 1
        self.queue: list[Account] = []
        if PLAN:
            with open(PLAN["sessions_file"], newline="") as f:
                rows = list(csv.DictReader(f))
            self.queue = [Account(r["username"], int(r["user_id"]), int(r["address_id"]), r["cookie"], r["csrf"])
                          for r in rows[index::processes]]
        elif options(environment).buyers_csv:
            with open(options(environment).buyers_csv, newline="") as f:
                rows = list(csv.DictReader(f))
            self.queue = [Account(r["username"], 0, int(r.get("address_id") or 0), "", "", password=r["password"])
                          for r in rows[index::processes]]
        self.registering = not PLAN and not options(environment).buyers_csv
        self.queue.reverse()  # pop() from the end hands them out in file order
        self.running = 0
        self.environment = environment
        self.signalled = False

    def take(self) -> Account | None:
        return self.queue.pop() if self.queue else None

    def buyer_done(self) -> None:
        self.running -= 1
        if self.running <= 0 and not self.queue and not self.signalled:
            self.signalled = True
            SAMPLES.write()
            runner = self.environment.runner
            if not IN_BENCH and (not getattr(options(self.environment), "headless", False)
                                 or runner.state == STATE_SPAWNING):
                self.signalled = False  # the web UI decides when to stop; or more buyers are coming
                return
            if isinstance(runner, WorkerRunner):
                runner.send_message(DONE_MESSAGE, runner.worker_index)
            elif isinstance(runner, LocalRunner):
                gevent.spawn_later(0.2, runner.quit)


_accounts: Accounts | None = None


def accounts_of(environment) -> Accounts:
    global _accounts  # one pool per Locust process, shared by its Buyer greenlets
    if _accounts is None:
        _accounts = Accounts(environment)
    return _accounts


def options(environment):
    return environment.parsed_options


@events.init.add_listener
def on_init(environment, **_kwargs) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        done: set[int] = set()

        def on_done(msg, **_kw) -> None:
            done.add(msg.data)
            if len(done) >= runner.worker_count:
                gevent.spawn_later(0.2, runner.quit)

        runner.register_message(DONE_MESSAGE, on_done)


def server_offset_s(client, samples: int = 3) -> float:
    """Server clock minus ours, from /api/time (the sale opens by the server's clock).

    Of a few calls, the one with the shortest round trip says the most (as NTP reasons): under
    load a request can wait long before the server reads its clock.
    """
    best_rtt, offset = float("inf"), 0.0
    for _ in range(samples):
        sent = time.time()
        response = client.get("/api/time", name="time")
        received = time.time()
        try:
            server_time = response.json()["data"]["server_time"]
        except (ValueError, KeyError, TypeError):
            continue
        server = parse_time(server_time)
        if received - sent < best_rtt:
            best_rtt, offset = received - sent, server - (sent + received) / 2
    return offset


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def parse_refusal(status: int, content: bytes) -> tuple[str, dict]:
    """(reason, data) of a refusal envelope."""
    try:
        data = orjson.loads(content)["data"]
        return data["reason"], data
    except (ValueError, KeyError, TypeError):
        return f"http_{status}", {}


def request_id_of(content: bytes) -> str:
    """The request id of a 202 envelope, or ""."""
    try:
        return str(orjson.loads(content)["data"]["request_id"] or "")
    except (ValueError, KeyError, TypeError):
        return ""


class HotRequests:
    """The hot requests (purchase, /result, the sale page, /healthz) through the lean client.

    `hot()` sends one through LeanHttp when the host is plain http, and records it as Locust's
    client would (the request event on its own; the bench's samples in the bench); else through
    Locust's own client. `judge(status, body)` names what was wrong with an answer, or None.
    """

    lean: LeanHttp | None = None  # the user's pool
    lean_polls: LeanHttp | None = None  # a Buyer's pool for its long-polls

    def start_lean(self, size: int = 64) -> LeanHttp | None:
        if getattr(self.environment.parsed_options, "locust_client", False):
            return None
        return LeanHttp.for_host(self.host, size)

    def on_stop(self) -> None:
        for pool in (self.lean, self.lean_polls):
            if pool is not None:
                pool.close()

    def hot(self, method: str, path: str, name: str, headers: dict[str, str], body: bytes = b"",
            judge=None, via: LeanHttp | None = None) -> tuple[int, bytes]:
        """One request (through `via`, else the user's lean pool, else Locust's client): (status, body)."""
        lean = via or self.lean
        if lean is None:
            with self.client.request(method, path, data=body or None, headers=headers, name=name,
                                     catch_response=True) as response:
                status, content = response.status_code, response.content or b""
                error = judge(status, content) if judge else None
                response.failure(error) if error else response.success()
            return status, content
        started = time.time()
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        try:
            status, content, ms = lean.request(method.encode(), path, lines, body)
            error = judge(status, content) if judge else None
        except OSError as exc:
            status, content, ms, error = 0, b"", (time.time() - started) * 1000, repr(exc)
        record(self.environment, request_type=method, name=name, response_time=ms, response_length=len(content),
               exception=RuntimeError(error) if error else None, start_time=started, context={"status": status})
        return status, content


def purchase_error(status: int, content: bytes) -> str | None:
    if status == 202:
        return None if request_id_of(content) else "202 without a request id"
    return None if status in (409, 429) else f"unexpected status {status}"


def result_error(status: int, content: bytes) -> str | None:
    if status != 200:
        return f"unexpected status {status}"
    try:
        orjson.loads(content)["data"]["status"]
    except (ValueError, KeyError, TypeError):
        return "result without a status"
    return None


def ok_only(status: int, _content: bytes) -> str | None:
    return None if status == 200 else f"unexpected status {status}"


def data_of(response) -> dict:
    try:
        return response.json()["data"] or {}
    except (ValueError, KeyError, TypeError):
        return {}


# --- on its own: the sale, registration, login -----------------------------------------------

_sale: dict | None = None


def find_sale(client, sale_id: int) -> dict:
    """The sale to buy from (once per process): --sale-id, or the first live or upcoming one."""
    global _sale
    if _sale is None:
        if sale_id:
            sale = data_of(client.get(f"/api/seckill/{sale_id}", name="sale"))
        else:
            items = data_of(client.get("/api/seckill?per_page=100", name="sales")).get("items") or []
            sale = next((s for s in items if s.get("state") in ("live", "upcoming")), {})
        if not sale.get("id"):
            raise StopUser()  # nothing to buy: the run shows the failed lookup
        _sale = sale
    return _sale


def new_username() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "lb_" + "".join(secrets.choice(alphabet) for _ in range(16))


# --- users -----------------------------------------------------------------------------------

class Buyer(HotRequests, FastHttpUser):
    """Buyers, like the sale page: purchase, then long-poll /result for the outcome.

    In the bench each Locust user works through many buyers with sessions made before the sale:
    at the opening every Buyer sends purchases back to back (a share of them as double clicks:
    2-3 at once), and each purchase answered 202 gets its own greenlet that long-polls
    `/result?wait_ms=` (again while the answer is `queued`; with a pause when the server did not
    hold the answer) until the outcome is final, as the buyer's page would, while the user goes
    on to the next buyer. Concurrency stays at the number of Buyer users for the purchases.
    On its own each Buyer is one buyer (or works through --buyers-csv rows).
    """

    fixed_count = int(PLAN.get("users", 0))
    wait_time = constant(0)
    concurrency = 64  # Locust's client (https, --locust-client): connections for purchases and long-polls

    def on_start(self) -> None:
        self.pool = accounts_of(self.environment)
        self.pool.running += 1
        self.polls: list[gevent.Greenlet] = []
        if PLAN:
            self.client.cookiejar.set_policy(NO_COOKIES)
            self.sale_id = PLAN["sale_id"]
            self.start_epoch = PLAN["start_epoch"]
            self.wait_ms = int(PLAN.get("result_wait_ms", DEFAULT_WAIT_MS))
            self.first_ms, self.max_ms = PLAN["poll_first_ms"], PLAN["poll_max_ms"]
            self.timeout_s, self.double_click = PLAN["poll_timeout_s"], PLAN["double_click"]
            self.polling = PLAN.get("poll", True)
            CHECKS.limit = int(PLAN.get("per_user_limit", 1))
        else:
            opts = options(self.environment)
            sale = find_sale(self.client, opts.sale_id)
            self.sale_id = sale["id"]
            self.start_epoch = parse_time(sale["start_time"])
            self.wait_ms = max(0, min(10_000, opts.result_wait_ms))
            self.first_ms, self.max_ms = DEFAULT_POLL_FIRST_MS, DEFAULT_POLL_MAX_MS
            self.timeout_s, self.double_click = opts.poll_timeout, opts.double_click
            self.polling = True
            CHECKS.limit = int(sale.get("per_user_limit") or 1)
            if self.pool.registering:
                try:
                    self.pool.queue.append(self.register())
                except StopUser:
                    self.pool.buyer_done()
                    raise
        CHECKS.polling = self.polling
        self.purchase_path = f"/api/seckill/{self.sale_id}/purchase"
        self.result_path = f"/api/seckill/{self.sale_id}/result?wait_ms={self.wait_ms}"
        # like the buyers' browsers: purchases on connections already open (a double click sends
        # up to three at once), each pending outcome's long-poll on a connection of its own
        self.lean = self.start_lean(3)
        self.lean_polls = self.start_lean(POLL_CONNECTIONS)
        if self.lean is not None and self.lean_polls is not None:
            self.lean.warm(3)
            self.lean_polls.warm(POLL_WARM)
        offset = server_offset_s(self.client)
        gevent.sleep(max(0.0, self.start_epoch - offset - time.time()))

    @task
    def buy(self) -> None:
        while True:
            account = self.pool.take()
            if account is None:
                break
            if not account.cookie and not self.log_in(account):
                continue
            clicks = random.choice((2, 3)) if random.random() < self.double_click else 1
            if self.purchase(account, clicks) and self.polling:
                self.polls.append(gevent.spawn(self.await_outcome, account))
        gevent.joinall(self.polls)
        self.pool.buyer_done()
        raise StopUser()

    # --- on its own: an account of the buyer's own ---
    def register(self) -> Account:
        """A new buyer through the API: register, log in, add an address."""
        username, password = new_username(), secrets.token_urlsafe(12)
        body = {"username": username, "password": password, "email": f"{username}@example.com"}
        for attempt in range(LOGIN_ATTEMPTS):
            with self.client.post("/api/auth/register", json=body, name="register", catch_response=True) as response:
                if response.status_code == 201:
                    break
                response.failure(f"register answered {response.status_code}")
                if response.status_code not in (429, 503):
                    raise StopUser()
            gevent.sleep(0.5 * (attempt + 1))
        else:
            raise StopUser()
        account = Account(username, 0, 0, "", "", password=password)
        if not self.log_in(account):
            raise StopUser()
        return account

    def log_in(self, account: Account) -> bool:
        """Log in (and find or add an address); the session goes into the account's own header."""
        jar = self.client.cookiejar
        for attempt in range(LOGIN_ATTEMPTS):
            jar.clear()
            with self.client.post("/api/auth/login", json={"username": account.username, "password": account.password},
                                  name="login", catch_response=True) as response:
                if response.status_code in (429, 503):
                    response.success()
                    gevent.sleep(0.5 * (attempt + 1))
                    continue
                if response.status_code != 200:
                    response.failure(f"login answered {response.status_code}")
                    return False
                data = data_of(response)
            account.csrf = data.get("csrf_token", "")
            account.user_id = int((data.get("user") or {}).get("id") or 0)
            account.cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
            jar.clear()
            break
        else:
            return False
        if not account.address_id:
            account.address_id = self.address_of(account)
        return bool(account.address_id)

    def address_of(self, account: Account) -> int:
        headers = {"Cookie": account.cookie, "X-CSRF-Token": account.csrf}
        items = data_of(self.client.get("/api/addresses", headers=headers, name="addresses")).get("items") or []
        if items:
            return int(next((a for a in items if a.get("is_default")), items[0])["id"])
        body = {"receiver_name": "Load Test", "phone": "13900000000", "province": "Zhejiang", "city": "Hangzhou",
                "district": "Xihu", "detail_address": "1 Benchmark Road", "is_default": True}
        for attempt in range(LOGIN_ATTEMPTS):
            response = self.client.post("/api/addresses", json=body, headers=headers, name="add address")
            if response.status_code not in (429, 503):
                break
            gevent.sleep(0.5 * (attempt + 1))
        return int((data_of(response).get("address") or {}).get("id") or 0)

    # --- the purchase and its outcome ---
    def purchase(self, account: Account, clicks: int) -> bool:
        """Send the purchase (`clicks` times at once); True when one was queued.

        A buyer told `not_started` (our clock ran a little ahead of the server's) waits the
        time the refusal names and tries again, as the sale page's countdown would.
        """
        account.sent_at = time.time()
        for _ in range(NOT_STARTED_RETRIES):
            if clicks == 1:
                answers = [self.purchase_once(account)]
            else:
                greenlets = [gevent.spawn(self.purchase_once, account) for _ in range(clicks)]
                gevent.joinall(greenlets)
                answers = [g.value for g in greenlets if g.value is not None]
            waits = [wait_ms for outcome, wait_ms in answers if outcome == "not_started"]
            if account.request_id or len(waits) < len(answers):
                break
            gevent.sleep(min(waits) / 1000 + 0.001)
        account.answered_at = time.time()
        return bool(account.request_id)

    def purchase_once(self, account: Account) -> tuple[str, int]:
        """One purchase call; (outcome, ms until the start for `not_started`)."""
        started = time.time()
        headers = {"Cookie": account.cookie, "X-CSRF-Token": account.csrf, "Content-Type": "application/json"}
        body = b'{"address_id":%d,"payment_method":"alipay"}' % account.address_id
        status, content = self.hot("POST", self.purchase_path, "purchase", headers, body, judge=purchase_error)
        detail, wait_ms = "", 0
        if status == 202:
            outcome = "queued"
            detail = request_id_of(content)
            if detail:
                account.sent_at = started  # click to outcome counts from the call that was queued
                account.request_id = detail
                account.request_ids.append(detail)
                CHECKS.told_queued(account.username, detail)
            else:
                outcome = "bad_body"
        elif status in (409, 429):
            outcome, data = parse_refusal(status, content)
            wait_ms = int(data.get("starts_in_ms") or 0)
        else:
            outcome = "error" if status == 0 else f"http_{status}"
        record(self.environment, request_type="ADMISSION", name=outcome, response_time=(time.time() - started) * 1000,
               response_length=0, exception=None, start_time=started, context={"status": status, "detail": detail})
        return outcome, wait_ms

    def await_outcome(self, account: Account) -> None:
        """Long-poll /result until the outcome is final (or poll_timeout_s passes), like the page.

        A server that holds the answer needs one call; one that answers `queued` at once is
        asked again after a pause that doubles from poll_first_ms to poll_max_ms.
        """
        pause_ms = self.first_ms
        while True:
            started = time.time()
            state, data = self.poll(account)
            now = time.time()
            if state == "success":
                self.order_event("purchase_to_order", account, now, str(data.get("order_id", "")))
                return
            if state in ("failed", "none"):
                self.order_event(state, account, now, data.get("reason", "") or account.request_id)
                return
            if now - account.sent_at > self.timeout_s:
                self.order_event("unresolved", account, now, account.request_id)
                return
            if (now - started) * 1000 < self.wait_ms / 2:  # not held: the server ignores wait_ms, or failed
                gevent.sleep(pause_ms / 1000)
                pause_ms = min(self.max_ms, pause_ms * 2)

    def poll(self, account: Account) -> tuple[str | None, dict]:
        """One /result call: (status, data), status None when the answer was not a result."""
        status, content = self.hot("GET", self.result_path, "result", {"Cookie": account.cookie}, judge=result_error,
                                   via=self.lean_polls)
        try:
            data = orjson.loads(content)["data"]
            return data["status"], data
        except (ValueError, KeyError, TypeError):
            return None, {}

    def order_event(self, name: str, account: Account, now: float, detail: str) -> None:
        if name != "unresolved":
            for request_id in account.request_ids:
                CHECKS.ended(request_id)
        record(self.environment, request_type="ORDER", name=name, response_time=(now - account.sent_at) * 1000,
               response_length=0, exception=None if name == "purchase_to_order" else name,
               start_time=account.sent_at, context={"status": 0, "detail": detail})


class Browser(FastHttpUser):
    """A shopper walking the shop during the sale: home, the goods, the sales list, the sale page."""

    abstract = not IN_BENCH  # on its own only Buyer runs
    fixed_count = int(PLAN.get("browsers", 0))
    wait_time = between(0.5, 1.5)

    @task
    def walk(self) -> None:
        goods_id, sale_id = PLAN["goods_id"], PLAN["sale_id"]
        for path, name in (("/", "page /"), (f"/goods/{goods_id}", "page /goods/[id]"),
                           ("/seckill", "page /seckill"), (f"/seckill/{sale_id}", "page /seckill/[id]")):
            self.client.get(path, name=name)
            gevent.sleep(random.uniform(0.2, 0.6))


class PageStormUser(HotRequests, FastHttpUser):
    """The sale page refreshed back to back just before the start, each user one logged-in buyer."""

    abstract = not IN_BENCH
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client.cookiejar.set_policy(NO_COOKIES)
        pool = accounts_of(self.environment)
        account = random.choice(pool.queue) if pool.queue else None
        self.headers = {"Cookie": account.cookie} if account else {}
        self.path = f"/seckill/{PLAN['sale_id']}"
        self.lean = self.start_lean(1)

    @task
    def refresh(self) -> None:
        self.hot("GET", self.path, "page /seckill/[id]", self.headers, judge=ok_only)


class HealthzUser(HotRequests, FastHttpUser):
    """The baseline: the cheapest route, back to back (through the same client as the purchase)."""

    abstract = not IN_BENCH
    wait_time = constant(0)

    def on_start(self) -> None:
        self.lean = self.start_lean(1)

    @task
    def healthz(self) -> None:
        self.hot("GET", "/healthz", "healthz", {}, judge=ok_only)
