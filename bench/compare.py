"""Two bench runs side by side: `python bench/compare.py A B` (a summary.json, a run directory or latest)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/compare.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.config import RESULTS_DIR  # noqa: E402

# (dotted path in summary.json, label, +1 when higher is better, -1 when lower is better, 0 neutral)
FIGURES = [
    ("phases.healthz.rps", "healthz req/s", 1),
    ("phases.healthz.p99_ms", "healthz p99 ms", -1),
    ("phases.healthz.server_cpu_us_per_request", "healthz server CPU us/req", -1),
    ("phases.login.rps", "logins/s", 1),
    ("phases.admission.rps", "admission purchases/s", 1),
    ("phases.admission.p50_ms", "admission p50 ms", -1),
    ("phases.admission.p95_ms", "admission p95 ms", -1),
    ("phases.admission.p99_ms", "admission p99 ms", -1),
    ("phases.admission.max_ms", "admission max ms", -1),
    ("phases.admission.server_cpu_us_per_purchase", "admission server CPU us/purchase", -1),
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
    ("watchers.mysql_questions_per_s_sale", "MySQL q/s during the sale", -1),
    ("phases.drain.orders_per_s_with_backlog", "drain orders/s (backlog)", 1),
    ("phases.drain.orders_per_s_peak_1s", "drain orders/s (best 1 s)", 1),
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
        return f"{value:,.1f}" if abs(value) < 100_000 else f"{value:,.0f}"
    return str(value)


def _when(summary: dict) -> str:
    return (summary.get("when") or "-")[5:16].replace("T", " ")


def compare(a: dict, b: dict) -> str:
    width = max(len(label) for _, label, _ in FIGURES) + 2
    lines = [f"{'':<{width}}{'A':>14}{'B':>14}  change",
             f"{'run (UTC)':<{width}}{_when(a):>14}{_when(b):>14}",
             f"{'commit':<{width}}{(a.get('git_commit') or '-')[:10]:>14}{(b.get('git_commit') or '-')[:10]:>14}"]
    for name in SETTINGS:
        va, vb = get(a, f"settings.{name}"), get(b, f"settings.{name}")
        if va is not None or vb is not None:
            lines.append(f"{name:<{width}}{fmt(va):>14}{fmt(vb):>14}  {'' if va == vb else 'differs'}")
    lines.append("")
    for dotted, label, better in FIGURES:
        va, vb = get(a, dotted), get(b, dotted)
        if va is None and vb is None:
            continue
        lines.append(f"{label:<{width}}{fmt(va):>14}{fmt(vb):>14}  {change(va, vb, better)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print(compare(load(argv[0]), load(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
