"""Locust users of the flash-sale bench: buyers, shop browsers, and the /healthz baseline.

run_bench.py starts Locust headless against 127.0.0.1 with BENCH_PLAN pointing at a JSON plan
(sale id, start time, the logged-in sessions file, polling knobs). Besides Locust's own stats,
every request is written to BENCH_SAMPLES_DIR/<phase>-<pid>.csv (start, ms, type, name, status,
error, detail) so that the report can cut the run into phases by time.

Custom Locust stats: request type ADMISSION, one row per purchase outcome (queued, sold_out,
already_purchased, ...; the "response time" is the purchase's), and ORDER, the time from sending
the purchase to seeing its order in /result (purchase_to_order), or the final failure.
"""
from __future__ import annotations

import csv
import datetime as dt
import heapq
import json
import os
import random
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import gevent
from locust import FastHttpUser, between, constant, events, task
from locust.exception import StopUser
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

PLAN: dict = {}
if os.environ.get("BENCH_PLAN"):
    with open(os.environ["BENCH_PLAN"]) as plan_file:
        PLAN = json.load(plan_file)
PHASE = os.environ.get("BENCH_PHASE", "run")
SAMPLES_DIR = os.environ.get("BENCH_SAMPLES_DIR", "")
DONE_MESSAGE = "bench_buyers_done"
NOT_STARTED_RETRIES = 5
NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])  # each buyer's session goes in its own header


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


@events.test_stop.add_listener
def write_samples_on_stop(**_kwargs) -> None:
    SAMPLES.write()


@events.quitting.add_listener
def write_samples_on_quit(**_kwargs) -> None:
    SAMPLES.write()


# --- the buyers' accounts, shared by the buyers of one process --------------------------------

@dataclass
class Account:
    username: str
    user_id: int
    address_id: int
    cookie: str
    csrf: str
    sent_at: float = 0.0  # when its (first) purchase was sent
    answered_at: float = 0.0
    request_id: str = ""
    next_wait_ms: int = 0


class Accounts:
    """This process's share of the logged-in buyers and how many of its Buyer users still run."""

    def __init__(self, environment) -> None:
        runner = environment.runner
        index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        processes = max(1, int(PLAN.get("locust_processes", 1))) if isinstance(runner, WorkerRunner) else 1
        with open(PLAN["sessions_file"], newline="") as f:
            rows = list(csv.DictReader(f))
        self.queue = [Account(r["username"], int(r["user_id"]), int(r["address_id"]), r["cookie"], r["csrf"])
                      for r in rows[index::processes]]
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
        server = dt.datetime.fromisoformat(server_time.replace("Z", "+00:00")).timestamp()
        if received - sent < best_rtt:
            best_rtt, offset = received - sent, server - (sent + received) / 2
    return offset


def parse_refusal(response) -> tuple[str, dict]:
    """(reason, data) of a refusal envelope."""
    try:
        data = response.json()["data"]
        return data["reason"], data
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", {}


# --- users -----------------------------------------------------------------------------------

