"""docs/benchmarks.md is shared by the benchmark suites: each rewrites only its section."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

REPORT = Path(__file__).parents[1] / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n"


def write_section(name: str, markdown: str, *, report: Path = REPORT) -> None:
    """Replace (or append) the section between ``<!-- bench:name -->`` markers."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}\n"
    text = report.read_text(encoding="utf-8") if report.exists() else TITLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block
    report.write_text(text, encoding="utf-8")


def machine() -> str:
    """A one-line description of this machine."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} {platform.machine()},"
        f" Python {platform.python_version()}"
    )
