"""The fault suite: the whole platform driven while services die, the broker restarts and
a database stops; then every store and topic is reconciled with the input.

Short cases (one kill per service, one broker restart, a database stopped ~10 s) run with
the rest of the tests; the long ones (``-m chaos``, ``make chaos``) kill each service
several times at random points, drive a bigger program and stop a database for 30 s.
Every case starts its own broker and PostgreSQL (:mod:`tests.chaos.infra`).
"""

from __future__ import annotations

import random

import pytest

from tests.chaos.faults import Fault, kill_rounds
from tests.chaos.harness import chaos_seed, run_case
from tests.chaos.workload import WorkloadSettings
from upward.stack import SERVICES

pytestmark = [pytest.mark.integration]

SHORT = WorkloadSettings(employees=80, days=8)
LONG = WorkloadSettings(employees=240, days=15)
EARLY_POINTS = ["joining", "joined", "matched", "accepting", "accepted"]


def _day_points(days: int) -> list[str]:
    return [f"day-{d}" for d in range(1, days + 1)] + [
        f"day-{d}-recorded" for d in range(1, days + 1)
    ]


def _assert_reconciled(problems: list[str]) -> None:
    assert problems == [], "\n".join(problems)


@pytest.mark.timeout(420)
def test_each_service_killed_once_loses_and_doubles_nothing() -> None:
    points = {"matching": "joining", "notifications": "accepting", "sessions": "day-2",
              "feedback": "day-4-recorded"}  # fmt: skip

    def plan(_: random.Random) -> dict[str, list[Fault]]:
        found: dict[str, list[Fault]] = {}
        for service, point in points.items():
            found.setdefault(point, []).append(Fault("kill", service))
        return found

    case = run_case(name="kill-once", settings=SHORT, plan=plan, seed=chaos_seed(101))
    assert len(case.faults) == len(SERVICES)
    _assert_reconciled(case.reconciliation.problems)


@pytest.mark.timeout(420)
def test_broker_restart_mid_run_loses_and_doubles_nothing() -> None:
    def plan(_: random.Random) -> dict[str, list[Fault]]:
        return {"accepting": [Fault("broker", "kafka", outage_s=5.0)]}

    case = run_case(name="broker-restart", settings=SHORT, plan=plan,
                    seed=chaos_seed(202))  # fmt: skip
    assert len(case.faults) == 1
    assert case.outages_survived, case.summary
    _assert_reconciled(case.reconciliation.problems)


@pytest.mark.timeout(420)
def test_a_database_stopped_10s_its_service_catches_up() -> None:
    def plan(_: random.Random) -> dict[str, list[Fault]]:
        return {"accepting": [Fault("database", "sessions", outage_s=10.0)]}

    case = run_case(name="database-10s", settings=SHORT, plan=plan,
                    seed=chaos_seed(303), own_server=("sessions",))  # fmt: skip
    assert len(case.faults) == 1
    assert case.outages_survived, case.summary
    _assert_reconciled(case.reconciliation.problems)


# ------------------------------------------------------------------ long cases


@pytest.mark.chaos
@pytest.mark.timeout(1200)
def test_random_kill_rounds_of_every_service() -> None:
    points = EARLY_POINTS + _day_points(LONG.days)

    def plan(rng: random.Random) -> dict[str, list[Fault]]:
        return kill_rounds(tuple(SERVICES), points, rounds=3, rng=rng)

    case = run_case(name="kill-rounds", settings=LONG, plan=plan, seed=chaos_seed(404))
    assert len(case.faults) == 3 * len(SERVICES)
    _assert_reconciled(case.reconciliation.problems)


@pytest.mark.chaos
@pytest.mark.timeout(1200)
def test_broker_restarts_at_random_points() -> None:
    points = EARLY_POINTS + _day_points(LONG.days)

    def plan(rng: random.Random) -> dict[str, list[Fault]]:
        found: dict[str, list[Fault]] = {}
        for point in rng.sample(points, 2):
            found.setdefault(point, []).append(Fault("broker", "kafka", rng.uniform(3, 15)))
        return found

    case = run_case(name="broker-restarts", settings=LONG, plan=plan,
                    seed=chaos_seed(505))  # fmt: skip
    assert len(case.faults) == 2
    assert case.outages_survived, case.summary
    _assert_reconciled(case.reconciliation.problems)


@pytest.mark.chaos
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("victim", ["sessions", "notifications"])
def test_a_database_stopped_30s_its_service_catches_up(victim: str) -> None:
    points = ["accepting", *_day_points(LONG.days)[:4]]

    def plan(rng: random.Random) -> dict[str, list[Fault]]:
        return {rng.choice(points): [Fault("database", victim, outage_s=30.0)]}

    case = run_case(name=f"database-30s-{victim}", settings=LONG, plan=plan,
                    seed=chaos_seed(606), own_server=(victim,), patience_s=300)  # fmt: skip
    assert len(case.faults) == 1
    assert case.outages_survived, case.summary
    _assert_reconciled(case.reconciliation.problems)
