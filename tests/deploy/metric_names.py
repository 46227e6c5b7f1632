"""Metric names: those dashboards and alert rules query, and those a /metrics page exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
ALERT_RULES = sorted((REPO / "deploy" / "prometheus").glob("alerts*.yaml"))

EXTERNAL_METRICS = {
    "up": "Prometheus itself: 1 when the scrape of a target succeeded",
    "kube_pod_container_status_ready": "kube-state-metrics: the kubelet's readiness verdict",
}
"""Names queried on purpose that no Upward service exports, and who exports them."""

_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "${job}": ".*",
}
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (it must parse as PromQL)."""
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(path: Path) -> list[str]:
    """Every PromQL expression of a Grafana dashboard's panels."""
    dashboard = json.loads(path.read_text())
    return [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def dashboard_variable_metrics(path: Path) -> set[str]:
    """Metric names of the dashboard's ``label_values(metric, label)`` variables."""
    dashboard = json.loads(path.read_text())
    return {
        match
        for variable in dashboard["templating"]["list"]
        for match in _LABEL_VALUES.findall(json.dumps(variable.get("query", "")))
    }


def alert_rules(path: Path) -> list[dict[str, Any]]:
    """The rules of a Prometheus rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def names_used() -> dict[str, set[str]]:
    """Metric name -> the files (dashboards, rule files) that query it."""
    used: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        names = set().union(*map(promql_metric_names, dashboard_queries(path)))
        for name in names | dashboard_variable_metrics(path):
            used.setdefault(name, set()).add(path.name)
    for path in ALERT_RULES:
        for rule in alert_rules(path):
            for name in promql_metric_names(rule["expr"]):
                used.setdefault(name, set()).add(path.name)
    return used


_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$")
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def names_exported(exposition: str) -> set[str]:
    """Every series name a Prometheus text page can carry, from its TYPE lines and samples.

    A labelled metric without samples yet still has its ``# TYPE`` line; a histogram's
    series are ``<name>_bucket``, ``_sum`` and ``_count``.
    """
    names: set[str] = set()
    for line in exposition.splitlines():
        if match := _TYPE_LINE.match(line):
            name, kind = match.groups()
            names.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
