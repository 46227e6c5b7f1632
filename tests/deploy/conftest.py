"""Fixtures of the deployment tests: the helm binary, rendered charts, the CRD validator.

The tools are installed by scripts the Makefile also runs (``make deploy-tools``), cached
under ``~/.cache/upward``. When one cannot be installed the tests fail with the script's
output: they never skip.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "upward"
VALUES_FILES = sorted(p.name for p in CHART.glob("values*.yaml"))
HELM_INSTALLER = REPO / "deploy" / "tools" / "install-helm.sh"
CRD_VALIDATOR_INSTALLER = Path(__file__).parent / "crd_validator" / "install.sh"

Manifest = dict[str, Any]
CrdValidator = Callable[[list[Manifest]], list[list[str] | None]]


def run_installer(script: Path) -> str:
    """Run an install script; return the path it prints last, or fail the test loudly."""
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{script.name} failed ({result.returncode}):\n{result.stderr}", False)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm binary (built once from the Go module proxy)."""
    return Path(run_installer(HELM_INSTALLER))


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm on the chart; the caller checks the exit code."""
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def render(helm: Path, values_file: str, *extra: str) -> list[Manifest]:
    """``helm template`` the chart with one values file; the manifests as dicts."""
    result = run_helm(
        helm, "template", "upward", str(CHART), "--namespace", "upward",
        "-f", str(CHART / values_file), *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, list[Manifest]]:
    """The manifests of every values file, rendered once per session."""
    return {values: render(helm, values) for values in VALUES_FILES}


@pytest.fixture(scope="session")
def crd_validator() -> CrdValidator:
    """Validate KEDA / prometheus-operator objects with the schemas of their CRDs (node)."""
    workdir = Path(run_installer(CRD_VALIDATOR_INSTALLER))

    def validate(objects: list[Manifest]) -> list[list[str] | None]:
        result = subprocess.run(
            ["node", "validate.mjs"], cwd=workdir, input=json.dumps(objects),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        verdicts: list[list[str] | None] = json.loads(result.stdout)
        return verdicts

    return validate
