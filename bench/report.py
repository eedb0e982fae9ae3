"""The bench report: summary.json (and results/latest.json), a PNG chart and a short table.

    python bench/report.py [RUN_DIR]   # rebuild a run's report from its files (default: the latest)

Everything is computed from the files of the run directory: run.json (settings, phase
markers, verdict), the per-request samples <phase>-<pid>.csv, timeline.csv (CPU, RSS and the
sale's Redis state every 100 ms) and orders.csv (when each order row was written).
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
import sys
from bisect import bisect_right
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/report.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from bench.config import RESULTS_DIR  # noqa: E402
from bench.sampler import GROUPS, mysql_rate, peak_in, value_at  # noqa: E402

MB = 1024 * 1024
BACKLOG_BATCH = 100  # a backlog of at least one consumer batch means the writers were the limit
MIN_PER_ORDER_WINDOW_S = 0.3  # CPU samples come every 100 ms
MIN_PER_ORDER_ORDERS = 500


# --- loading -----------------------------------------------------------------------------------

def load_samples(run_dir: Path, phase: str) -> list[dict]:
    rows = []
    for path in sorted(run_dir.glob(f"{phase}-*.csv")):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                start, ms = float(r["start"]), float(r["ms"])
                rows.append({"start": start, "end": start + ms / 1000, "ms": ms, "type": r["type"],
                             "name": r["name"], "status": int(r["status"] or 0), "error": r["error"] == "1",
                             "detail": r["detail"]})
    rows.sort(key=lambda r: r["start"])
    return rows


def load_timeline(run_dir: Path) -> list[dict]:
    path = run_dir / "timeline.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else None for k, v in r.items()} for r in csv.DictReader(f)]


def load_orders(run_dir: Path) -> list[float]:
    """When each order row was written, in time order."""
    return sorted(load_order_rows(run_dir).values())


def load_order_rows(run_dir: Path) -> dict[str, float]:
    """request id -> when its order row was written."""
    path = run_dir / "orders.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {r["request_id"] or f"row{n}": float(r["written"]) for n, r in enumerate(csv.DictReader(f))}


# --- figures -----------------------------------------------------------------------------------

def percentile(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def latency(rows: list[dict]) -> dict:
    ms = sorted(r["ms"] for r in rows)
    return {"p50_ms": _r(percentile(ms, 50)), "p95_ms": _r(percentile(ms, 95)), "p99_ms": _r(percentile(ms, 99)),
            "max_ms": _r(ms[-1] if ms else None)}


def errors_by_status(rows: list[dict]) -> dict[str, int]:
    counts = Counter(str(r["status"]) for r in rows if r["error"])
    return dict(sorted(counts.items()))


def resources(timeline: list[dict], start: float, end: float) -> dict:
    """CPU seconds of each group within [start, end] and its peak RSS there."""
    cpu, rss = {}, {}
    for g in GROUPS:
        a, b = value_at(timeline, f"{g}_cpu_s", start), value_at(timeline, f"{g}_cpu_s", end)
        cpu[g] = _r(b - a, 3) if a is not None and b is not None else None
        peak = peak_in(timeline, f"{g}_rss", start, end)
        rss[g] = _r(peak / MB, 1) if peak is not None else None
    return {"cpu_s": cpu, "peak_rss_mb": rss}


def phase(rows: list[dict], start: float, end: float, timeline: list[dict], *, per: str = "request",
          others: list[dict] | None = None) -> dict | None:
    """Requests sent within [start, end]: rate, latency, errors, and server CPU per request."""
    inside = [r for r in rows if start <= r["start"] <= end]
    seconds = end - start
    if not inside or seconds <= 0:
        return None
    res = resources(timeline, start, end)
    server_cpu = res["cpu_s"]["server"]
    other_inside = [r for r in (others or []) if start <= r["start"] <= end]
    figures = {
        "start": round(start, 3), "seconds": _r(seconds, 3), "requests": len(inside),
        "rps": _r(len(inside) / seconds, 1), **latency(inside), "errors_by_status": errors_by_status(inside),
        f"server_cpu_us_per_{per}": _r(server_cpu / len(inside) * 1e6, 1) if server_cpu is not None else None,
    }
    if per == "purchase":  # Redis's side of admission: the system Redis (all its clients), or the cluster's nodes
        redis_cpu = res["cpu_s"]["redis"]
        figures["redis_cpu_us_per_purchase"] = _r(redis_cpu / len(inside) * 1e6, 1) if redis_cpu is not None else None
    if others is not None:
        total = len(inside) + len(other_inside)
        figures["other_requests"] = dict(sorted(Counter(r["name"] for r in other_inside).items()))
        figures["server_cpu_us_per_request"] = (_r(server_cpu / total * 1e6, 1)
                                                if server_cpu is not None else None)
    figures.update(res)
    return figures


def drain_figures(orders: list[float], accepted: list[dict], last_admission: float | None,
                  timeline: list[dict], drain_started: float | None) -> dict | None:
    """How fast the consumers wrote orders.

    Live drain (consumers run during the sale): the best 1 s, and the pace in 100 ms slices
    that began with at least a batch admitted (answered 202) and not yet written. Deferred
    drain (BENCH_DEFERRED_DRAIN: the whole stream waits, then fresh consumers start): orders
    over the time from the first to the last order written, the writers' capacity.
    """
    if not orders:
        return None
    first, last = orders[0], orders[-1]
    deferred = drain_started is not None
    figures: dict = {"mode": "deferred" if deferred else "live", "orders": len(orders),
                     "first_order_at": round(first, 3), "last_order_at": round(last, 3),
                     "drain_seconds": _r(last - first, 3),
                     "orders_per_s_mean": _r(len(orders) / (last - first), 1) if last > first else None,
                     "orders_per_s_peak_1s": _peak_rate(orders, 1.0)}
    if last_admission is not None and not deferred:
        figures["seconds_last_admission_to_last_order"] = _r(max(0.0, last - last_admission), 3)
        figures["orders_after_last_admission"] = sum(1 for t in orders if t > last_admission)
    if not deferred:
        admitted_at = sorted(r["end"] for r in accepted)
        busy_slices, written_in_busy = 0, 0
        t = min(admitted_at[0], first) if admitted_at else first
        while t <= last:
            written = bisect_right(orders, t)
            if bisect_right(admitted_at, t) - written >= BACKLOG_BATCH:
                busy_slices += 1
                written_in_busy += bisect_right(orders, t + 0.1) - written
            t += 0.1
        figures["orders_per_s_with_backlog"] = (_r(written_in_busy / (busy_slices * 0.1), 1)
                                                if busy_slices else None)
        figures["backlog_seconds"] = _r(busy_slices * 0.1, 1)
        backlog = [r["admitted"] - r["results"] for r in timeline
                   if r.get("admitted") is not None and r.get("results") is not None]
        figures["max_backlog"] = int(max(backlog)) if backlog else None
        one_shard = [r["backlog_max_shard"] for r in timeline if r.get("backlog_max_shard") is not None]
        figures["max_backlog_one_shard"] = int(max(one_shard)) if one_shard else None
    # resources while orders were being written (deferred: leave out the drain server's start-up)
    start = first - 0.05 if deferred else (last_admission or first)
    if last > start:
        res = resources(timeline, start, last)
        figures.update(res)
        orders_inside = sum(1 for o in orders if start <= o <= last)
        cpu = res["cpu_s"]
        if last - start < MIN_PER_ORDER_WINDOW_S or orders_inside < MIN_PER_ORDER_ORDERS:
            orders_inside = 0  # a few orders in a sliver of time: per-order CPU would be noise
        if orders_inside and cpu["server"] is not None:
            figures["server_cpu_us_per_order"] = _r(cpu["server"] / orders_inside * 1e6, 1)
        if orders_inside and cpu["mariadb"] is not None:
            figures["mariadb_cpu_us_per_order"] = _r(cpu["mariadb"] / orders_inside * 1e6, 1)
    return figures


def per_second_cpu_us(rows: list[dict], start: float, end: float, timeline: list[dict],
                      min_requests: int = 20) -> list[float]:
    """Server CPU µs per request in each whole second of [start, end] with enough requests in it."""
    values = []
    starts = sorted(r["start"] for r in rows)
    t = start
    while t + 1.0 <= end + 1e-9:
        n = bisect_right(starts, t + 1.0) - bisect_right(starts, t)
        a, b = value_at(timeline, "server_cpu_s", t), value_at(timeline, "server_cpu_s", t + 1.0)
        if n >= min_requests and a is not None and b is not None:
            values.append((b - a) / n * 1e6)
        t += 1.0
    return values


def spread(values: list[float], digits: int = 3) -> dict | None:
    """min, median and max of per-second figures (and how many seconds)."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {"min": _r(ordered[0], digits), "median": _r(median, digits), "max": _r(ordered[-1], digits),
            "seconds": len(ordered)}


