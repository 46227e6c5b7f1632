"""docs/benchmarks.md is shared: each suite rewrites only its own section."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import write_section


def test_a_suite_replaces_its_section_and_leaves_the_others(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    write_section("kit", "## Kit\nold kit", report=report)
    write_section("matching", "## Matching\nfirst", report=report)
    write_section("kit", "## Kit\nnew kit", report=report)
    text = report.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "new kit" in text and "old kit" not in text
    assert text.count("<!-- bench:kit -->") == 1
    assert text.index("## Kit") < text.index("## Matching\nfirst")
