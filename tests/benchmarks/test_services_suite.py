"""The services benchmark's machinery on a tiny volume against the session's broker and
database: every event accounted for, ratios and latencies computed, the report rendered.
Nothing here is timed."""

from __future__ import annotations

import math

import pytest

from benchmarks import services
from tests.fixtures.infra import PostgresServerInfo
from upward.stack import StackInfo

pytestmark = pytest.mark.integration

EVENTS = 30


@pytest.fixture(scope="module")
async def results(kafka_bootstrap: str, postgres: PostgresServerInfo) -> services.Results:
    info = StackInfo(kafka_bootstrap, postgres.admin_url, {}, None, postgres.version)
    return await services.measure(info, events=EVENTS, rounds=1, factors=(1,))


def test_every_backlog_event_is_applied_once(results: services.Results) -> None:
    for name in services.SERVICES:
        runs = [*results.runs[name], results.growth[(name, 1)]]
        assert [r.applied for r in runs] == [EVENTS, EVENTS], name
        assert all(r.throughput.events == EVENTS and r.throughput.seconds > 0 for r in runs)
        assert all(r.peak_rss > 0 and r.store_bytes > 0 for r in runs)


def test_ratios_are_paired_with_the_raw_passthrough_of_the_round(
    results: services.Results,
) -> None:
    assert len(results.raw) == 1 and results.raw[0].events == EVENTS
    for name in services.SERVICES:
        (ratio,) = results.ratios(name)
        run = results.runs[name][0]
        assert math.isclose(ratio, run.throughput.rate / results.raw[0].rate)
        assert ratio > 0


def test_latency_is_measured_on_events_beyond_the_backlog(results: services.Results) -> None:
    for name in services.SERVICES:
        run = results.runs[name][0]
        latency = run.latency
        assert latency is not None, name
        assert latency.offered_per_s == pytest.approx(services.LOAD_SHARE * run.throughput.rate)
        assert latency.events >= min(20, EVENTS)
        assert 0 < latency.p50_ms <= latency.p99_ms
    assert results.growth[("sessions", 1)].latency is None


def test_the_report_has_a_row_per_service_and_volume(results: services.Results) -> None:
    info = StackInfo("k", "p", {}, "4.0.2", "PostgreSQL 18.6 on x86_64")
    text = services.report(results, info, "python -m benchmarks --suite services")
    assert "PostgreSQL 18.6," in text and "--suite services" in text
    for name in services.SERVICES:
        label = services.SCENARIOS[name].label
        assert text.count(f"| {label} |") == 2, label
    assert f"1x = {EVENTS:,} events" in text
