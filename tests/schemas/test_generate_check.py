"""`python -m schemas.generate --check` passes on the checked-in tree and catches drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.generate import (
    PACKAGE_DIR,
    BreakingChangeError,
    asyncapi_document,
    check,
    envelope_schema,
    main,
    render,
    render_json,
    render_yaml,
    schema_path,
    write,
)
from schemas.registry import EVENTS


def test_checked_in_files_are_up_to_date() -> None:
    report = check(PACKAGE_DIR)
    assert report.lines() == []
    assert report.up_to_date


def test_check_mode_of_the_command_passes_on_the_checked_in_tree() -> None:
    assert main(["--check"]) == 0


def test_rendering_is_deterministic() -> None:
    for cls in EVENTS.values():
        assert render_json(envelope_schema(cls)) == render_json(envelope_schema(cls))
    assert render_yaml(asyncapi_document()) == render()["asyncapi.yaml"]


def test_a_hand_edited_file_is_reported_stale(schema_tree: Path) -> None:
    target = schema_tree / schema_path("PairFormed", 1)
    target.write_text(target.read_text() + " ", encoding="utf-8")
    (schema_tree / "asyncapi.yaml").write_text("asyncapi: 3.0.0\n", encoding="utf-8")
    report = check(schema_tree)
    assert report.stale == [schema_path("PairFormed", 1), "asyncapi.yaml"]
    assert main(["--check", "--out", str(schema_tree)]) == 1
    assert (schema_tree / "asyncapi.yaml").read_text() == "asyncapi: 3.0.0\n"


def test_a_missing_file_is_stale_and_write_restores_it(schema_tree: Path) -> None:
    (schema_tree / schema_path("SessionHeld", 1)).unlink()
    assert check(schema_tree).stale == [schema_path("SessionHeld", 1)]
    assert write(schema_tree) == [schema_path("SessionHeld", 1)]
    assert check(schema_tree).up_to_date
    assert main(["--out", str(schema_tree)]) == 0


def test_write_refuses_a_breaking_change(schema_tree: Path) -> None:
    target = schema_tree / schema_path("PairFormed", 1)
    published = json.loads(target.read_text())
    published["properties"]["data"]["properties"]["room"] = {"type": "string"}
    target.write_text(json.dumps(published), encoding="utf-8")
    report = check(schema_tree)
    assert any("$.data.room: property removed" in line for line in report.breaking)
    with pytest.raises(BreakingChangeError, match="room"):
        write(schema_tree)
    assert json.loads(target.read_text()) == published
    assert main(["--out", str(schema_tree)]) == 1


def test_frozen_history_must_exist(schema_tree: Path) -> None:
    (schema_tree / schema_path("ParticipantJoined", 1)).unlink()
    assert check(schema_tree).missing_history == [schema_path("ParticipantJoined", 1)]
    with pytest.raises(BreakingChangeError, match=r"ParticipantJoined\.v1"):
        write(schema_tree)


def test_frozen_history_is_never_regenerated(schema_tree: Path) -> None:
    frozen = schema_tree / schema_path("ParticipantJoined", 1)
    frozen.write_text(frozen.read_text().replace("Main language", "THE language"), "utf-8")
    write(schema_tree)
    assert "THE language" in frozen.read_text()
    assert check(schema_tree).up_to_date


def test_an_orphan_schema_is_reported(schema_tree: Path) -> None:
    (schema_tree / "jsonschema" / "PairMarried.v1.json").write_text("{}", encoding="utf-8")
    assert check(schema_tree).unexpected == ["jsonschema/PairMarried.v1.json"]
    assert main(["--check", "--out", str(schema_tree)]) == 1


def test_check_writes_nothing(tmp_path: Path) -> None:
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []
