"""Bench runs side by side: `python bench/compare.py A B [C ...]` (each a summary.json, a run directory or latest).

Each column is labelled with its letter, Redis mode and the sale's shards (`B cluster/4`). The
scale-out figures come first: server CPU per purchase in admission (and its ratio to /healthz),
Redis's CPU per purchase, and the drain's orders/s; then every other figure. Two runs get a
change column (B against A); more runs get each scale-out figure relative to A instead.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/compare.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.config import RESULTS_DIR  # noqa: E402
from bench.report import redis_of  # noqa: E402

# (dotted path in summary.json, label, +1 when higher is better, -1 when lower is better, 0 neutral)
FIGURES = [
    ("phases.healthz.rps", "healthz req/s", 1),
    ("phases.healthz.p99_ms", "healthz p99 ms", -1),
    ("phases.healthz.server_cpu_us_per_request", "healthz server CPU us/req", -1),
    ("phases.healthz_after.server_cpu_us_per_request", "healthz after the sale, CPU us/req", -1),
    ("healthz_reference.server_cpu_us_per_request", "healthz reference (mean), CPU us/req", -1),
    ("healthz_reference.cpu_drift", "healthz CPU drift after/before", 0),
    ("phases.login.rps", "logins/s", 1),
    ("phases.admission.rps", "admission purchases/s", 1),
    ("phases.admission.p50_ms", "admission p50 ms", -1),
    ("phases.admission.p95_ms", "admission p95 ms", -1),
    ("phases.admission.p99_ms", "admission p99 ms", -1),
    ("phases.admission.max_ms", "admission max ms", -1),
    ("phases.admission.server_cpu_us_per_purchase", "admission server CPU us/purchase", -1),
    ("phases.admission.redis_cpu_us_per_purchase", "admission Redis CPU us/purchase", -1),
    ("phases.admission.server_cpu_us_per_request", "admission server CPU us/request", -1),
    ("cpu_purchase_vs_healthz", "CPU purchase / healthz", -1),
    ("purchase_vs_healthz", "req/s purchase / healthz", 1),
    ("p99_purchase_vs_healthz", "p99 purchase / healthz", -1),
    ("ratio_spread.cpu_purchase_vs_healthz.min", "  per-second min", -1),
    ("ratio_spread.cpu_purchase_vs_healthz.max", "  per-second max", -1),
    ("phases.sold_out.rps", "sold-out purchases/s", 1),
    ("cpu_sold_out_vs_healthz", "CPU sold-out / healthz", -1),
    ("phases.sold_out.p99_ms", "sold-out p99 ms", -1),
    ("phases.sold_out.server_cpu_us_per_purchase", "sold-out server CPU us/purchase", -1),
    ("phases.result_polls.p99_ms", "result poll p99 ms", -1),
    ("click_to_outcome.p50_ms", "click to outcome p50 ms", -1),
    ("click_to_outcome.p99_ms", "click to outcome p99 ms", -1),
    ("click_to_outcome.result_calls_per_buyer", "/result calls per buyer", -1),
    ("phases.page_storm.rps", "page storm req/s", 1),
    ("phases.page_storm.p99_ms", "page storm p99 ms", -1),
    ("cpu_page_vs_healthz", "CPU page / healthz", -1),
    ("p99_page_vs_healthz", "p99 page / healthz", -1),
    ("watchers.sockets", "watchers (sockets)", 0),
    ("watchers.server_cpu_us_per_socket_second", "watcher CPU us/socket-s", -1),
    ("watchers.mysql_questions_per_s_unwatched", "MySQL q/s without watchers", -1),
    ("watchers.mysql_questions_per_s_watched", "MySQL q/s with watchers", -1),
    ("watchers.mysql_questions_per_s_unwatched_median", "MySQL q/s without watchers (median s)", -1),
    ("watchers.mysql_questions_per_s_watched_median", "MySQL q/s with watchers (median s)", -1),
    ("watchers.mysql_questions_per_s_sale", "MySQL q/s during the sale", -1),
    ("phases.drain.orders_per_s_with_backlog", "drain orders/s (backlog)", 1),
    ("phases.drain.orders_per_s_peak_1s", "drain orders/s (best 1 s)", 1),
    ("phases.drain.orders_per_s_mean", "drain orders/s (first to last order)", 1),
    ("phases.drain.max_backlog_one_shard", "drain max backlog of one shard", 0),
    ("phases.drain.seconds_last_admission_to_last_order", "last admission to last order s", -1),
    ("phases.drain.bare_insert.rows_per_s", "bare multi-row INSERT rows/s", 0),
    ("drain_vs_bare_insert", "drain / bare INSERT", 1),
    ("phases.drain.server_cpu_us_per_order", "drain server CPU us/order", -1),
    ("phases.drain.mariadb_cpu_us_per_order", "drain MariaDB CPU us/order", -1),
    ("purchase_to_order.p50_ms", "purchase to order row p50 ms", -1),
    ("purchase_to_order.p99_ms", "purchase to order row p99 ms", -1),
    ("purchase_to_order.seen_by_polling.p50_ms", "purchase to success polled p50 ms", -1),
    ("peak_rss_mb.server", "peak RSS server MB", -1),
    ("peak_rss_mb.mariadb", "peak RSS MariaDB MB", -1),
    ("peak_rss_mb.redis", "peak RSS Redis MB", -1),
    ("verdict.orders", "orders", 0),
    ("verdict.refused_sold_out_while_stock_remained", "refused while stock remained", -1),
    ("verdict.passed", "verdict passed", 0),
]
# shown first, side by side: what a scale-out (cluster, shards) changes
SCALE_OUT = (
    "phases.healthz.server_cpu_us_per_request",
    "phases.admission.server_cpu_us_per_purchase",
    "cpu_purchase_vs_healthz",
    "ratio_spread.cpu_purchase_vs_healthz.min",
    "ratio_spread.cpu_purchase_vs_healthz.max",
    "phases.admission.redis_cpu_us_per_purchase",
    "phases.admission.rps",
    "phases.drain.orders_per_s_with_backlog",
    "phases.drain.orders_per_s_peak_1s",
    "phases.drain.orders_per_s_mean",
    "drain_vs_bare_insert",
    "verdict.passed",
)
SETTINGS = ("buyers", "stock", "users", "browsers", "workers", "locust_processes", "double_click",
            "deferred_drain", "watchers", "page_storm_s", "result_wait_ms", "pin")
MISSING = "\u2014"  # a figure the run did not have (older runs lack the newer ones)


def load(arg: str) -> dict:
    path = Path(arg)
    if arg == "latest":
        path = RESULTS_DIR / "latest.json"
    elif path.is_dir():
        path = path / "summary.json"
    if not path.exists():
        raise SystemExit(f"no summary at {path}")
    return json.loads(path.read_text())


def get(summary: dict, dotted: str):
    value = summary
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def change(a, b, better: int) -> str:
    if isinstance(a, bool) or isinstance(b, bool):
        return "" if a == b else "changed"
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return ""
    if a == 0:
        return "" if b == 0 else "new"
    pct = (b - a) / abs(a) * 100
    mark = ""
    if better and abs(pct) >= 5:
        mark = " better" if (pct > 0) == (better > 0) else " worse"
    return f"{pct:+.1f}%{mark}"


def fmt(value) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) < 10:  # ratios: 3.27, not 3.3
            return f"{value:.2f}"
        return f"{value:,.1f}" if abs(value) < 100_000 else f"{value:,.0f}"
    return str(value)


def _when(summary: dict) -> str:
    return (summary.get("when") or "-")[5:16].replace("T", " ")


def redis_mode(summary: dict) -> tuple[str, int]:
    """(mode, shards) of a run; runs from before BENCH_REDIS ran on one Redis."""
    redis = summary.get("redis") or redis_of({"config": summary.get("settings") or {}})
    return redis.get("mode") or "single", int(redis.get("shards") or 1)


def label(summary: dict, letter: str) -> str:
    mode, shards = redis_mode(summary)
    return f"{letter} {mode}/{shards}"


def ratio(a, b) -> str:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or \
            not isinstance(b, (int, float)) or a == 0:
        return MISSING
    return f"{b / a:.2f}x"


COLUMN = 14


def compare(*runs: dict) -> str:
    """Two or more summaries side by side (with a change column when there are two)."""
    if len(runs) < 2:
        raise ValueError("compare needs two runs or more")
    letters = [chr(ord("A") + i) if i < 26 else f"#{i + 1}" for i in range(len(runs))]
    pair = len(runs) == 2
    labels = {dotted: (text, better) for dotted, text, better in FIGURES}
    width = max(len(text) for _, text, _ in FIGURES) + 2

    def row(name: str, values: list, note: str = "") -> str:
        cells = "".join(f"{v:>{COLUMN}}" for v in values)
        return f"{name:<{width}}{cells}" + (f"  {note}" if note else "")

    lines = [row("", [label(r, x) for r, x in zip(runs, letters)], "change" if pair else ""),
             row("run (UTC)", [_when(r) for r in runs]),
             row("commit", [(r.get("git_commit") or "-")[:10] for r in runs])]
    modes = [redis_mode(r) for r in runs]
    lines.append(row("redis", [m for m, _ in modes], "" if len({m for m, _ in modes}) == 1 else "differs"))
    lines.append(row("shards", [str(n) for _, n in modes], "" if len({n for _, n in modes}) == 1 else "differs"))
    for name in SETTINGS:
        values = [get(r, f"settings.{name}") for r in runs]
        if any(v is not None for v in values):
            lines.append(row(name, [fmt(v) for v in values], "" if len({repr(v) for v in values}) == 1 else "differs"))

    lines += ["", "scale-out" + ("" if pair else f" (relative to {letters[0]} below each figure)")]
    for dotted in SCALE_OUT:
        text, better = labels[dotted]
        values = [get(r, dotted) for r in runs]
        if all(v is None for v in values):
            continue
        lines.append(row(text, [fmt(v) for v in values], change(values[0], values[1], better) if pair else ""))
        if not pair and any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            lines.append(row(f"  vs {letters[0]}", [ratio(values[0], v) for v in values]))

    lines += ["", "other figures"]
    for dotted, text, better in FIGURES:
        if dotted in SCALE_OUT:
            continue
        values = [get(r, dotted) for r in runs]
        if all(v is None for v in values):
            continue
        lines.append(row(text, [fmt(v) for v in values], change(values[0], values[1], better) if pair else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print(compare(*(load(arg) for arg in argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
