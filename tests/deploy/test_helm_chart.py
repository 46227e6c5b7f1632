"""The Helm chart: lint, render every values file, validate against the Kubernetes schemas.

Core objects are validated offline with kubernetes-validate (strict: unknown fields fail)
for the oldest Kubernetes the chart supports and the newest the package knows; the KEDA
and prometheus-operator objects with the JSON schemas generated from their CRDs (the
pinned @kubernetes-models npm packages, see crd_validator/). Then the rules of the house:
locked-down pods, probes, companions per service, autoscaling capped at the partitions.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import CHART, VALUES_FILES, CrdValidator, Manifest, render, run_helm

from upward.deploy import TopicPlan, desired_topics, known_env_names, settings_class

CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor"}
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.utils.latest_version())
SERVICES = ("feedback", "matching", "notifications", "sessions")


def values_of(values_file: str) -> dict[str, Any]:
    """The chart's values.yaml with ``values_file`` laid over it (as helm merges them)."""
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return _deep_merge(merged, yaml.safe_load((CHART / values_file).read_text()) or {})


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The manifests of ``kind`` by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    """The pod spec of every Deployment and Job, by object name."""
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job")
    }


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_helm_lint_passes(helm: Path, values_file: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(CHART / values_file))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values_file", VALUES_FILES)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_match_the_kubernetes_schemas(
    rendered: dict[str, list[Manifest]], values_file: str, version: str
) -> None:
    manifests = rendered[values_file]
    core = [m for m in manifests if m["kind"] not in CUSTOM_KINDS]
    assert {"Deployment", "Service", "ConfigMap", "Job"} <= {m["kind"] for m in core}
    problems = []
    for manifest in core:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{manifest['kind']}/{manifest['metadata']['name']} {where}: {exc}")
    assert not problems, "\n".join(problems)


def test_custom_resources_match_their_crd_schemas(
    rendered: dict[str, list[Manifest]], crd_validator: CrdValidator
) -> None:
    custom = [m for ms in rendered.values() for m in ms if m["kind"] in CUSTOM_KINDS]
    assert {m["kind"] for m in custom} == CUSTOM_KINDS
    verdicts = crd_validator(custom)
    named = [(m["kind"], m["metadata"]["name"]) for m in custom]
    problems = [(name, v) for name, v in zip(named, verdicts, strict=True) if v]
    assert not problems


def test_the_crd_validator_rejects_a_broken_object(
    rendered: dict[str, list[Manifest]], crd_validator: CrdValidator
) -> None:
    scaled = next(m for m in rendered["values.yaml"] if m["kind"] == "ScaledObject")
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["minReplicaCount"] = "two"
    del broken["spec"]["scaleTargetRef"]
    [verdict] = crd_validator([broken])
    assert verdict is not None
    assert any("scaleTargetRef" in line for line in verdict)
    assert any("minReplicaCount" in line for line in verdict)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_pods_run_locked_down(rendered: dict[str, list[Manifest]], values_file: str) -> None:
    for name, pod in pod_specs(rendered[values_file]).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            mounts = container["volumeMounts"]
            assert [m["mountPath"] for m in mounts if not m.get("readOnly")] == ["/tmp"], name


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_services_are_probed_on_health_and_readiness(
    rendered: dict[str, list[Manifest]], values_file: str
) -> None:
    deployments = of_kind(rendered[values_file], "Deployment")
    assert sorted(d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                  for d in deployments.values()) == list(SERVICES)  # fmt: skip
    for deployment in deployments.values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["args"] == [container["name"]]  # the image's entry point per service


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_each_service_has_its_companions(
    rendered: dict[str, list[Manifest]], values_file: str
) -> None:
    manifests, values = rendered[values_file], values_of(values_file)
    deployments = set(of_kind(manifests, "Deployment"))
    assert set(of_kind(manifests, "Service")) == deployments
    pdb = values["serviceDefaults"]["podDisruptionBudget"]["enabled"]
    assert set(of_kind(manifests, "PodDisruptionBudget")) == (deployments if pdb else set())
    monitored = values["serviceMonitor"]["enabled"]
    assert set(of_kind(manifests, "ServiceMonitor")) == (deployments if monitored else set())
    policies = set(of_kind(manifests, "NetworkPolicy"))
    assert policies == (deployments | {"upward-prepare"} if values["networkPolicy"]["enabled"]
                        else set())  # fmt: skip
    mode = values["serviceDefaults"]["autoscaling"]["mode"]
    scalers = {"keda": "ScaledObject", "hpa": "HorizontalPodAutoscaler"}
    for kind in scalers.values():
        expected = deployments if scalers.get(mode) == kind else set()
        targets = {s["spec"]["scaleTargetRef"]["name"] for s in of_kind(manifests, kind).values()}
        assert targets == expected, kind
    for name, deployment in of_kind(manifests, "Deployment").items():
        assert ("replicas" in deployment["spec"]) == (mode == "none"), name


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_autoscaling_stops_at_the_partition_count(helm: Path, values_file: str) -> None:
    partitions = values_of(values_file)["topics"]["partitions"]
    for mode, kind, field in (
        ("keda", "ScaledObject", "maxReplicaCount"),
        ("hpa", "HorizontalPodAutoscaler", "maxReplicas"),
    ):
        manifests = render(
            helm, values_file, "--set", f"serviceDefaults.autoscaling.mode={mode}",
            "--set", "serviceDefaults.autoscaling.minReplicas=1",
            "--set", f"serviceDefaults.autoscaling.maxReplicas={partitions * 10}",
        )  # fmt: skip
        scalers = of_kind(manifests, kind)
        assert scalers
        assert {s["spec"][field] for s in scalers.values()} == {partitions}


