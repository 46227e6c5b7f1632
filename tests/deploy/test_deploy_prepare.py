"""``upward deploy prepare``: the topic plan, and the Job's command on the real stack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.registry import TOPIC_NAMES
from upward.deploy import (
    SERVICES,
    TopicPlan,
    desired_topics,
    known_env_names,
    migrations_dir,
    settings_class,
)

UPWARD = Path(sys.executable).parent / "upward"


def test_the_plan_layers_defaults_dead_letters_and_overrides() -> None:
    plan = TopicPlan.model_validate(
        {
            "partitions": 6,
            "replicationFactor": 3,
            "config": {"min.insync.replicas": "2", "retention.ms": "100"},
            "deadLetters": {"config": {"retention.ms": "900"}},
            "overrides": {
                "upward.pairs": {"partitions": 12, "config": {"cleanup.policy": "delete"}},
                "upward.pairs.dlq": {"partitions": 1},
            },
        }
    )
    specs = {s.name: s for s in desired_topics(plan, prefix="eu-west.")}
    assert len(specs) == 2 * len(TOPIC_NAMES)
    programs = specs["eu-west.upward.programs"]
    assert (programs.partitions, programs.replication_factor) == (6, 3)
    assert programs.config == {"min.insync.replicas": "2", "retention.ms": "100"}
    assert specs["eu-west.upward.programs.dlq"].config["retention.ms"] == "900"
    pairs, pairs_dlq = specs["eu-west.upward.pairs"], specs["eu-west.upward.pairs.dlq"]
    assert pairs.partitions == 12 and pairs.config["cleanup.policy"] == "delete"
    assert pairs_dlq.partitions == 1  # its own override beats the topic's
    assert pairs_dlq.config == {
        "min.insync.replicas": "2",
        "retention.ms": "900",
        "cleanup.policy": "delete",
    }


def test_an_override_of_an_unknown_topic_is_refused() -> None:
    plan = TopicPlan.model_validate({"overrides": {"upward.pair": {"partitions": 2}}})
    with pytest.raises(ValueError, match=r"unknown topics: upward\.pair"):
        desired_topics(plan, prefix="")


def test_settings_and_migrations_are_found_per_service() -> None:
    for name in SERVICES:
        assert f"UPWARD_{name.upper()}_DATABASE_URL" in known_env_names(name)
        assert "UPWARD_KAFKA_BOOTSTRAP_SERVERS" in known_env_names(name)
        assert settings_class(name).model_fields["database_url"].is_required()
    assert sorted(p.name for p in migrations_dir("welcome").glob("*.sql")) == ["0001_welcomes.sql"]
    with pytest.raises(ValueError, match="unknown service"):
        migrations_dir("billing")


def run_prepare(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The prepare Job's command, as the image runs it."""
    command = [str(UPWARD), "deploy", "prepare", "--service", "welcome", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


async def _topic_state(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, n, {"retention.ms": None}) for n in names
        ]
        [configs] = await admin.describe_configs(resources)
        retention = {
            resource[3]: dict((entry[0], entry[1]) for entry in resource[4])["retention.ms"]
            for resource in configs.resources
        }
        return {t["topic"]: (len(t["partitions"]), retention[t["topic"]]) for t in described}
    finally:
        await admin.close()


async def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def _migrations(url: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT owner, name FROM kit_schema_migrations")
        return {(r["owner"], r["name"]) for r in rows}
    finally:
        await conn.close()


@pytest.mark.integration
def test_prepare_creates_topics_and_migrates_once(
    kafka_bootstrap: str, fresh_database_url: str
) -> None:
    prefix = f"p{uuid.uuid4().hex[:10]}."
    env = {
        **os.environ,
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "UPWARD_TOPIC_PREFIX": prefix,
        "UPWARD_WELCOME_DATABASE_URL": fresh_database_url,
    }
    asyncio.run(_create_topic(kafka_bootstrap, f"{prefix}upward.feedback", 1))  # drifted
    plan = (
        '{"partitions": 2, "replicationFactor": 1, "config": {"retention.ms": "3600000"},'
        ' "deadLetters": {"config": {"retention.ms": "7200000"}}}'
    )
    first = run_prepare(env, "--topics", plan)
    assert first.returncode == 0, first.stderr
    assert "topics: 11 created, 1 already there" in first.stdout
    assert f"{prefix}upward.feedback has 1 partitions, the plan says 2" in first.stderr
    state = asyncio.run(
        _topic_state(kafka_bootstrap, [f"{prefix}upward.pairs", f"{prefix}upward.pairs.dlq"])
    )
    assert state == {
        f"{prefix}upward.pairs": (2, "3600000"),
        f"{prefix}upward.pairs.dlq": (2, "7200000"),
    }
    applied = asyncio.run(_migrations(fresh_database_url))
    assert ("welcome", "0001_welcomes.sql") in applied
    assert ("servicekit", "0001_outbox_inbox.sql") in applied

    again = run_prepare(env, "--topics", plan)
    assert again.returncode == 0, again.stderr
    assert "topics: 0 created, 12 already there" in again.stdout
    assert "welcome: 0 migration(s) applied" in again.stdout


def test_prepare_refuses_an_unknown_service_before_doing_anything() -> None:
    env = {**os.environ, "UPWARD_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = subprocess.run(
        [str(UPWARD), "deploy", "prepare", "--service", "billing"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unknown service 'billing'" in result.stderr + str(result.stdout)
