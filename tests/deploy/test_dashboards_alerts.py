"""Dashboards and alert rules: well-formed, every query valid PromQL, the asked-for panels.

That every metric they name is exported by a running service is checked against the
services themselves in test_metrics_exported.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from metric_names import (
    ALERT_RULES,
    DASHBOARDS,
    REPO,
    alert_rules,
    dashboard_queries,
    names_exported,
    names_used,
    promql_metric_names,
)

GRAFANA = REPO / "deploy" / "grafana"


def test_there_are_dashboards_and_rules() -> None:
    assert [p.name for p in DASHBOARDS] == ["upward-streams.json"]
    assert [p.name for p in ALERT_RULES] == ["alerts.yaml"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_are_promql(path: Path) -> None:
    queries = dashboard_queries(path)
    assert len(queries) >= 15
    for query in queries:
        assert promql_metric_names(query), query


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 39
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job"}


def test_dashboard_shows_what_ops_asked_for() -> None:
    used = {name for name, files in names_used().items() if "upward-streams.json" in files}
    assert {
        "upward_events_consumed_total",  # event rates per topic and type
        "upward_events_produced_total",
        "upward_consumer_lag_messages",  # lag in messages (and seconds, with the rate)
        "upward_handler_latency_seconds_bucket",  # p50 / p99
        "upward_outbox_backlog",
        "upward_events_dead_lettered_total",
        "upward_pair_health_pairs",  # pair health distribution
        "upward_notifications_sent_total",
        "upward_notifications_failed_total",
    } <= used


@pytest.mark.parametrize("path", ALERT_RULES, ids=lambda p: p.name)
def test_alert_rules_are_complete(path: Path) -> None:
    rules = alert_rules(path)
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert promql_metric_names(rule["expr"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = rule["annotations"]["runbook"]
        anchor = runbook.removeprefix("docs/operations.md#")
        assert anchor in _operations_anchors(), (rule["alert"], runbook)
    assert {
        "UpwardConsumerLagGrowing",
        "UpwardDeadLettersGrowing",
        "UpwardOutboxStuck",
        "UpwardNotReady",
        "UpwardHandlersFailing",
    } <= set(names)


def _operations_anchors() -> set[str]:
    """GitHub-style anchors of the headings of docs/operations.md."""
    headings = [
        line.lstrip("#").strip()
        for line in (REPO / "docs" / "operations.md").read_text().splitlines()
        if line.startswith("#")
    ]
    return {
        "".join(c for c in h.lower().replace(" ", "-") if c.isalnum() or c in "-_")
        for h in headings
    }


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/upward.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert source["datasources"][0]["type"] == "prometheus"


def test_the_name_extractors_see_what_they_should() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval])))'
        " / clamp_min(sum(b_total offset 5m), 1) and on() max_over_time(c[1h:5m]) > -d"
    )
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c", "d"}
    with pytest.raises(ValueError):
        promql_metric_names("sum(rate(x[5m])")
    page = (
        "# HELP h_seconds t\n# TYPE h_seconds histogram\n"
        "# HELP c_total t\n# TYPE c_total counter\n"
        'g{a="1"} 3.0\n'
    )
    assert names_exported(page) == {"h_seconds_bucket", "h_seconds_sum", "h_seconds_count",
                                    "c_total", "g"}  # fmt: skip