class Buyer(FastHttpUser):
    """Buyers with sessions made before the sale: each Locust user works through many of them.

    At the opening every Buyer sends purchases back to back (a share of them as double clicks:
    2-3 at once) until this process's buyers are all served, then polls /result of the queued
    ones with back-off until each is final. Purchases go first so that the admission and
    sold-out phases measure purchases, not a mix with polls; the time from purchase to order
    is taken from the order rows (report.py), the polls' view of it is reported beside it.
    Concurrency stays at the number of Buyer users, as with that many connected clients.
    """

    fixed_count = int(PLAN.get("users", 1))
    wait_time = constant(0)
    concurrency = 3  # connections: a double click sends up to three requests at once

    def on_start(self) -> None:
        self.client.cookiejar.set_policy(NO_COOKIES)
        self.pool = accounts_of(self.environment)
        self.pool.running += 1
        self.sale_id = PLAN["sale_id"]
        self.purchase_path = f"/api/seckill/{self.sale_id}/purchase"
        self.result_path = f"/api/seckill/{self.sale_id}/result"
        offset = server_offset_s(self.client)
        gevent.sleep(max(0.0, PLAN["start_epoch"] - offset - time.time()))

    @task
    def buy(self) -> None:
        polls: list[tuple[float, int, Account]] = []  # (due, tie-breaker, account)
        first_wait_ms, max_wait_ms = PLAN["poll_first_ms"], PLAN["poll_max_ms"]
        timeout_s, double_click = PLAN["poll_timeout_s"], PLAN["double_click"]
        polling = PLAN.get("poll", True)
        n = 0
        while True:
            account = self.pool.take()
            if account is not None:
                clicks = random.choice((2, 3)) if random.random() < double_click else 1
                if self.purchase(account, clicks) and polling:
                    account.next_wait_ms = first_wait_ms
                    heapq.heappush(polls, (account.answered_at + first_wait_ms / 1000, n, account))
                    n += 1
                continue
            if polls:
                due, _, account = heapq.heappop(polls)
                gevent.sleep(max(0.0, due - time.time()))
                if not self.poll(account, timeout_s):
                    account.next_wait_ms = min(max_wait_ms, account.next_wait_ms * 2)
                    heapq.heappush(polls, (time.time() + account.next_wait_ms / 1000, n, account))
                    n += 1
                continue
            self.pool.buyer_done()
            raise StopUser()

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
        headers = {"Cookie": account.cookie, "X-CSRF-Token": account.csrf}
        body = {"address_id": account.address_id, "payment_method": "alipay"}
        detail, wait_ms = "", 0
        with self.client.post(self.purchase_path, json=body, headers=headers, name="purchase",
                              catch_response=True) as response:
            status = response.status_code
            if status == 202:
                outcome = "queued"
                account.sent_at = started  # purchase_to_order counts from the call that was queued
                try:
                    detail = account.request_id = response.json()["data"]["request_id"]
                    response.success()
                except (ValueError, KeyError, TypeError):
                    outcome = "bad_body"
                    response.failure("202 without a request id")
            elif status in (409, 429):
                outcome, data = parse_refusal(response)
                wait_ms = int(data.get("starts_in_ms") or 0)
                response.success()  # a refusal the contract promises, not an error
            else:
                outcome = "error" if status == 0 else f"http_{status}"
                response.failure(f"unexpected status {status}")
        self.environment.events.request.fire(
            request_type="ADMISSION", name=outcome, response_time=(time.time() - started) * 1000,
            response_length=0, exception=None, start_time=started,
            context={"status": status, "detail": detail})
        return outcome, wait_ms

    def poll(self, account: Account, timeout_s: float) -> bool:
        """One /result call; True when the outcome is final (or the buyer gave up)."""
        headers = {"Cookie": account.cookie}
        with self.client.get(self.result_path, headers=headers, name="result", catch_response=True) as response:
            status = response.status_code
            state = None
            if status == 200:
                try:
                    data = response.json()["data"]
                    state = data["status"]
                    response.success()
                except (ValueError, KeyError, TypeError):
                    response.failure("result without a status")
            else:
                response.failure(f"unexpected status {status}")
        now = time.time()
        if state == "success":
            self.order_event("purchase_to_order", account, now, str(data.get("order_id", "")))
            return True
        if state in ("failed", "none"):
            self.order_event(state, account, now, data.get("reason", "") or account.request_id)
            return True
        if now - account.sent_at > timeout_s:
            self.order_event("unresolved", account, now, account.request_id)
            return True
        return False

    def order_event(self, name: str, account: Account, now: float, detail: str) -> None:
        self.environment.events.request.fire(
            request_type="ORDER", name=name, response_time=(now - account.sent_at) * 1000, response_length=0,
            exception=None if name == "purchase_to_order" else name, start_time=account.sent_at,
            context={"status": 0, "detail": detail})


class Browser(FastHttpUser):
    """A shopper walking the shop during the sale: home, the goods, the sales list, the sale page."""

    fixed_count = int(PLAN.get("browsers", 0))
    wait_time = between(0.5, 1.5)

    @task
    def walk(self) -> None:
        goods_id, sale_id = PLAN["goods_id"], PLAN["sale_id"]
        for path, name in (("/", "page /"), (f"/goods/{goods_id}", "page /goods/[id]"),
                           ("/seckill", "page /seckill"), (f"/seckill/{sale_id}", "page /seckill/[id]")):
            self.client.get(path, name=name)
            gevent.sleep(random.uniform(0.2, 0.6))


class HealthzUser(FastHttpUser):
    """The baseline: the cheapest route, back to back."""

    wait_time = constant(0)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="healthz")
