"""``upward match plan``: the offline dry run, its output document and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated
from upward.cli import app

runner = CliRunner()


def joiner(pid: str, **fields: Any) -> dict[str, Any]:
    """A ParticipantJoined data object (JSON-ready)."""
    data = ParticipantJoined.example().model_dump(mode="json") | {
        "participant_id": pid,
        "email": f"{pid}@example.com",
        "manager_chain": [],
        "preferences": {"prefer": [], "avoid": []},
    }
    return data | fields


def cohort_file(
    tmp_path: Path, rows: list[dict[str, Any]], extra_lines: tuple[str, ...] = ()
) -> Path:
    path = tmp_path / "cohort.jsonl"
    path.write_text(
        "\n".join([*(json.dumps(r) for r in rows), *extra_lines]) + "\n", encoding="utf-8"
    )
    return path


MENTOR = joiner("m-1", role="mentor", grade=2, offers={"social-media": 5}, wants={})
MENTEE = joiner(
    "e-1", role="mentee", grade=7, department="Finance", offers={}, wants={"social-media": 4}
)
NICHE = joiner("e-2", role="mentee", grade=7, offers={}, wants={"digital-strategy": 2})


def run(*args: str) -> Any:
    return runner.invoke(app, ["match", "plan", *args])


def test_plan_writes_pairs_with_explanations_unmatched_and_totals(tmp_path: Path) -> None:
    output = tmp_path / "plan.json"
    result = run(
        "--input", str(cohort_file(tmp_path, [MENTOR, MENTEE, NICHE])), "--output", str(output)
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(output.read_text())
    assert [(p["mentor_id"], p["mentee_id"]) for p in plan["pairs"]] == [("m-1", "e-1")]
    pair = plan["pairs"][0]
    assert [line["factor"] for line in pair["explanation"]] == [
        "skill_coverage",
        "diversity",
        "timezone_closeness",
        "preference",
    ]
    assert pair["score"] == pytest.approx(sum(line["contribution"] for line in pair["explanation"]))
    assert pair["topics"] == ["social-media"]
    assert plan["unmatched"] == [{"participant_id": "e-2", "reason": "no_shared_topic"}]
    assert plan["totals"]["matched"] == 1 and plan["totals"]["optimal"] is True
    assert plan["program_id"] == "prg-2025-digital"


def test_a_program_file_sets_the_rules(tmp_path: Path) -> None:
    program = ProgramCreated.example().model_dump(mode="json") | {"min_grade_gap": 6}
    program_path = tmp_path / "program.json"
    program_path.write_text(json.dumps(program), encoding="utf-8")
    output = tmp_path / "plan.json"
    cohort = cohort_file(tmp_path, [MENTOR, MENTEE])
    result = run("-i", str(cohort), "-o", str(output), "--program", str(program_path))
    assert result.exit_code == 0, result.output
    assert json.loads(output.read_text())["unmatched"] == [
        {"participant_id": "e-1", "reason": "no_eligible_candidate"},
        {"participant_id": "m-1", "reason": "no_eligible_candidate"},
    ]


def test_without_assuming_screening_no_mentor_is_eligible(tmp_path: Path) -> None:
    output = tmp_path / "plan.json"
    cohort = cohort_file(tmp_path, [MENTOR, MENTEE])
    result = run("-i", str(cohort), "-o", str(output), "--no-assume-screened")
    assert result.exit_code == 0, result.output
    plan = json.loads(output.read_text())
    assert plan["pairs"] == []
    assert {"participant_id": "m-1", "reason": "not_screened"} in plan["unmatched"]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (json.dumps(joiner("e-3", languages=[])), "line 3: languages"),
        (json.dumps(joiner("e-3", timezone="Mars/Olympus")), "line 3: timezone"),
        (
            json.dumps(
                {k: v for k, v in MENTEE.items() if k != "grade"} | {"participant_id": "e-3"}
            ),
            "line 3: grade",
        ),
        ("{not json", "line 3: not valid JSON"),
        (json.dumps(MENTOR), "line 3: participant_id: 'm-1' already on line 1"),
        (json.dumps(joiner("e-3", program_id="other")), "line 3: program_id"),
    ],
)
def test_invalid_input_names_line_and_field_and_writes_nothing(
    tmp_path: Path, bad_line: str, expected: str
) -> None:
    output = tmp_path / "plan.json"
    cohort = cohort_file(tmp_path, [MENTOR, MENTEE], extra_lines=(bad_line,))
    result = run("-i", str(cohort), "-o", str(output))
    assert result.exit_code == 1
    assert expected in " ".join(result.output.split())
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [cohort]


def test_an_invalid_program_file_names_the_field(tmp_path: Path) -> None:
    program_path = tmp_path / "program.json"
    program_path.write_text(json.dumps({"program_id": "p", "cadence_days": 0}), encoding="utf-8")
    result = run(
        "-i",
        str(cohort_file(tmp_path, [MENTOR])),
        "-o",
        str(tmp_path / "plan.json"),
        "-p",
        str(program_path),
    )
    assert result.exit_code == 1
    assert "program.json: cadence_days" in " ".join(result.output.split())


def test_help_describes_the_command() -> None:
    result = runner.invoke(app, ["match", "plan", "--help"])
    assert result.exit_code == 0
    assert "--assume-screened" in result.output and "ParticipantJoined" in result.output
