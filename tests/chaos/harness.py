"""One fault-suite case: own infrastructure, the four services, the workload, the faults,
the reconciliation; everything stopped in a ``finally``.

:func:`run_case` starts a broker and PostgreSQL server(s) of its own (:mod:`tests.chaos.infra`),
the four services as real processes on manual clocks with a mail sink
(:class:`upward.services.manager.ServiceSupervisor`), drives the workload while the fault
schedule strikes, then reconciles and prints the summary. The seed comes from
``UPWARD_CHAOS_SEED`` when set (printed either way, so a failing run can be replayed).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.chaos.faults import Fault, FaultRecord, FaultSchedule
from tests.chaos.infra import ChaosInfra, stable_ports
from tests.chaos.reconcile import Reconciliation, reconcile
from tests.chaos.workload import Input, ResilientPlatform, Workload, WorkloadSettings
from upward.demo.platform import PlatformAddress
from upward.services.manager import ServiceOptions, ServiceSupervisor, log_file
from upward.stack import SERVICES

SEED_ENV = "UPWARD_CHAOS_SEED"

Plan = Callable[[random.Random], dict[str, list[Fault]]]
"""Builds the faults per workload point from the case's seeded random generator."""


def chaos_seed(default: int) -> int:
    """The case's seed: ``UPWARD_CHAOS_SEED`` when set, else *default*."""
    value = os.environ.get(SEED_ENV, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class CaseResult:
    """What a case did and found."""

    input: Input
    reconciliation: Reconciliation
    faults: list[FaultRecord]
    summary: str

    @property
    def outages_survived(self) -> bool:
        """Every service ran through every broker and database outage (none crashed)."""
        return all(r.survivors_kept for r in self.faults if r.fault.kind != "kill")


def run_case(
    *,
    name: str,
    settings: WorkloadSettings,
    plan: Plan,
    seed: int,
    own_server: tuple[str, ...] = (),
    patience_s: float = 240.0,
) -> CaseResult:
    """Run case *name*; return the reconciliation (the caller asserts).

    Its servers live in a directory of its own, not pytest's ``tmp_path``: pytest keeps
    only the last three base directories, and another session starting meanwhile would
    delete a stopped PostgreSQL's data before it is started again. The directory is
    removed when the case ran through, kept (and named) when it did not.
    """
    rng = random.Random(seed)
    home = Path(tempfile.mkdtemp(prefix=f"upward-chaos-{name}-"))
    print(f"\nfault case {name}: seed {seed} ({SEED_ENV} to replay), in {home}", flush=True)
    started = time.monotonic()
    with ChaosInfra(home / "infra", own_server=own_server) as infra:
        *ports, mail_port = stable_ports(len(SERVICES) + 1)
        options = ServiceOptions(
            run_dir=home / "services",
            ports=dict(zip(SERVICES, ports, strict=True)),
            mail_port=mail_port,
            clock_start=settings.start,
        )
        supervisor = ServiceSupervisor(options)
        try:
            supervisor.up(infra.infrastructure, timeout_s=180)
            address = PlatformAddress(
                {s: options.url(s) for s in SERVICES},
                infra.infrastructure.database_urls,
                infra.kafka.bootstrap_servers,
            )
            inp, result, faults = asyncio.run(
                _drive(address, infra, supervisor, settings, plan(rng), rng, options, patience_s)
            )
        except BaseException:
            for service in SERVICES:
                print(f"--- {service} log tail ---")
                print(_tail(log_file(options.run_dir, service)))
            raise
        finally:
            supervisor.down(timeout_s=10)
    shutil.rmtree(home, ignore_errors=True)
    runtime = time.monotonic() - started
    lines = [record.describe() for record in faults]
    summary = result.summary(faults=lines, seed=seed, runtime_s=runtime, inp=inp)
    print(summary, flush=True)
    return CaseResult(inp, result, faults, summary)


async def _drive(
    address: PlatformAddress,
    infra: ChaosInfra,
    supervisor: ServiceSupervisor,
    settings: WorkloadSettings,
    plan: dict[str, list[Fault]],
    rng: random.Random,
    options: ServiceOptions,
    patience_s: float,
) -> tuple[Input, Reconciliation, list[FaultRecord]]:
    platform = ResilientPlatform(address, wait_timeout_s=patience_s, patience_s=patience_s)
    async with platform:
        schedule = FaultSchedule(infra, supervisor, platform, plan, rng)
        driver = asyncio.create_task(Workload(platform, settings, schedule).run())
        schedule.driver = driver
        try:
            inp = await driver
        finally:
            await schedule.finish()  # raises the error of a fault that could not recover
        result = await reconcile(platform, inp, mail_file=options.mail_file)
    return inp, result, schedule.records


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