def ratio_spread(rows: list[dict], phase_figures: dict | None, timeline: list[dict], base_us: float | None) -> dict | None:
    """Per-second CPU per request of a phase over the /healthz phase's figure: its spread."""
    if not phase_figures or not base_us:
        return None
    start = phase_figures["start"]
    per_s = per_second_cpu_us(rows, start, start + phase_figures["seconds"], timeline)
    return spread([v / base_us for v in per_s])


def watcher_figures(run: dict, timeline: list[dict], mysql_rows: list[tuple], sale_window: tuple | None) -> dict | None:
    """Server CPU per socket-second and MySQL statements/s without the watchers, with them, in the sale."""
    marks = run["marks"]
    client = run.get("watchers")
    if not client and "watched" not in marks:
        return None
    figures: dict = {"client": client}
    for name in ("unwatched", "watched"):
        window = marks.get(name)
        if not window:
            continue
        a = value_at(timeline, "server_cpu_s", window["start"])
        b = value_at(timeline, "server_cpu_s", window["end"])
        seconds = window["end"] - window["start"]
        figures[name] = {"seconds": _r(seconds, 2),
                         "server_cpu_per_s": _r((b - a) / seconds, 4) if a is not None and b is not None else None,
                         "mysql": mysql_rate(mysql_rows, window["start"], window["end"])}
    opened = (marks.get("watchers_ready") or {}).get("opened") or 0
    quiet, watched = figures.get("unwatched") or {}, figures.get("watched") or {}
    if opened and quiet.get("server_cpu_per_s") is not None and watched.get("server_cpu_per_s") is not None:
        figures["server_cpu_us_per_socket_second"] = _r(
            max(0.0, watched["server_cpu_per_s"] - quiet["server_cpu_per_s"]) / opened * 1e6, 2)
    q_quiet = (quiet.get("mysql") or {}).get("questions_per_s")
    q_watched = (watched.get("mysql") or {}).get("questions_per_s")
    figures["mysql_questions_per_s_unwatched"] = q_quiet
    figures["mysql_questions_per_s_watched"] = q_watched
    # the figure to compare: whole seconds' median, which a periodic background burst does not move
    figures["mysql_questions_per_s_unwatched_median"] = (quiet.get("mysql") or {}).get("questions_per_s_median")
    figures["mysql_questions_per_s_watched_median"] = (watched.get("mysql") or {}).get("questions_per_s_median")
    if sale_window:
        during = mysql_rate(mysql_rows, *sale_window, cover=True)
        figures["mysql_questions_per_s_sale"] = (during or {}).get("questions_per_s")
        figures["mysql_sale_window"] = during
    figures["sockets"] = opened
    if client and marks.get("watchers_ready") and client.get("stopped_at"):
        held = client["stopped_at"] - marks["watchers_ready"]["at"]
        figures["messages_per_socket_second"] = _r(client["messages"] / max(1, opened) / held, 3) if held > 0 else None
    return figures