def test_more_minimum_replicas_than_partitions_is_refused(helm: Path) -> None:
    result = run_helm(
        helm, "template", "upward", str(CHART), "--set", "topics.partitions=4",
        "--set", "serviceDefaults.autoscaling.minReplicas=5",
    )  # fmt: skip
    assert result.returncode != 0
    assert "minReplicas (5) exceeds topics.partitions (4)" in result.stderr


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_environment_variable_is_a_real_setting(
    rendered: dict[str, list[Manifest]], values_file: str
) -> None:
    manifests = rendered[values_file]
    for name, config_map in of_kind(manifests, "ConfigMap").items():
        service = name.removeprefix("upward-")
        unknown = set(config_map["data"]) - known_env_names(service)
        assert not unknown, (name, unknown)
    for name, pod in pod_specs(manifests).items():
        service = name.removeprefix("upward-")
        env = {e["name"] for c in pod["containers"] for e in c.get("env", [])}
        known = (
            known_env_names(service)
            if service in SERVICES
            else set().union(*(known_env_names(s) for s in SERVICES))
        )
        assert not env - known, (name, env - known)


def test_service_settings_in_values_become_prefixed_variables(helm: Path) -> None:
    manifests = render(
        helm, "values-dev.yaml", "--set", "services.matching.settings.commit_interval_s=2.5"
    )
    data = of_kind(manifests, "ConfigMap")["upward-matching"]["data"]
    assert data["UPWARD_MATCHING_COMMIT_INTERVAL_S"] == "2.5"
    assert data["UPWARD_MATCHING_HTTP_HOST"] == "0.0.0.0"
    assert (
        "UPWARD_MATCHING_COMMIT_INTERVAL_S"
        not in of_kind(manifests, "ConfigMap")["upward-sessions"]["data"]
    )


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_prepare_job_runs_before_install_and_upgrade(
    rendered: dict[str, list[Manifest]], values_file: str
) -> None:
    manifests, values = rendered[values_file], values_of(values_file)
    job = of_kind(manifests, "Job")["upward-prepare"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    [container] = job["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[:3] == ["upward", "deploy", "prepare"]
    named = [args[i + 1] for i, a in enumerate(args) if a == "--service"]
    assert named == list(SERVICES)
    plan = TopicPlan.model_validate_json(args[args.index("--topics") + 1])
    specs = {s.name: s for s in desired_topics(plan, prefix=values["topicPrefix"])}
    participants = specs[values["topicPrefix"] + "upward.participants"]
    assert participants.partitions == values["topics"]["partitions"]
    assert participants.replication_factor == values["topics"]["replicationFactor"]
    min_isr = values["topics"]["config"]["min.insync.replicas"]
    assert participants.config["min.insync.replicas"] == min_isr
    assert len(specs) == 12  # six topics and their dead-letter twins


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_database_urls_come_from_the_right_secret(
    rendered: dict[str, list[Manifest]], values_file: str
) -> None:
    manifests, values = rendered[values_file], values_of(values_file)
    existing = values["database"]["existingSecret"]
    secrets = of_kind(manifests, "Secret")
    assert set(secrets) == (set() if existing else {"upward-database", "upward-prepare"})
    for name, pod in pod_specs(manifests).items():
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for c in pod["containers"]
            for e in c["env"]
            if e["name"].endswith("_DATABASE_URL")
        ]
        expected = existing or ("upward-prepare" if name == "upward-prepare" else "upward-database")
        assert refs and {r["name"] for r in refs} == {expected}, name
        if name != "upward-prepare":  # a service sees its own database only
            assert len(refs) == 1, name


def test_every_kind_is_rendered_somewhere(rendered: dict[str, list[Manifest]]) -> None:
    kinds = Counter(m["kind"] for ms in rendered.values() for m in ms)
    assert set(kinds) >= {
        "Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "HorizontalPodAutoscaler",
        "ServiceMonitor", "NetworkPolicy", "ConfigMap", "Secret", "Job", "ServiceAccount",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("serviceDefaults.autoscaling.mod=keda", "additional properties 'mod' not allowed"),
        ("services.billing.enabled=true", "additional properties 'billing' not allowed"),
        ("serviceDefaults.autoscaling.mode=vpa", "/serviceDefaults/autoscaling/mode"),
        ("topicPrefix=eu-west", "/topicPrefix"),
    ],
)
def test_values_schema_refuses_typos(helm: Path, setting: str, complaint: str) -> None:
    result = run_helm(helm, "template", "upward", str(CHART), "--set", setting)
    assert result.returncode != 0
    assert complaint in result.stderr


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_each_service_loads_its_rendered_settings(
    rendered: dict[str, list[Manifest]], values_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's values pass the service's own settings validation."""
    for name, config_map in of_kind(rendered[values_file], "ConfigMap").items():
        service = name.removeprefix("upward-")
        with monkeypatch.context() as env:
            for key in [k for k in os.environ if k.startswith("UPWARD_")]:
                env.delenv(key)
            for key, value in config_map["data"].items():
                env.setenv(key, value)
            # What the Secrets give a production pod: a URL with a real password, and the
            # JWT signing secret (production mode refuses to start without them).
            url = "postgresql://svc:from-the-secret-4f9@db/x"
            env.setenv(f"UPWARD_{service.upper()}_DATABASE_URL", url)
            env.setenv("UPWARD_AUTH_JWT_SECRET", "from-the-secret-b21c")
            settings = settings_class(service)(service_name=service)
        values = values_of(values_file)
        assert settings.http_host == "0.0.0.0" and settings.http_port == 8000
        assert settings.region == values["region"]
        assert settings.environment == values["environment"]
        assert settings.kafka_security_protocol == values["kafka"]["security"]["protocol"]


def test_region_releases_use_sasl_ssl_with_per_service_credentials(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["values-eu-west.yaml"]
    data = of_kind(manifests, "ConfigMap")["upward-matching"]["data"]
    assert data["UPWARD_ENVIRONMENT"] == "production"
    assert data["UPWARD_REGIONS"] == "eu-west,eu-central"
    assert data["UPWARD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["UPWARD_KAFKA_SSL_CAFILE"] == "/etc/upward/kafka-ca/ca.crt"
    pods = pod_specs(manifests)
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for c in pods["upward-matching"]["containers"]
        for e in c["env"]
        if "KAFKA_SASL" in e["name"]
    }
    assert refs == {
        "UPWARD_MATCHING_KAFKA_SASL_USERNAME": {
            "name": "upward-eu-west-kafka-users", "key": "matching-username"
        },
        "UPWARD_MATCHING_KAFKA_SASL_PASSWORD": {
            "name": "upward-eu-west-kafka-users", "key": "matching-password"
        },
    }  # fmt: skip
    job_env = {e["name"] for c in pods["upward-prepare"]["containers"] for e in c["env"]}
    assert {"UPWARD_KAFKA_SASL_USERNAME", "UPWARD_KAFKA_SASL_PASSWORD"} <= job_env
    volumes = {v["name"]: v for v in pods["upward-matching"]["volumes"]}
    assert volumes["kafka-ca"]["secret"]["secretName"] == "upward-eu-west-kafka-ca"


def _auth_env(manifests: list[Manifest], service: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A service's ConfigMap auth settings and its env entries that come from Secrets."""
    data = of_kind(manifests, "ConfigMap")[f"upward-{service}"]["data"]
    config = {k: v for k, v in data.items() if k.startswith("UPWARD_AUTH_")}
    pod = pod_specs(manifests)[f"upward-{service}"]
    refs = {e["name"]: e["valueFrom"] for c in pod["containers"] for e in c["env"]}
    return config, refs


def test_the_jwt_secret_comes_from_the_auth_secret(helm: Path) -> None:
    config, refs = _auth_env(render(helm, "values.yaml"), "sessions")
    assert config == {"UPWARD_AUTH_AUDIENCE": "upward"}
    assert refs["UPWARD_AUTH_JWT_SECRET"] == {
        "secretKeyRef": {"name": "upward-auth", "key": "jwt-secret"}
    }


def test_an_identity_provider_replaces_the_jwt_secret(helm: Path) -> None:
    jwks = "https://idp.example.com/keys"
    manifests = render(
        helm, "values.yaml", "--set", f"auth.jwksUrl={jwks}", "--set", "auth.issuer=https://idp"
    )
    config, refs = _auth_env(manifests, "feedback")
    assert config["UPWARD_AUTH_JWKS_URL"] == jwks
    assert config["UPWARD_AUTH_ISSUER"] == "https://idp"
    assert "UPWARD_AUTH_JWT_SECRET" not in refs


def test_the_development_install_uses_the_development_secret(helm: Path) -> None:
    _, refs = _auth_env(render(helm, "values-dev.yaml"), "matching")
    assert "UPWARD_AUTH_JWT_SECRET" not in refs
