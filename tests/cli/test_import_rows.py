"""Reading an HR export: columns, mapping files, list formats, reporting lines, and bad rows
reported with their line numbers and reasons (no service involved)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upward.cli import app
from upward.importing.mapping import ColumnMapping, MappingError, load_mapping
from upward.importing.rows import CsvFileError, read_export

HEADER = (
    "employee_id,display_name,email,mentoring_role,mentor_capacity,grade,department,region,"
    "timezone,languages,manager_id,skills,learning_goals,generation\n"
)
BOSS = "e-1,Boss,boss@example.com,,,9,Finance,emea,Europe/Paris,fr;en,,,,\n"
MANAGER = "e-2,Mia,mia@example.com,mentee,,6,Finance,emea,Europe/Paris,en,e-1,,social-media:4,\n"
JUNIOR = (
    "e-3,Jo,jo@example.com,mentor,2,2,IT,emea,Europe/London,en,e-2,"
    "social-media:5;genai-tools:4,strategy,gen-z\n"
)


def write(tmp_path: Path, text: str, name: str = "hr.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_become_join_bodies_with_chains_resolved_in_the_file(tmp_path: Path) -> None:
    parsed = read_export(
        write(tmp_path, HEADER + BOSS + MANAGER + JUNIOR),
        mapping=ColumnMapping(),
        program_id="prg-1",
    )
    assert parsed.problems == [] and parsed.not_joining == 1
    manager, junior = (join.body for join in parsed.joins)
    assert [join.line for join in parsed.joins] == [3, 4]
    assert manager.manager_chain == ["e-1"] and junior.manager_chain == ["e-2", "e-1"]
    assert junior.offers == {"social-media": 5, "genai-tools": 4}
    assert junior.wants == {"strategy": 3}  # a bare topic is level 3
    assert junior.capacity == 2 and manager.capacity == 1
    assert junior.background == {"generation": "gen-z"} and manager.background == {}
    assert junior.program_id == "prg-1" and junior.role == "mentor"


def test_a_manager_outside_the_file_ends_the_chain(tmp_path: Path) -> None:
    parsed = read_export(write(tmp_path, HEADER + JUNIOR), mapping=ColumnMapping(), program_id="p")
    assert parsed.joins[0].body.manager_chain == ["e-2"]


def test_bad_rows_are_reported_with_line_numbers_and_column_reasons(tmp_path: Path) -> None:
    rows = [
        BOSS,  # line 2: not joining
        JUNIOR.replace("Europe/London", "Mars/Olympus"),  # 3
        MANAGER.replace("mentee", "sponsor"),  # 4
        '"e-5","Multi\nline, name",e5@example.com,mentor,,2,IT,emea,UTC,en,,,,\n',  # 5-6: fine
        JUNIOR.replace("e-3,", "e-7,").replace("social-media:5", "social-media:high"),  # 7
        JUNIOR.replace("e-3,", "e-8,").replace("jo@example.com", "not-an-email"),  # 8
        JUNIOR,  # 9: a second row for e-3 (even though line 3 was refused)
        JUNIOR.replace("e-3,", "e-9,").replace(",e-2,", ",e-9,"),  # 10: manages themself
        MANAGER.replace("e-2,", "e-11,").replace(",6,", ",six,"),  # 11
        MANAGER.replace("e-2,", "e-12,").replace(",en,", ",,"),  # 12: no language
    ]
    parsed = read_export(
        write(tmp_path, HEADER + "".join(rows)), mapping=ColumnMapping(), program_id="p"
    )
    problems = {p.line: (p.participant_id, p.reason) for p in parsed.problems}
    assert sorted(problems) == [3, 4, 7, 8, 9, 10, 11, 12]
    assert problems[3] == ("e-3", "timezone: Value error, unknown IANA time zone 'Mars/Olympus'")
    assert problems[4][1].startswith("mentoring_role: Input should be")
    assert problems[7] == ("e-7", "skills: 'social-media:high' is not topic:level")
    assert problems[8][1].startswith("email: String should match pattern")
    assert problems[9] == ("e-3", "employee_id: 'e-3' already on line 3")
    assert problems[10] == ("e-9", "manager_id: the reporting line loops")
    assert problems[11][1].startswith("grade: Input should be a valid integer")
    assert problems[12][1].startswith("languages: List should have at least 1 item")
    (good,) = parsed.joins
    assert good.line == 5 and good.body.display_name == "Multi\nline, name"


def test_missing_required_columns_stop_the_import(tmp_path: Path) -> None:
    header = HEADER.replace("timezone,", "").replace("mentoring_role,", "")
    with pytest.raises(CsvFileError, match="missing required columns: mentoring_role, timezone"):
        read_export(write(tmp_path, header), mapping=ColumnMapping(), program_id="p")
    with pytest.raises(CsvFileError, match="empty"):
        read_export(write(tmp_path, ""), mapping=ColumnMapping(), program_id="p")


def test_a_toml_mapping_renames_columns_and_separators(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path,
            '[columns]\nparticipant_id = "Worker ID"\noffers = "Skills"\n'
            'manager_chain = "Reports to (chain)"\n'
            '[background]\ngen = "Generation"\n'
            '[format]\nlist_separator = "|"\nlevel_separator = "="\n',
            "mapping.toml",
        )
    )
    header = HEADER.replace("employee_id", "Worker ID").replace("skills", "Skills")
    header = header.replace("generation", "Generation").rstrip("\n") + ",Reports to (chain)\n"
    row = JUNIOR.replace("social-media:5;genai-tools:4", "social-media=5|genai-tools=4")
    row = row.rstrip("\n") + ",m-1|m-2|m-3\n"
    parsed = read_export(write(tmp_path, header + row), mapping=mapping, program_id="p")
    (join,) = parsed.joins
    assert join.body.participant_id == "e-3"
    assert join.body.offers == {"social-media": 5, "genai-tools": 4}
    assert join.body.manager_chain == ["m-1", "m-2", "m-3"]
    assert join.body.background == {"gen": "gen-z"}


def test_a_json_mapping_works_and_unknown_fields_are_refused(tmp_path: Path) -> None:
    good = load_mapping(write(tmp_path, '{"columns": {"role": "Role"}}', "m.json"))
    assert good.column("role") == "Role" and good.column("email") == "email"
    with pytest.raises(MappingError, match="unknown fields in \\[columns\\]: shoe_size"):
        load_mapping(write(tmp_path, '[columns]\nshoe_size = "Shoes"\n', "bad.toml"))
    with pytest.raises(MappingError, match="cannot read the mapping"):
        load_mapping(write(tmp_path, "[columns\n", "broken.toml"))


def test_the_dry_run_reports_bad_rows_and_writes_the_report(tmp_path: Path) -> None:
    csv_path = write(tmp_path, HEADER + BOSS + MANAGER + JUNIOR.replace("2,2,IT", "2,x,IT"))
    report = tmp_path / "report.csv"
    result = CliRunner().invoke(
        app,
        ["import", "participants", str(csv_path), "--program", "p", "--dry-run",
         "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "nothing imported" in result.output
    with report.open(encoding="utf-8", newline="") as stream:
        lines = list(csv.reader(stream))
    assert lines[0] == ["line", "participant_id", "status", "reason"]
    assert lines[1][:3] == ["4", "e-3", "invalid"]
    assert lines[1][3].startswith("grade: Input should be a valid integer")
    assert len(lines) == 2


def test_an_unreadable_file_exits_2_and_an_unreachable_service_exits_3(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["import", "participants", str(write(tmp_path, "a,b\n1,2\n")),
                              "--program", "p"])  # fmt: skip
    assert bad.exit_code == 2 and "missing required columns" in bad.output
    unreachable = runner.invoke(
        app,
        ["import", "participants", str(write(tmp_path, HEADER + JUNIOR)), "--program", "p",
         "--matching-url", "http://127.0.0.1:9"],
    )  # fmt: skip
    assert unreachable.exit_code == 3
    assert "cannot reach the matching service at http://127.0.0.1:9" in unreachable.output
