"""ops/: the Grafana dashboard and the Prometheus alert rules name only metrics /metrics serves, of the right type."""
from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from flashsale.settings import ROOT

from tests.support.auth import session_cookie
from tests.support.seckill import buyers, count_orders, make_sale, purchase
from tests.support.waiting import wait_until

DASHBOARD = ROOT / "ops" / "grafana" / "flashsale.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"

NAME = re.compile(r"\bflashsale_[a-zA-Z0-9_:]*")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# functions that need a counter (or a histogram's _bucket/_sum/_count) inside their range vector
COUNTER_FUNCTIONS = ("rate", "irate", "increase")
GAUGE_FUNCTIONS = ("deriv", "delta", "predict_linear")
SELECTOR = re.compile(r'\b(flashsale_[a-zA-Z0-9_:]*)\s*\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}')
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# labels Prometheus adds at scrape time, and the one the dashboard makes with label_replace
TARGET_LABELS = {"job", "instance"}
MADE_LABELS = {"class"}
SEVERITIES = {"critical", "warning", "info"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panel_exprs(board: dict) -> list[str]:
    found = []
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [t["expr"] for t in inner.get("targets", [])]
    return found


def variable_queries(board: dict) -> list[str]:
    return [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def names_in(expr: str) -> set[str]:
    return set(NAME.findall(STRING.sub('""', expr)))


def calls(expr: str, functions: tuple[str, ...]) -> list[str]:
    """The argument text of every call of one of `functions` in expr."""
    args = []
    for match in re.finditer(r"\b(%s)\s*\(" % "|".join(functions), expr):
        depth, start = 1, match.end()
        for at in range(start, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[at], 0)
            if depth == 0:
                args.append(expr[start:at])
                break
        else:
            raise AssertionError(f"unbalanced parentheses in {expr!r}")
    return args


class Scrape:
    """One /metrics text: each sample name's family type and label names, and every label value."""

    def __init__(self, text: str):
        self.kind: dict[str, str] = {}  # sample name -> counter / gauge / histogram
        self.sample_kind: dict[str, str] = {}  # sample name -> total / bucket / sum / count / created / value
        self.labels: dict[str, set[str]] = {}
        self.values: dict[str, set[str]] = {}  # label name -> every value seen
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.kind[sample.name] = family.type
                suffix = sample.name[len(family.name):].lstrip("_") or "value"
                self.sample_kind[sample.name] = suffix
                self.labels.setdefault(sample.name, set()).update(sample.labels)
                for label, value in sample.labels.items():
                    self.values.setdefault(label, set()).add(value)

    def is_rate_able(self, name: str) -> bool:
        return ((self.kind[name] == "counter" and self.sample_kind[name] == "total")
                or (self.kind[name] == "histogram" and self.sample_kind[name] in ("bucket", "sum", "count")))


@pytest.fixture
async def scrape(client, ctx, factory) -> Scrape:
    """/metrics of the test app after a page view, a purchase that became an order and a refusal."""
    sale = await make_sale(ctx, factory, stock=1)
    first, second = await buyers(ctx, 2)
    headers, _ = await session_cookie(client.app, first["id"])
    status, body = await purchase(client, sale["id"], headers, first["address_id"])
    assert status == 202, body
    headers, _ = await session_cookie(client.app, second["id"])
    status, body = await purchase(client, sale["id"], headers, second["address_id"])
    assert status == 409 and body["data"]["reason"] == "sold_out", body

    async def written():
        return await count_orders(ctx, sale["id"]) == 1
    await wait_until(written, what="the order written by the consumers")
    # pages last: a page may leave a session cookie in the client's jar, beside the buyers' headers
    assert (await client.get("/")).status == 200
    assert (await client.get("/healthz")).status == 200
    r = await client.get("/metrics")
    assert r.status == 200
    found = Scrape(await r.text())
    assert {"queued", "sold_out"} <= found.values["outcome"]
    assert str(sale["id"]) in found.values["sale"]
    return found


def all_exprs() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard panel query and every alert rule."""
    board = dashboard()
    found = [(f"dashboard: {expr}", expr) for expr in panel_exprs(board)]
    return found + [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


async def test_every_metric_the_dashboard_and_alerts_name_is_served(scrape):
    named = {}
    for where, expr in all_exprs() + [(f"variable: {q}", q) for q in variable_queries(dashboard())]:
        for name in names_in(expr):
            named.setdefault(name, where)
    assert named, "no flashsale_ metric found in ops/"
    missing = {name: where for name, where in named.items() if name not in scrape.kind}
    assert missing == {}, f"not in /metrics: {missing}"


async def test_queries_use_each_metric_as_its_type_and_existing_labels(scrape):
    for where, expr in all_exprs():
        in_counter_fn = {n for arg in calls(expr, COUNTER_FUNCTIONS) for n in names_in(arg)}
        in_gauge_fn = {n for arg in calls(expr, GAUGE_FUNCTIONS) for n in names_in(arg)}
        for name in in_counter_fn:
            assert scrape.is_rate_able(name), f"{where}: rate/increase over {name}, a {scrape.kind[name]}"
        for name in in_gauge_fn:
            assert scrape.kind[name] == "gauge", f"{where}: deriv/delta over {name}, a {scrape.kind[name]}"
        for name in names_in(expr) - in_counter_fn - in_gauge_fn:
            # a counter's raw value or a histogram's cumulative sum means nothing on a graph
            assert scrape.kind[name] == "gauge", f"{where}: {name} ({scrape.kind[name]}) outside rate()"
        for arg in calls(expr, ("histogram_quantile",)):
            assert names_in(arg) and all(scrape.sample_kind[n] == "bucket" for n in names_in(arg)), \
                f"{where}: histogram_quantile over {names_in(arg)}"
            assert re.search(r"\bby\s*\([^)]*\ble\b", arg), f"{where}: histogram_quantile without `by (le)`"
        labels_here = set().union(*(scrape.labels[n] for n in names_in(expr))) | TARGET_LABELS | MADE_LABELS
        for name, matchers in SELECTOR.findall(expr):
            for label, op, value in MATCHER.findall(matchers):
                assert label in scrape.labels[name] | TARGET_LABELS, f"{where}: {name} has no label {label}"
                if op == "=" and label not in TARGET_LABELS:
                    # an exact label value (a route template) that /metrics never shows would graph nothing
                    assert value in scrape.values[label], f"{where}: no {label}={value!r} in /metrics"
        for group in BY.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in labels_here, f"{where}: by ({label}), a label none of its metrics has"


def test_dashboard_is_an_importable_grafana_dashboard():
    board = dashboard()
    assert board["schemaVersion"] >= 36 and board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "label_values(flashsale_stream_pending" in variables["sale"]["query"]
    assert variables["sale"]["includeAll"] and variables["sale"]["multi"]
    ids = []
    for panel in board["panels"]:
        ids.append(panel["id"])
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    assert len(ids) == len(set(ids))
    # what issue 13 asks the dashboard to show
    shown = set().union(*(names_in(e) for e in panel_exprs(board)))
    assert {"flashsale_admissions_total", "flashsale_http_request_duration_seconds_bucket",
            "flashsale_http_requests_total", "flashsale_stream_lag", "flashsale_stream_pending",
            "flashsale_dead_letters_total", "flashsale_dead_letter_stream_length",
            "flashsale_orders_written_total"} <= shown
    # the per-sale gauges are read from the shared Redis by every instance: never summed over instances
    for expr in panel_exprs(board):
        if names_in(expr) & {"flashsale_stream_lag", "flashsale_stream_pending", "flashsale_stream_length",
                             "flashsale_dead_letter_stream_length", "flashsale_stock_remaining"}:
            assert not re.search(r"\bsum\b", expr), expr


def test_every_alert_has_a_duration_severity_and_explanation():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for"))), f"{rule['alert']}: no `for` duration"
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip(), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    # what issue 13 asks the rules to catch
    by_metric = {name: [r["alert"] for r in rules if name in names_in(r["expr"])] for name in
                 ("flashsale_stream_pending", "flashsale_stream_lag", "flashsale_dead_letters_total",
                  "flashsale_http_requests_total")}
    assert all(by_metric.values()), by_metric
    assert any(re.search(r'status=~"5\.\."', r["expr"]) for r in rules)
    assert any(re.fullmatch(r'up\{job="flashsale"\} == 0', r["expr"].strip()) for r in rules)
