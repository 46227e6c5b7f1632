"""Sampling profiles of a service process under load, with py-spy.

:func:`start` attaches ``py-spy record`` (raw collapsed stacks) to a running process;
:func:`stop` ends it and returns the functions that took the largest share of samples:
by the innermost frame (where the time is spent), and by the innermost frame of the
service's own code (``services/``), which shows which handler or repository call it was.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TOP = 6
_LIBRARY = re.compile(r"^.*/(site-packages|lib/python3\.\d+)/")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Share:
    """One function and its share of the samples."""

    kind: str
    """``leaf`` (innermost frame) or ``service`` (innermost frame in services/)."""
    function: str
    share: float


@dataclass(frozen=True)
class Spy:
    """A running ``py-spy record``."""

    proc: subprocess.Popen[bytes]
    output: Path


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: pip install -e '.[dev]'")
    return found


def start(pid: int, output: Path, rate: int = 100) -> Spy:
    """Sample process ``pid`` (all its threads, idle ones left out) into ``output``."""
    argv = [_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate)]
    argv += ["--output", str(output), "--nonblocking"]
    log = output.with_suffix(".log").open("wb")
    return Spy(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), output)


def stop(spy: Spy) -> list[Share]:
    """Stop sampling (py-spy writes its file on SIGINT) and summarise it."""
    spy.proc.send_signal(signal.SIGINT)
    try:
        spy.proc.wait(30)
    except subprocess.TimeoutExpired:
        spy.proc.kill()
        spy.proc.wait(10)
    if not spy.output.exists():
        return []
    return summarise(spy.output.read_text(encoding="utf-8", errors="replace"))


def _frame(frame: str) -> str:
    """``handle (services/x/handlers.py:12)`` -> ``handle (services/x/handlers.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = _LIBRARY.sub("", path)
    path = path.removeprefix(f"{ROOT}/")
    return f"{name} ({path})" if path else name


def summarise(collapsed: str) -> list[Share]:
    """Top functions of ``py-spy --format raw`` output (``frame;frame;... count`` lines)."""
    leaf: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        leaf[frames[-1]] += count
        mine = [f for f in frames if "(services/" in f]
        own[mine[-1] if mine else "(outside services/)"] += count
    if total == 0:
        return []
    return [Share("leaf", f, n / total) for f, n in leaf.most_common(TOP)] + [
        Share("service", f, n / total) for f, n in own.most_common(TOP)
    ]


def describe(shares: list[Share]) -> str:
    """One Markdown line: the top leaf functions, then the service's own top frames."""

    def part(kind: str) -> str:
        return "; ".join(f"`{s.function}` {s.share:.0%}" for s in shares if s.kind == kind)

    return f"innermost: {part('leaf')}. In the service's code: {part('service')}."
