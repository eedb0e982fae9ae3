"""Prometheus metrics for every worker process: request tallies, engine counters, GET /metrics."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from bisect import bisect_left

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError

from flashsale.appkeys import CTX, SETTINGS
from flashsale.errors import Forbidden, Unauthenticated
from flashsale.context import Context

log = logging.getLogger(__name__)

# prometheus-client picks its value store when it is imported: with this variable set (run.py
# serve sets it before any worker starts) every process writes its own mmap file and a scrape
# merges them all; without it (tests, commands) the metrics live in this process only.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
FLUSH_INTERVAL_S = 1.0
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # 404/405 of no route: one label value, whatever path was asked for
CLIENT_GONE = 499  # the client closed the connection before the answer (nginx's convention)

REQUESTS = Counter("flashsale_http_requests", "HTTP requests by route template, method and status",
                   ["route", "method", "status"])
LATENCY = Histogram("flashsale_http_request_duration_seconds",
                    "Time from the request reaching the app to its response, by route template",
                    ["route"], buckets=LATENCY_BUCKETS_S)
# the flash-sale engine increments these
ADMISSIONS = Counter("flashsale_admissions", "Purchase calls decided by the admission script, by outcome",
                     ["outcome"])
ORDERS_WRITTEN = Counter("flashsale_orders_written", "Flash-sale orders inserted into MySQL by the consumers")
CONSUMER_BATCH = Histogram("flashsale_consumer_batch_size", "Stream entries handled per consumer batch",
                           buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000))
RECLAIMS = Counter("flashsale_reclaims", "Stream entries claimed back from a consumer that went quiet")
DEAD_LETTERS = Counter("flashsale_dead_letters", "Stream entries moved to a dead-letter stream")


class Tally:
    """Counts kept in plain dicts on the request path, added to the shared metrics by flush().

    A multiprocess metric update costs a lock, a getpid and an mmap write (2-3 us each, three
    per request with the histogram); adding to a dict costs a tenth of that. The price is that
    a scrape sees another worker's requests up to FLUSH_INTERVAL_S late.
    """

    def __init__(self) -> None:
        # (resource or None, method, status) -> requests
        self.requests: dict[tuple[web.AbstractResource | None, str, int], int] = {}
        # resource or None -> per-bucket counts (one per bound, +Inf last) then the sum of seconds
        self.latency: dict[web.AbstractResource | None, list[float]] = {}
        self.admissions: dict[str, int] = {}
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        self._bounds = list(LATENCY_BUCKETS_S)

    def request(self, resource: web.AbstractResource | None, method: str, status: int, seconds: float) -> None:
        key = (resource, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        slots = self.latency.get(resource)
        if slots is None:
            slots = self.latency[resource] = [0] * (len(self._bounds) + 2)
        slots[bisect_left(self._bounds, seconds)] += 1
        slots[-1] += seconds

    def admission(self, outcome: str) -> None:
        self.admissions[outcome] = self.admissions.get(outcome, 0) + 1

    def flush(self) -> None:
        requests, self.requests = self.requests, {}
        latency, self.latency = self.latency, {}
        admissions, self.admissions = self.admissions, {}
        for (resource, method, status), count in requests.items():
            label_key = (route_name(resource), method, status)
            child = self._request_children.get(label_key)
            if child is None:
                child = self._request_children[label_key] = REQUESTS.labels(
                    label_key[0], method, str(status))
            child.inc(count)
        for resource, slots in latency.items():
            route = route_name(resource)
            child = self._latency_children.get(route)
            if child is None:
                child = self._latency_children[route] = LATENCY.labels(route)
            # Histogram.observe() adds one observation per call; these are the same two updates
            # (one bucket, the sum) for many observations at once. Buckets are stored
            # non-cumulative, one per upper bound, +Inf last, as observe() stores them.
            for index, count in enumerate(slots[:-1]):
                if count:
                    child._buckets[index].inc(count)
            child._sum.inc(slots[-1])
        for outcome, count in admissions.items():
            ADMISSIONS.labels(outcome).inc(count)


TALLY = Tally()


def count_admission(outcome: str) -> None:
    """flashsale_admissions_total{outcome} += 1 at dict cost; it reaches /metrics within ~1 s."""
    TALLY.admission(outcome)


def route_name(resource: web.AbstractResource | None) -> str:
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        TALLY.request(request.match_info.route.resource, request.method, status,
                      time.perf_counter() - started)


async def flush_every(interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        TALLY.flush()


async def flusher_ctx(app: web.Application):
    task = asyncio.create_task(flush_every(FLUSH_INTERVAL_S))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    TALLY.flush()


async def sale_gauges(ctx: Context) -> list[GaugeMetricFamily]:
    """Stream length, lag, pending entries, dead letters and remaining stock of each active sale."""
    families = {
        "stream": GaugeMetricFamily("flashsale_stream_length", "Entries in a sale's order stream",
                                    labels=["sale"]),
        "lag": GaugeMetricFamily("flashsale_stream_lag",
                                 "Stream entries not yet delivered to any consumer of the group",
                                 labels=["sale"]),
        "pending": GaugeMetricFamily("flashsale_stream_pending",
                                     "Stream entries delivered to a consumer and not yet acknowledged",
                                     labels=["sale"]),
        "dead": GaugeMetricFamily("flashsale_dead_letter_stream_length",
                                  "Entries in a sale's dead-letter stream", labels=["sale"]),
        "stock": GaugeMetricFamily("flashsale_stock_remaining", "Units a sale can still admit (Redis)",
                                   labels=["sale"]),
    }
    keys = ctx.keys
    try:
        sale_ids = sorted(int(raw) for raw in await ctx.redis.smembers(keys.active_sales()) if raw.isdigit())
        shards: list[int] = []
        replies: list = []
        if sale_ids:
            # a sale split over stock shards has these keys once per shard: summed below
            async with ctx.redis.pipeline(transaction=False) as pipe:
                for sale_id in sale_ids:
                    pipe.hget(keys.sale_window(sale_id), "shards")
                shards = [int(v) if isinstance(v, str) and v.isdigit() else 1
                          for v in await pipe.execute(raise_on_error=False)]
            async with ctx.redis.pipeline(transaction=False) as pipe:
                for sale_id, n in zip(sale_ids, shards):
                    for shard in range(n):
                        pipe.xlen(keys.sale_stream(sale_id, shard))
                        pipe.xinfo_groups(keys.sale_stream(sale_id, shard))
                        pipe.xpending(keys.sale_stream(sale_id, shard), keys.consumer_group())
                        pipe.xlen(keys.sale_dead(sale_id, shard))
                        pipe.get(keys.sale_stock(sale_id, shard))
                replies = await pipe.execute(raise_on_error=False)
    except (RedisError, OSError) as exc:
        log.warning("metrics: sale gauges skipped, Redis did not answer: %r", exc)
        return []
    at = 0
    for sale_id, n in zip(sale_ids, shards):
        totals: dict[str, float | None] = {"stream": 0.0, "lag": 0.0, "pending": 0.0, "dead": 0.0}
        stocks = []
        for _ in range(n):
            length, groups, pending, dead, stock = replies[at:at + 5]
            at += 5
            totals["stream"] += _number(length)
            lag = _lag(groups, keys.consumer_group(), _number(length))
            totals["lag"] = None if lag is None or totals["lag"] is None else totals["lag"] + lag
            # XPENDING on a stream without the group yet is an error: nothing is pending then
            totals["pending"] += pending["pending"] if isinstance(pending, dict) else 0
            totals["dead"] += _number(dead)
            stocks.append(None if stock is None or isinstance(stock, Exception) else _number(stock))
        label = [str(sale_id)]
        for name, value in totals.items():
            if value is not None:  # a lag Redis cannot tell is left out, not guessed
                families[name].add_metric(label, value)
        if all(v is not None for v in stocks):
            families["stock"].add_metric(label, sum(stocks))
    return list(families.values())


def _lag(groups, group: str, length: float) -> float | None:
    """Entries the group has not been handed yet (Redis 7 XINFO GROUPS `lag`, None when it cannot
    tell after deletions); every entry when the group does not exist yet, none without a stream."""
    if isinstance(groups, Exception):
        return 0
    found = next((g for g in groups if g.get("name") == group), None)
    if found is None:
        return length
    lag = found.get("lag")
    return None if lag is None else float(lag)


def _number(reply) -> float:
    if isinstance(reply, Exception) or reply is None:
        return 0
    return float(reply)


class _Families:
    """A collector that yields families made for one scrape."""

    def __init__(self, families: list[GaugeMetricFamily]):
        self.families = families

    def collect(self):
        return self.families


LOOPBACK = ("127.", "::1", "::ffff:127.")


def check_metrics_access(request: web.Request, token: str) -> None:
    """Loopback clients, or anyone with `Authorization: Bearer <FLASHSALE_METRICS_TOKEN>` when one
    is set (compared in constant time); else 401 (a token is set: send it) or 403 (none is set)."""
    remote = request.remote or ""
    if remote.startswith(LOOPBACK):
        return
    if not token:
        raise Forbidden("Metrics are served to loopback clients only.")
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    try:
        ok = scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    except UnicodeEncodeError:
        ok = False
    if not ok:
        raise Unauthenticated("Send Authorization: Bearer <metrics token>.", headers={"WWW-Authenticate": "Bearer"})


async def metrics_view(request: web.Request) -> web.Response:
    check_metrics_access(request, request.app[SETTINGS].metrics_token)
    TALLY.flush()  # this worker's tallies now; the others' flush on their own within ~1 s
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        MultiProcessCollector(registry)
    registry.register(_Families(await sale_gauges(request.app[CTX])))
    body = generate_latest(registry)
    if not MULTIPROCESS:
        body = generate_latest(REGISTRY) + body
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    """Count every request (outermost middleware, so it sees the final status) and serve /metrics."""
    app.middlewares.insert(0, metrics_middleware)
    app.router.add_get("/metrics", metrics_view, name="metrics")
    app.cleanup_ctx.append(flusher_ctx)