def load_mysql(run_dir: Path) -> list[tuple]:
    path = run_dir / "mysql.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [(float(r["t"]), int(r["questions"]), int(r["queries"])) for r in csv.DictReader(f)]


def load_checks(run_dir: Path, phase: str = "sale") -> dict | None:
    found = [json.loads(p.read_text()) for p in sorted(run_dir.glob(f"{phase}-checks-*.json"))]
    if not found:
        return None
    keys = ("buyers_queued", "requests_queued", "ended_final", "told_202_above_limit", "queued_never_final")
    total = {k: sum(f.get(k, 0) for f in found) for k in keys}
    total["polling"] = all(f.get("polling", True) for f in found)
    total["passed"] = not total["told_202_above_limit"] and not total["queued_never_final"]
    return total


def _peak_rate(times: list[float], window_s: float) -> float:
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] > window_s:
            j += 1
        best = max(best, i - j + 1)
    return float(best) / window_s


def _r(value, digits: int = 2):
    return round(value, digits) if isinstance(value, (int, float)) else value


def hardware() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model or platform.processor(), "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1024 ** 3, 1),
            "python": platform.python_version(), "kernel": platform.release()}


# --- the summary -------------------------------------------------------------------------------

def build_summary(run_dir: Path) -> dict:
    run = json.loads((run_dir / "run.json").read_text())
    timeline = load_timeline(run_dir)
    marks = run["marks"]
    summary: dict = {
        "when": run["when"], "run_dir": str(run_dir), "git_commit": run.get("git_commit"),
        "git_dirty": run.get("git_dirty"), "hardware": run.get("hardware") or hardware(),
        "settings": run["config"], "redis": redis_of(run), "sale_id": run.get("sale_id"), "phases": {},
    }
    phases = summary["phases"]

    healthz: list[dict] = []
    for name in ("healthz", "healthz_after"):  # the reference, before and after the sale
        rows = [r for r in load_samples(run_dir, name) if r["name"] == "healthz"]
        if rows:
            first, last = rows[0]["start"], rows[-1]["start"]
            warmup = min(1.5, 0.2 * (last - first))  # leave out the ramp-up
            phases[name] = phase(rows, first + warmup, last, timeline)
            healthz += [r for r in rows if r["start"] >= first + warmup]

    login = marks.get("login")
    if login:
        res = resources(timeline, login["start"], login["end"])
        cpu = res["cpu_s"]["server"]
        phases["login"] = {"start": login["start"], "seconds": _r(login["end"] - login["start"], 3),
                           "requests": login["logins"], "rps": _r(login["per_s"], 1),
                           "server_cpu_us_per_request": _r(cpu / login["logins"] * 1e6, 1) if cpu else None, **res}

    sale = load_samples(run_dir, "sale")
    purchases = [r for r in sale if r["type"] == "POST" and r["name"] == "purchase"]
    outcomes = [r for r in sale if r["type"] == "ADMISSION"]
    accepted = [r for r in outcomes if r["name"] == "queued"]
    others = [r for r in sale if r["type"] not in ("ADMISSION", "ORDER", "POST") or
              (r["type"] == "POST" and r["name"] != "purchase")]
    others = [r for r in others if r["name"] != "time"]
    last_admission = max((r["end"] for r in accepted), default=None)
    results = [r for r in sale if r["name"] == "result"]
    written = load_order_rows(run_dir)  # request id -> when its order row was written
    if purchases:
        # the sale is open from the first purchase that was not refused `not_started`
        opened = min((r["start"] for r in outcomes if r["name"] != "not_started"), default=purchases[0]["start"])
        admission_end = last_admission if last_admission is not None else purchases[-1]["end"]
        admission = phase(purchases, opened, admission_end, timeline, per="purchase", others=others)
        if admission is not None:
            admission["outcomes"] = dict(sorted(Counter(
                r["name"] for r in outcomes if opened <= r["start"] <= admission_end).items()))
        phases["admission"] = admission
        after = [r for r in purchases if r["start"] > admission_end]
        if len(after) >= 10:
            # sold-out answers alone: from when the admitted purchases' own work was done (their
            # last order written, their last /result answered: the live drain's tail), when enough
            # sold-out answers come after it; the window from the last admission is kept beside
            live_drain = not marks.get("drain_server_started")
            tail_end = max([admission_end, *(r["end"] for r in results), *(written.values() if live_drain else ())])
            clean = [r for r in after if r["start"] > tail_end]
            window = clean if len(clean) >= max(10, len(after) // 4) else after
            sold_out = phase(window, window[0]["start"], window[-1]["end"], timeline, per="purchase", others=others)
            if sold_out is not None:
                sold_out["outcomes"] = dict(sorted(Counter(
                    r["name"] for r in outcomes if r["start"] > window[0]["start"] - 1e-6).items()))
                sold_out["after_admission_tail"] = window is clean
                if window is clean:
                    with_tail = phase(after, after[0]["start"], after[-1]["end"], timeline, per="purchase")
                    sold_out["with_admission_tail"] = {k: with_tail[k] for k in ("start", "seconds", "requests",
                                                                                 "server_cpu_us_per_purchase")}
            phases["sold_out"] = sold_out
        if results:
            phases["result_polls"] = {"requests": len(results), **latency(results),
                                      "errors_by_status": errors_by_status(results)}
        pages = [r for r in sale if r["name"].startswith("page ")]
        if pages:
            phases["browsing"] = {"requests": len(pages), **latency(pages), "errors_by_status": errors_by_status(pages)}
    drain = drain_figures(load_orders(run_dir), accepted, last_admission, timeline,
                          marks.get("drain_server_started"))
    if drain is not None:
        drain["finished"] = marks.get("drained")
        phases["drain"] = drain

    # from sending the purchase that was queued to its order row (MySQL's clock, the same host)
    to_order = [{"ms": (written[r["detail"]] - r["start"]) * 1000} for r in accepted if r["detail"] in written]
    order_rows = [r for r in sale if r["type"] == "ORDER"]
    seen = [r for r in order_rows if r["name"] == "purchase_to_order"]
    summary["purchase_to_order"] = {
        "orders": len(to_order), **latency(to_order),
        "seen_by_polling": {"orders": len(seen), **latency(seen)},
        "other_endings": dict(Counter(r["name"] for r in order_rows if r["name"] != "purchase_to_order")),
    }
    # click to outcome: from the purchase that was queued to the final answer of /result, as the page sees it
    results_calls = [r for r in sale if r["name"].startswith("result")]
    summary["click_to_outcome"] = {
        "buyers": len(order_rows), **latency(order_rows),
        "endings": dict(sorted(Counter(r["name"] for r in order_rows).items())),
        "result_calls_per_buyer": _r(len(results_calls) / len(order_rows), 2) if order_rows else None,
    }
    summary["outcomes_client"] = dict(sorted(Counter(r["name"] for r in outcomes).items()))
    summary["purchases_sent"] = len(purchases)

    storm = [r for r in load_samples(run_dir, "pages") if r["name"].startswith("page ")]
    if storm:  # every page asked for, over the time from the first sent to the last answered
        phases["page_storm"] = phase(storm, storm[0]["start"], max(r["end"] for r in storm), timeline)

    summary["healthz_reference"] = reference = healthz_reference(phases.get("healthz"), phases.get("healthz_after"))
    healthz_phase, admission_phase = reference, phases.get("admission")
    sold_out_phase, storm_phase = phases.get("sold_out"), phases.get("page_storm")
    summary["cpu_purchase_vs_healthz"] = _ratio(admission_phase, "server_cpu_us_per_purchase",
                                                healthz_phase, "server_cpu_us_per_request")
    summary["purchase_vs_healthz"] = _ratio(admission_phase, "rps", healthz_phase, "rps")
    summary["cpu_sold_out_vs_healthz"] = _ratio(sold_out_phase, "server_cpu_us_per_purchase",
                                                healthz_phase, "server_cpu_us_per_request")
    summary["p99_purchase_vs_healthz"] = _ratio(admission_phase, "p99_ms", healthz_phase, "p99_ms")
    summary["cpu_page_vs_healthz"] = _ratio(storm_phase, "server_cpu_us_per_request",
                                            healthz_phase, "server_cpu_us_per_request")
    summary["p99_page_vs_healthz"] = _ratio(storm_phase, "p99_ms", healthz_phase, "p99_ms")
    base_us = (healthz_phase or {}).get("server_cpu_us_per_request")
    hz_seconds = [value for name in ("healthz", "healthz_after") if phases.get(name)
                  for value in per_second_cpu_us(healthz, phases[name]["start"],
                                                 phases[name]["start"] + phases[name]["seconds"], timeline)]
    hz_spread = spread(hz_seconds, 1) if hz_seconds else None
    summary["ratio_spread"] = {
        "healthz_cpu_us_per_request": hz_spread,
        "cpu_purchase_vs_healthz": ratio_spread(purchases, admission_phase, timeline, base_us),
        "cpu_sold_out_vs_healthz": ratio_spread(purchases, sold_out_phase, timeline, base_us),
        "cpu_page_vs_healthz": ratio_spread(storm, storm_phase, timeline, base_us),
    }
    opens = marks.get("sale_opens")
    sale_end = (drain or {}).get("last_order_at") or (marks.get("sale") or {}).get("end")
    summary["watchers"] = watcher_figures(run, timeline, load_mysql(run_dir),
                                          (opens, sale_end) if opens and sale_end else None)
    bare = run.get("bare_insert")
    if drain is not None and bare:
        drain["bare_insert"] = bare
        rate = drain.get("orders_per_s_mean") if drain["mode"] == "deferred" else (
            drain.get("orders_per_s_with_backlog") or drain.get("orders_per_s_peak_1s"))
        drain["drain_rate_compared"] = rate
        drain["share_of_bare_insert"] = _r(rate / bare["rows_per_s"], 3) if rate and bare.get("rows_per_s") else None
    summary["drain_vs_bare_insert"] = (drain or {}).get("share_of_bare_insert")
    summary["client_checks"] = load_checks(run_dir)
    summary["affinity"] = run.get("affinity")
    summary["peak_rss_mb"] = {g: (_r(max((r[f"{g}_rss"] or 0) for r in timeline) / MB, 1) if timeline else None)
                              for g in GROUPS}
    summary["verdict"] = run.get("verdict")
    summary["notes"] = run.get("notes", [])
    return summary


def healthz_reference(before: dict | None, after: dict | None) -> dict | None:
    """What the ratios divide by: the mean of the /healthz phases before and after the sale (one
    of them when the other is missing), with the drift between the two."""
    both = [p for p in (before, after) if p and p.get("server_cpu_us_per_request")]
    if not both:
        return None
    ref: dict = {}
    for key in ("server_cpu_us_per_request", "p99_ms", "rps"):
        values = [p[key] for p in both if p.get(key) is not None]
        ref[key] = _r(sum(values) / len(values), 2) if values else None
    ref["phases"] = len(both)
    if len(both) == 2:
        ref["cpu_drift"] = _r(after["server_cpu_us_per_request"] / before["server_cpu_us_per_request"] - 1, 3)
    return ref


def redis_of(run: dict) -> dict:
    """run.json's `redis` (mode, shards, nodes); a run from before BENCH_REDIS ran on one Redis."""
    config = run.get("config") or {}
    redis = dict(run.get("redis") or {})
    redis.setdefault("mode", config.get("redis", "single"))
    redis.setdefault("shards", config.get("stock_shards", 1))
    return redis


def redis_label(summary: dict) -> str:
    """`single Redis, 1 shard` / `cluster (3 masters), 4 shards`."""
    redis = summary.get("redis") or redis_of({"config": summary.get("settings") or {}})
    shards = redis.get("shards") or 1
    where = f"cluster ({redis['masters']} masters)" if redis.get("masters") else (
        "cluster" if redis.get("mode") == "cluster" else "single Redis")
    return f"{where}, {shards} shard{'s' if shards != 1 else ''}"


def _ratio(a: dict | None, a_key: str, b: dict | None, b_key: str) -> float | None:
    if not a or not b or not a.get(a_key) or not b.get(b_key):
        return None
    return round(a[a_key] / b[b_key], 3)


# --- the chart -----------------------------------------------------------------------------------

def write_chart(run_dir: Path, summary: dict) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sale = load_samples(run_dir, "sale")
    http = [r for r in sale if r["type"] in ("GET", "POST") and r["name"] != "time"]
    if not http:
        return None
    t0 = min(r["start"] for r in http if r["name"] == "purchase") if any(
        r["name"] == "purchase" for r in http) else http[0]["start"]
    orders = load_orders(run_dir)
    timeline = load_timeline(run_dir)
    end = max([http[-1]["end"]] + orders[-1:]) - t0 + 0.5
    bin_s = 0.25 if end < 60 else 1.0
    n_bins = int(end / bin_s) + 1
    xs = [i * bin_s for i in range(n_bins)]

    def rate(name_test) -> list[float]:
        counts = [0] * n_bins
        for r in http:
            x = r["start"] - t0
            if 0 <= x < end and name_test(r["name"]):
                counts[int(x / bin_s)] += 1
        return [c / bin_s for c in counts]

    def p99(name: str) -> list[float]:
        bins: list[list[float]] = [[] for _ in range(n_bins)]
        for r in http:
            x = r["start"] - t0
            if 0 <= x < end and r["name"] == name:
                bins[int(x / bin_s)].append(r["ms"])
        return [percentile(sorted(b), 99) if b else float("nan") for b in bins]

    fig, (ax1, ax2, ax3, ax4) = plt.subplots(4, 1, figsize=(11, 13), sharex=True)
    ax1.plot(xs, rate(lambda n: n == "purchase"), label="purchase")
    ax1.plot(xs, rate(lambda n: n == "result"), label="result polls")
    ax1.plot(xs, rate(lambda n: n.startswith("page ")), label="pages")
    hz = (summary["phases"].get("healthz") or {}).get("rps")
    if hz:
        ax1.axhline(hz, color="grey", linestyle="--", linewidth=1, label=f"/healthz phase ({hz:.0f}/s)")
    ax1.set_ylabel("requests/s")
    ax1.legend(loc="upper right")
    ax1.set_title(f"FlashSale bench {summary['when']}: {summary['settings']['buyers']} buyers, "
                  f"stock {summary['settings']['stock']}, {summary['settings']['users']} users, "
                  f"{summary['settings']['workers']} workers, {redis_label(summary)}")
    ax2.plot(xs, p99("purchase"), label="purchase p99")
    ax2.plot(xs, p99("result"), label="result p99")
    outcomes = [r for r in sale if r["type"] == "ORDER"]
    if outcomes:
        bins: list[list[float]] = [[] for _ in range(n_bins)]
        for r in outcomes:
            x = r["start"] - t0
            if 0 <= x < end:
                bins[int(x / bin_s)].append(r["ms"])
        ax2.plot(xs, [percentile(sorted(b), 99) if b else float("nan") for b in bins],
                 label="click to outcome p99 (by click time)")
    ax2.set_ylabel("p99 latency (ms)")
    ax2.legend(loc="upper right")
    ax3.step([t - t0 for t in orders], range(1, len(orders) + 1), where="post", label="orders written (MySQL)")
    accepted = sorted(r["end"] - t0 for r in sale if r["type"] == "ADMISSION" and r["name"] == "queued")
    ax3.step(accepted, range(1, len(accepted) + 1), where="post", label="accepted (202)")
    stock = [(r["t"] - t0, r["stock"]) for r in timeline if r.get("stock") is not None and r["t"] >= t0 - 1]
    if stock:
        ax3.plot([s[0] for s in stock], [s[1] for s in stock], label="stock left (Redis)", linestyle=":")
    ax3.set_ylabel("count")
    ax3.set_xlabel("seconds since the first purchase")
    ax3.legend(loc="center right")
    mysql = load_mysql(run_dir)
    if len(mysql) > 1:
        mx = [(b[0] + a[0]) / 2 - t0 for a, b in zip(mysql, mysql[1:])]
        my = [max(0.0, (b[1] - a[1] - 1) / (b[0] - a[0])) if b[0] > a[0] else 0.0 for a, b in zip(mysql, mysql[1:])]
        keep = [(x, y) for x, y in zip(mx, my) if x >= -30]
        ax4.plot([k[0] for k in keep], [k[1] for k in keep], label="MySQL questions/s (global)")
    w = summary.get("watchers") or {}
    if w.get("sockets"):
        ax4.set_title(f"{w['sockets']} watchers open from before the opening to the end of the sale", fontsize=9)
    ax4.set_ylabel("statements/s")
    ax4.set_xlabel("seconds since the first purchase")
    ax4.legend(loc="upper right")
    for ax in (ax1, ax2, ax3, ax4):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = run_dir / "chart.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- the table -----------------------------------------------------------------------------------

def table(summary: dict) -> str:
    settings = summary.get("settings") or {}
    lines = [f"{redis_label(summary)}; {settings.get('workers', '-')} workers, {settings.get('buyers', '-')} buyers, "
             f"stock {settings.get('stock', '-')}, {settings.get('users', '-')} users",
             f"{'phase':<12}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
             f"{'errors':>8}{'srv CPU us/req':>16}"]
    for name in ("login", "page_storm", "healthz", "admission", "sold_out", "healthz_after"):
        p = summary["phases"].get(name)
        if not p:
            continue
        cpu = p.get("server_cpu_us_per_purchase", p.get("server_cpu_us_per_request"))
        lines.append(f"{name:<12}{p.get('requests', 0):>10}{_f(p.get('rps')):>10}{_f(p.get('p50_ms')):>9}"
                     f"{_f(p.get('p95_ms')):>9}{_f(p.get('p99_ms')):>9}{_f(p.get('max_ms')):>9}"
                     f"{sum((p.get('errors_by_status') or {}).values()):>8}{_f(cpu):>16}")
    d = summary["phases"].get("drain")
    if d and d.get("mode") == "deferred":
        lines.append(f"drain (deferred): {d['orders']} orders in {_f(d.get('drain_seconds'))} s = "
                     f"{_f(d.get('orders_per_s_mean'))} orders/s, server CPU {_f(d.get('server_cpu_us_per_order'))} "
                     f"us/order, MariaDB {_f(d.get('mariadb_cpu_us_per_order'))} us/order")
    elif d:
        lines.append(f"drain (live): {d['orders']} orders, best 1 s {_f(d.get('orders_per_s_peak_1s'))}/s, "
                     f"{_f(d.get('orders_per_s_with_backlog'))}/s while a batch waited "
                     f"({_f(d.get('backlog_seconds'))} s), last order "
                     f"{_f(d.get('seconds_last_admission_to_last_order'))} s after the last admission")
    ref = summary.get("healthz_reference") or {}
    if ref.get("phases") == 2:
        lines.append(f"/healthz reference (the ratios' base): mean of before and after the sale, "
                     f"{_f(ref.get('server_cpu_us_per_request'))} us/req, p99 {_f(ref.get('p99_ms'))} ms; "
                     f"CPU drift after/before {_f(_pct(ref.get('cpu_drift')))}%")
    lines.append(f"server CPU per purchase / per /healthz: {_f(summary.get('cpu_purchase_vs_healthz'))}   "
                 f"purchase req/s / healthz req/s: {_f(summary.get('purchase_vs_healthz'))}   Redis CPU per "
                 f"purchase: {_f((summary['phases'].get('admission') or {}).get('redis_cpu_us_per_purchase'))} us")
    spreads = summary.get("ratio_spread") or {}

    def with_spread(key: str) -> str:
        sp = spreads.get(key)
        return _f(summary.get(key)) + (f" (per s {_f(sp['min'])}..{_f(sp['median'])}..{_f(sp['max'])})" if sp else "")

    lines.append(f"CPU ratios to /healthz (whole phase; per-second min..median..max): purchase "
                 f"{with_spread('cpu_purchase_vs_healthz')}, sold-out {with_spread('cpu_sold_out_vs_healthz')}, "
                 f"page {with_spread('cpu_page_vs_healthz')}")
    lines.append(f"p99 ratios to /healthz: purchase {_f(summary.get('p99_purchase_vs_healthz'))}, "
                 f"page {_f(summary.get('p99_page_vs_healthz'))}")
    cto = summary.get("click_to_outcome") or {}
    lines.append(f"click to outcome (purchase queued to final /result): p50 {_f(cto.get('p50_ms'))} ms, "
                 f"p99 {_f(cto.get('p99_ms'))} ms, {cto.get('buyers', 0)} buyers, "
                 f"{_f(cto.get('result_calls_per_buyer'))} /result calls each, endings {cto.get('endings') or {}}")
    w = summary.get("watchers")
    if w:
        client = w.get("client") or {}
        lines.append(f"watchers: {w.get('sockets')} sockets ({client.get('failed', '-')} failed, "
                     f"{client.get('closed_early', '-')} closed early), server CPU "
                     f"{_f(w.get('server_cpu_us_per_socket_second'))} us per socket-second; MySQL questions/s "
                     f"without {_f(w.get('mysql_questions_per_s_unwatched'))}, with "
                     f"{_f(w.get('mysql_questions_per_s_watched'))} (median second: without "
                     f"{_f(w.get('mysql_questions_per_s_unwatched_median'))}, with "
                     f"{_f(w.get('mysql_questions_per_s_watched_median'))}), during the sale "
                     f"{_f(w.get('mysql_questions_per_s_sale'))}")
    if d and d.get("bare_insert"):
        b = d["bare_insert"]
        lines.append(f"drain {_f(d.get('drain_rate_compared'))} orders/s = "
                     f"{_f(_pct(d.get('share_of_bare_insert')))}% of a bare multi-row INSERT "
                     f"({_f(b.get('rows_per_s'))} rows/s, median of passes "
                     f"{', '.join(_f(v) for v in b.get('passes_rows_per_s') or [b.get('rows_per_s')])}; "
                     f"{b['rows']} rows in batches of {b['batch']})")
    checks = summary.get("client_checks")
    if checks:
        lines.append(f"client checks: {'ok' if checks['passed'] else 'FAILED'} (202 above the limit "
                     f"{checks['told_202_above_limit']}, 202 never final {checks['queued_never_final']})")
    pto = summary.get("purchase_to_order") or {}
    polled = pto.get("seen_by_polling") or {}
    lines.append(f"purchase to order row: p50 {_f(pto.get('p50_ms'))} ms, p99 {_f(pto.get('p99_ms'))} ms; "
                 f"to success seen by polling: p50 {_f(polled.get('p50_ms'))} ms ({polled.get('orders', 0)} buyers)")
    rss = summary.get("peak_rss_mb") or {}
    lines.append("peak RSS MB: " + ", ".join(f"{g} {_f(v)}" for g, v in rss.items()))
    v = summary.get("verdict")
    if v:
        lines.append(f"verdict: {'PASS' if v['passed'] else 'FAIL ' + ', '.join(v['failed_checks'])} "
                     f"(orders {v['orders']} / accepted {v['accepted_server']} / stock {v['total_stock']}, "
                     f"remaining {v['redis_remaining']}, refused while stock remained "
                     f"{v['refused_sold_out_while_stock_remained']})")
    return "\n".join(lines)


def _pct(value):
    return value * 100 if isinstance(value, (int, float)) else None


def _f(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write(run_dir: Path, results_dir: Path | None = None) -> dict:
    """summary.json in the run directory and as results/latest.json, the chart; returns the summary."""
    summary = build_summary(run_dir)
    chart = write_chart(run_dir, summary)
    summary["chart"] = str(chart) if chart else None
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False))
    results_dir = results_dir or run_dir.parent
    shutil.copyfile(run_dir / "summary.json", results_dir / "latest.json")
    return summary


def latest_run(results_dir: Path = RESULTS_DIR) -> Path:
    runs = sorted(p for p in results_dir.iterdir() if p.is_dir() and (p / "run.json").exists())
    if not runs:
        raise SystemExit(f"no runs under {results_dir}")
    return runs[-1]


def main() -> int:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else latest_run()
    summary = write(run_dir)
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
