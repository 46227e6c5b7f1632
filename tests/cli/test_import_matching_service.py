"""``upward program create`` and ``upward import participants`` against the real matching
service (in-process, real Kafka and PostgreSQL): the import joins each good row once,
reports bad rows and refusals with their line numbers, and a re-run joins no one again."""

from __future__ import annotations

import asyncio
import csv
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from schemas.codec import decode
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceRuntime
from servicekit.settings import settings_for
from services.matching.bootstrap import DEFINITION
from services.matching.settings import MatchingSettings
from tests.integration.kafka_io import eventually, read_topic
from upward.cli import app
from upward.demo.enterprise import (
    HR_EXPORT_COLUMNS,
    cohort_requests,
    generate_enterprise,
    hr_export_rows,
    write_hr_export,
)
from upward.identity import PLATFORM_ADMIN, auth_headers
from upward.stack import free_ports

pytestmark = pytest.mark.integration
PROGRAM = "prg-import"


class Matching:
    """A running matching service, its URL and settings."""

    def __init__(self, runtime: ServiceRuntime, settings: MatchingSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.http_port}"

    async def alive(self) -> bool:
        try:
            async with httpx.AsyncClient(base_url=self.url) as http:
                return (await http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def participant_ids(self, program_id: str) -> list[str]:
        async with httpx.AsyncClient(
            base_url=self.url, headers=auth_headers(PLATFORM_ADMIN)
        ) as http:
            answer = await http.get(f"/programs/{program_id}/participants?limit=1000")
        return [p["profile"]["participant_id"] for p in answer.json()]

    async def joined_events(self, program_id: str, at_least: int) -> Counter[str]:
        """ParticipantJoined events of the program on the broker, per participant."""
        records = await read_topic(
            self.settings.kafka_bootstrap_servers,
            self.settings.physical_topic("upward.participants"),
            at_least=at_least,
        )
        events = [decode(r.value, key=r.key).envelope for r in records]
        return Counter(
            e.data["participant_id"]
            for e in events
            if e.event_name == "ParticipantJoined" and e.data["program_id"] == program_id
        )


@pytest.fixture(scope="module")
async def matching(kafka_bootstrap: str, postgres: Any) -> AsyncIterator[Matching]:
    name = f"test_import_{uuid.uuid4().hex[:12]}"
    url = await postgres.create_database(name)
    settings = settings_for("matching", MatchingSettings)(
        service_name="matching",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
        continuous_interval_s=3600,
        expiry_interval_s=3600,
        max_event_bytes=4096,
    )
    assert isinstance(settings, MatchingSettings)
    runtime = ServiceRuntime(
        DEFINITION, settings, clock=ManualClock(datetime(2026, 1, 12, 9, tzinfo=UTC))
    )
    await runtime.start()
    service = Matching(runtime, settings)
    assert await eventually(service.alive, lambda ok: ok), "the matching API never answered"
    yield service
    runtime.stop.set()
    await runtime.wait()
    await postgres.drop_database(name)


async def upward(*args: str) -> Result:
    """Run the ``upward`` tool in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def upward_process(*args: str) -> tuple[int, str]:
    """Run the ``upward`` tool as its own process (two may run at once): exit code, output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "upward.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return await process.wait(), output.decode()


def read_report(path: Path) -> dict[int, tuple[str, str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return {
            int(row["line"]): (row["participant_id"], row["status"], row["reason"])
            for row in csv.DictReader(stream)
        }


def hr_export(tmp_path: Path) -> tuple[Path, list[str]]:
    """60 employees, 18 joining, then two bad rows: lines 62 (invalid) and 63 (too big)."""
    enterprise = generate_enterprise(60, seed=11)
    cohort = cohort_requests(enterprise, program_id=PROGRAM, share=0.3)
    rows = hr_export_rows(enterprise, cohort=cohort)
    mentor = next(row for row in rows if row["mentoring_role"] == "mentor")
    rows.append(mentor | {"employee_id": "emp-bad-tz", "timezone": "Europe/Atlantis"})
    huge = ";".join(f"topic-{n:02d}-{'x' * 50}:3" for n in range(80))
    rows.append(mentor | {"employee_id": "emp-too-big", "skills": huge})
    path = tmp_path / "hr.csv"
    write_hr_export(rows, path)
    return path, [body["participant_id"] for body in cohort]


async def test_program_create_prints_the_id_and_refuses_a_second_one(matching: Matching) -> None:
    first = await upward("program", "create", "--id", "prg-cli", "--no-screening",
                         "--matching-url", matching.url)  # fmt: skip
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "prg-cli"
    again = await upward("program", "create", "--id", "prg-cli", "--matching-url", matching.url)
    assert again.exit_code == 1
    assert "refused (409)" in again.output


async def test_program_create_from_a_file_validates_it_first(
    matching: Matching, tmp_path: Path
) -> None:
    bad = tmp_path / "program.json"
    bad.write_text('{"program_id": "prg-file", "name": "x"}', encoding="utf-8")
    answer = await upward("program", "create", "--file", str(bad), "--matching-url", matching.url)
    assert answer.exit_code == 2
    assert "invalid program; nothing was created" in answer.output
    assert "program_type: Field required" in answer.output


async def test_the_import_joins_each_good_row_once_even_when_re_run(
    matching: Matching, tmp_path: Path
) -> None:
    created = await upward("program", "create", "--id", PROGRAM, "--no-screening",
                           "--no-training", "--matching-url", matching.url)  # fmt: skip
    assert created.exit_code == 0, created.output
    path, joiners = hr_export(tmp_path)
    report = tmp_path / "report.csv"
    command = ("import", "participants", str(path), "--program", PROGRAM, "--report",
               str(report), "--matching-url", matching.url)  # fmt: skip

    first = await upward(*command)
    assert first.exit_code == 1, first.output  # two rows could not be imported
    problems = read_report(report)
    assert set(problems) == {62, 63}
    assert problems[62][:2] == ("emp-bad-tz", "invalid")
    assert "timezone: Value error, unknown IANA time zone" in problems[62][2]
    assert problems[63][:2] == ("emp-too-big", "refused")
    assert "exceeds" in problems[63][2] or "bytes" in problems[63][2]
    assert sorted(await matching.participant_ids(PROGRAM)) == sorted(joiners)

    second = await upward(*command)
    assert second.exit_code == 1, second.output
    again = read_report(report)
    skipped = {pid for pid, status, _ in again.values() if status == "already_imported"}
    assert skipped == set(joiners)
    assert {line: again[line][1] for line in (62, 63)} == {62: "invalid", 63: "refused"}

    events = await matching.joined_events(PROGRAM, at_least=len(joiners))
    assert events == Counter({pid: 1 for pid in joiners})
    assert sorted(await matching.participant_ids(PROGRAM)) == sorted(joiners)


async def test_two_imports_of_one_export_at_once_join_each_person_once(
    matching: Matching, tmp_path: Path
) -> None:
    """Neither run waits, so both send every join before any is applied: the joins'
    Idempotency-Key makes the second of each a repeat that announces nothing."""
    program = "prg-twice"
    created = await upward("program", "create", "--id", program, "--no-screening",
                           "--no-training", "--matching-url", matching.url)  # fmt: skip
    assert created.exit_code == 0, created.output
    path, joiners = hr_export(tmp_path)
    command = ("import", "participants", str(path), "--program", program, "--wait", "0",
               "--matching-url", matching.url)  # fmt: skip
    runs = await asyncio.gather(upward_process(*command), upward_process(*command))
    assert [code for code, _ in runs] == [1, 1], [output for _, output in runs]
    applied = await eventually(
        lambda: matching.participant_ids(program), lambda found: len(found) >= len(joiners)
    )
    assert sorted(applied) == sorted(joiners)
    events = await matching.joined_events(program, at_least=len(joiners))
    assert events == Counter({pid: 1 for pid in joiners})


async def test_a_row_that_differs_from_the_stored_profile_is_reported_not_joined(
    matching: Matching, tmp_path: Path
) -> None:
    created = await upward("program", "create", "--id", "prg-differs", "--no-screening",
                           "--matching-url", matching.url)  # fmt: skip
    assert created.exit_code == 0, created.output
    row = {column: "" for column in HR_EXPORT_COLUMNS} | {
        "employee_id": "emp-77", "display_name": "Lee Chen", "email": "lee@example.com",
        "grade": "2", "department": "IT", "region": "apac", "timezone": "Asia/Tokyo",
        "languages": "ja;en", "skills": "genai-tools:5", "mentoring_role": "mentor",
    }  # fmt: skip
    path = tmp_path / "one.csv"
    write_hr_export([row], path)
    command = ("import", "participants", str(path), "--program", "prg-differs",
               "--matching-url", matching.url)  # fmt: skip
    assert (await upward(*command)).exit_code == 0
    write_hr_export([row | {"department": "Data"}], path)
    report = tmp_path / "report.csv"
    changed = await upward(*command, "--report", str(report))
    assert changed.exit_code == 1
    assert read_report(report) == {
        2: ("emp-77", "differs", "already joined with other data in: department")
    }
    assert await matching.joined_events("prg-differs", at_least=1) == Counter({"emp-77": 1})


async def test_an_unknown_program_stops_the_import(matching: Matching, tmp_path: Path) -> None:
    path, _ = hr_export(tmp_path)
    answer = await upward("import", "participants", str(path), "--program", "prg-nowhere",
                          "--matching-url", matching.url)  # fmt: skip
    assert answer.exit_code == 3
    assert "prg-nowhere" in answer.output
