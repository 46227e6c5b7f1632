"""The container image, checked statically: there is no Docker engine here to build it.

The Dockerfile is parsed with BuildKit's own parser (the ``dockerfile`` package); the entry
point script runs for real, and test_metrics_exported.py starts every service through it.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest

from upward.deploy import SERVICES

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "libc6-dev", "python3-dev", "git")

Stage = list[dockerfile.Command]


def stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, in order."""
    found: dict[str, Stage] = {}
    current: Stage = []
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            name = command.value[-1]
            current = found.setdefault(name, [command])
        elif found:
            current.append(command)
    return found


def instructions(stage: Stage, cmd: str) -> list[dockerfile.Command]:
    """The instructions ``cmd`` (e.g. ``RUN``) of a stage."""
    return [c for c in stage if c.cmd == cmd]


def entry_names() -> list[str]:
    """The names the entry point runs: the labels of its ``case``."""
    labels = re.findall(r"^\s{2}([a-z|]+)\)$", ENTRYPOINT.read_text(), flags=re.MULTILINE)
    return [name for label in labels for name in label.split("|")]


def test_two_stages_on_a_pinned_slim_python() -> None:
    assert list(stages()) == ["build", "runtime"]
    [arg] = [c for c in dockerfile.parse_file(str(REPO / "Dockerfile")) if c.cmd == "ARG"]
    name, _, image = arg.value[0].partition("=")
    assert name == "PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.1[1-9](\.\d+)?-slim-[a-z]+", image)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    for stage in stages().values():
        assert stage[0].value[0] == "${PYTHON_IMAGE}"


def test_final_stage_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    runtime = stages()["runtime"]
    [user] = instructions(runtime, "USER")
    uid = user.value[0].split(":")[0]
    assert uid not in ("0", "root") and int(uid) >= 1000
    [healthcheck] = instructions(runtime, "HEALTHCHECK")
    assert healthcheck.value[0] == "CMD"
    assert healthcheck.value[1:] == ("python", "/opt/upward/docker/healthcheck.py")
    [entrypoint] = instructions(runtime, "ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("/opt/upward/docker/entrypoint.sh",)
    assert runtime.index(user) > max(runtime.index(c) for c in instructions(runtime, "RUN"))


def test_final_stage_has_no_build_tools_and_no_sources() -> None:
    runtime = stages()["runtime"]
    for run in instructions(runtime, "RUN"):
        assert "apt-get install" not in run.value[0] and "pip install" not in run.value[0]
        assert not any(re.search(rf"\b{re.escape(t)}\b", run.value[0]) for t in BUILD_TOOLS)
    copies = instructions(runtime, "COPY")
    from_build = [c for c in copies if c.flags == ("--from=build",)]
    assert [c.value for c in from_build] == [("/opt/upward", "/opt/upward")]
    local = [src for c in copies if not c.flags for src in c.value[:-1]]
    assert local and all(src.startswith("deploy/docker/") for src in local)
    build_runs = " ".join(run.value[0] for run in instructions(stages()["build"], "RUN"))
    assert "build-essential" in build_runs  # compilers live in the build stage only


def test_build_stage_copies_every_package_the_project_ships() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copies = instructions(stages()["build"], "COPY")
    sources = {src for c in copies for src in c.value[:-1]}
    assert packages | {"pyproject.toml", "README.md"} <= sources
    for source in sources:
        assert (REPO / source).exists(), source


def test_dockerignore_keeps_the_context_small_but_not_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".git", ".venv", "**/__pycache__", "tests", "node_modules", ".mypy_cache"):
        assert needed in patterns, needed
    copied = [
        src
        for stage in stages().values()
        for c in instructions(stage, "COPY")
        if not c.flags
        for src in c.value[:-1]
    ]
    for source in copied:
        ignored = [p for p in patterns if fnmatch.fnmatch(source, p) or source.startswith(p + "/")]
        assert not ignored, (source, ignored)


def test_every_entry_point_names_a_runnable_module() -> None:
    names = entry_names()
    assert set(SERVICES) <= set(names)
    for name in SERVICES:
        assert importlib.util.find_spec(f"services.{name}.__main__"), name
    assert importlib.util.find_spec("examples.welcome_service")
    assert "exec python -m examples.welcome_service" in ENTRYPOINT.read_text()
    assert 'exec python -m "services.$command"' in ENTRYPOINT.read_text()


@pytest.mark.parametrize(("argument", "status"), [("help", 0), ("billing", 64)])
def test_entry_point_explains_itself(argument: str, status: int) -> None:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), argument], capture_output=True, text=True, check=False
    )
    assert result.returncode == status
    assert "matching | sessions | feedback | notifications" in result.stdout + result.stderr


def test_entry_point_runs_the_upward_tool() -> None:
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}"}
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "upward", "deploy", "--help"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "prepare" in result.stdout
