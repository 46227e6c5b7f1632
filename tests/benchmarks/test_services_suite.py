"""The services benchmark's machinery on a tiny volume against the session's broker and
database: every event accounted for, ratios and latencies computed, the report rendered.
Nothing here is timed."""

from __future__ import annotations

import math

import pytest

from benchmarks import services
from tests.fixtures.infra import PostgresServerInfo
from upward.stack import StackInfo

# A loaded 2-core machine makes the service processes slow to start: more than the default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EVENTS = 30
RAW_MIN = 200


@pytest.fixture(scope="module")
async def results(kafka_bootstrap: str, postgres: PostgresServerInfo) -> services.Results:
    info = StackInfo(kafka_bootstrap, postgres.admin_url, {}, None, postgres.version)
    return await services.measure(info, events=EVENTS, rounds=1, factors=(), raw_min=RAW_MIN)


@pytest.fixture(scope="module")
async def growth(kafka_bootstrap: str, postgres: PostgresServerInfo) -> services.Results:
    """The cost-growth pass alone, for one service."""
    info = StackInfo(kafka_bootstrap, postgres.admin_url, {}, None, postgres.version)
    return await services.measure(
        info, events=EVENTS, rounds=0, services=("notifications",), factors=(1,), raw_min=EVENTS
    )


def test_every_backlog_event_is_applied_once(results: services.Results) -> None:
    for name in services.SERVICES:
        (run,) = results.runs[name]
        assert run.applied == EVENTS, name
        assert run.throughput.events == EVENTS and run.throughput.seconds > 0
        assert run.peak_rss > 0 and run.store_bytes > 0


def test_ratios_are_paired_with_the_raw_passthrough_of_the_round(
    results: services.Results,
) -> None:
    assert len(results.raw) == 1 and results.raw[0].events == RAW_MIN  # a longer raw drain
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


def test_the_report_has_a_row_per_service(results: services.Results) -> None:
    info = StackInfo("k", "p", {}, "4.0.2", "PostgreSQL 18.6 on x86_64")
    text = services.report(results, info, "python -m benchmarks --suite services")
    assert "PostgreSQL 18.6," in text and "--suite services" in text
    for name in services.SERVICES:
        assert f"| {services.SCENARIOS[name].label} | {EVENTS} |" in text, name


def test_cost_growth_runs_each_volume_against_its_own_raw_passthrough(
    growth: services.Results,
) -> None:
    run = growth.growth[("notifications", 1)]
    assert run.applied == EVENTS and run.latency is None and run.peak_rss > 0
    assert growth.growth_raw[1].events == EVENTS
    ratio = run.throughput.rate / growth.growth_raw[1].rate
    text = "\n".join(
        services.markdown_table(services.growth_header(growth), services.growth_rows(growth))
    )
    assert f"1x = {EVENTS:,} events" in text
    assert (
        f"| notifications <- SessionScheduled | {run.throughput.rate:,.0f}/s ({ratio:.2f}) |"
        in text
    )
