"""Faults and when they strike: SIGKILL of a service, the broker stopped, a database stopped.

A :class:`FaultSchedule` maps the workload's points (:mod:`tests.chaos.workload`) to faults.
When the driver reaches a point with a fault, the fault starts in the background after a
random delay (seeded) and the driver carries on, so it strikes while events are in flight:
in consumers, outbox relays, timers and the delivery worker. A killed service is started
again after a random pause with its manual clock at the run's current time; a stopped
broker or database is started again after its outage. Every fault is logged with when it
struck, for the reconciliation summary.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.infra import ChaosInfra
from tests.chaos.workload import ResilientPlatform
from upward.services.manager import ServiceSupervisor
from upward.stack import SERVICES


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` is ``kill``, ``broker`` or ``database``; ``target`` the service
    (kill, database) or ``kafka``; ``outage_s`` how long it stays down (kills: drawn)."""

    kind: str
    target: str
    outage_s: float = 0.0


@dataclass
class FaultRecord:
    """What happened: the fault, the point it was scheduled at, its delay and outage."""

    fault: Fault
    point: str
    delay_s: float
    down_s: float = 0.0
    detail: str = ""
    survivors_kept: bool | None = None
    """Broker and database faults: every service kept running through it (same pids)."""

    def describe(self) -> str:
        """One line for the summary."""
        what = {"kill": "SIGKILL", "broker": "broker stopped", "database": "database stopped"}
        return (
            f"{what[self.fault.kind]} {self.fault.target} at {self.point} +{self.delay_s:.1f}s,"
            f" down {self.down_s:.1f}s {self.detail}".rstrip()
        )


@dataclass
class FaultSchedule:
    """Faults per workload point, injected by :meth:`point`; :meth:`finish` awaits them."""

    infra: ChaosInfra
    supervisor: ServiceSupervisor
    platform: ResilientPlatform
    plan: dict[str, list[Fault]]
    rng: random.Random
    max_delay_s: float = 1.5
    records: list[FaultRecord] = field(default_factory=list)
    driver: asyncio.Task[Any] | None = None
    """The workload's task: cancelled when a fault cannot recover (a server that does not
    start again), so the case fails at once with that error instead of timing out."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def point(self, name: str) -> None:
        """Start the faults planned at *name* in the background; never waits for them."""
        for fault in self.plan.get(name, []):
            record = FaultRecord(fault, name, round(self.rng.uniform(0, self.max_delay_s), 2))
            if fault.kind == "kill":
                record.down_s = round(self.rng.uniform(0.2, 3.0), 2)
            else:
                record.down_s = fault.outage_s
            self.records.append(record)
            self._tasks.append(asyncio.create_task(self._strike(record)))

    async def finish(self) -> None:
        """Wait until every fault is over (raises what a fault's recovery raised)."""
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks)

    async def _strike(self, record: FaultRecord) -> None:
        try:
            await self._strike_once(record)
        except Exception:
            if self.driver is not None:
                self.driver.cancel()
            raise

    async def _strike_once(self, record: FaultRecord) -> None:
        await asyncio.sleep(record.delay_s)
        async with self._lock:  # one fault at a time: each recovers before the next
            fault = record.fault
            started = time.monotonic()
            if fault.kind == "kill":
                pid = await asyncio.to_thread(self.supervisor.kill, fault.target)
                record.detail = f"(pid {pid})" if pid else "(was not running)"
                await asyncio.sleep(record.down_s)
                await self._restart(fault.target)
                record.down_s = round(time.monotonic() - started, 1)
            elif fault.kind in ("broker", "database"):
                before = self._pids()
                await self._outage(fault, record.down_s)
                record.down_s = round(time.monotonic() - started, 1)
                await self.platform.settle(f"the platform to catch up after {fault.kind} outage")
                record.survivors_kept = self._pids() == before
                record.detail = (
                    "(every service kept running)"
                    if record.survivors_kept
                    else (f"(services restarted: before {before}, after {self._pids()})")
                )
            else:
                raise ValueError(f"unknown fault {fault.kind}")

    async def _outage(self, fault: Fault, seconds: float) -> None:
        """Stop the broker or *fault.target*'s PostgreSQL for *seconds*, then start it."""
        if fault.kind == "broker":
            await asyncio.to_thread(self.infra.stop_broker)
            await asyncio.sleep(seconds)
            await asyncio.to_thread(self.infra.start_broker)
            return
        server = self.infra.server_of(fault.target)
        await asyncio.to_thread(self.infra.stop_postgres, server)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.infra.start_postgres, server)

    def _pids(self) -> dict[str, int | None]:
        return {service: self.supervisor.pid(service) for service in SERVICES}

    async def _restart(self, service: str) -> None:
        """Start *service* again at the run's current simulated time."""
        now = self.platform.now
        infra = self.infra.infrastructure
        await asyncio.to_thread(self.supervisor.start, service, infra, clock_start=now)
        if self.platform.now is not None:  # the clock may have moved while it started
            body = {"now": self.platform.now.isoformat()}
            await self.platform.call(service, "POST", "/ops/clock", body=body)


def kill_rounds(
    services: tuple[str, ...], points: list[str], rounds: int, rng: random.Random
) -> dict[str, list[Fault]]:
    """*rounds* SIGKILLs of each service, each at a random point of *points*."""
    plan: dict[str, list[Fault]] = {}
    for _ in range(rounds):
        for service in services:
            plan.setdefault(rng.choice(points), []).append(Fault("kill", service))
    return plan
