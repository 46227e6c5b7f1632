"""``upward deploy ...``: what a deployment runs before the services roll.

``upward deploy prepare`` is the Helm chart's pre-install/pre-upgrade Job: it creates the
catalogue's topics and their dead-letter twins with the partitions, replication and topic
configuration of the deployment (a :class:`TopicPlan`, passed as JSON), then applies the
kit's and each service's migrations. Both steps are idempotent: existing topics are left
as they are (a difference from the plan is reported, never "fixed", because adding
partitions moves keys and breaks per-aggregate order), and applied migrations are skipped.
The services still run both steps at start; the Job makes schema changes land before the
new pods, and topics get production settings instead of the kit's defaults.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from schemas.registry import TOPIC_NAMES, dlq_topic
from servicekit import db
from servicekit.auth import AuthSettings
from servicekit.kafka import make_admin
from servicekit.settings import ServiceSettings, load_settings, settings_for

SERVICES = ("matching", "sessions", "feedback", "notifications")
"""The four services; each is the package ``services.<name>`` (``examples.welcome_service``
is accepted too, as ``welcome``: the kit's example)."""

_EXAMPLE = "welcome"
AUTH_ENV_PREFIX = str(AuthSettings.model_config.get("env_prefix", ""))
_TOPIC_ALREADY_EXISTS = 36


class TopicSettings(BaseModel):
    """Partitions, replication and broker-side configuration of some topics."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1, alias="replicationFactor")
    config: dict[str, str] = Field(default_factory=dict)


class TopicPlan(BaseModel):
    """The deployment's topics: defaults, dead-letter settings and per-topic overrides.

    The same shape as the Helm chart's ``topics`` value (camelCase keys accepted).
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1, alias="replicationFactor")
    config: dict[str, str] = Field(default_factory=dict)
    dead_letters: TopicSettings = Field(default_factory=TopicSettings, alias="deadLetters")
    overrides: dict[str, TopicSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class TopicSpec:
    """One physical topic as the plan wants it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def _merged(plan: TopicPlan, layers: list[TopicSettings], name: str) -> TopicSpec:
    spec = TopicSpec(name, plan.partitions, plan.replication_factor, dict(plan.config))
    for layer in layers:
        spec = TopicSpec(
            name,
            layer.partitions or spec.partitions,
            layer.replication_factor or spec.replication_factor,
            {**spec.config, **layer.config},
        )
    return spec


def desired_topics(plan: TopicPlan, *, prefix: str) -> list[TopicSpec]:
    """Every catalogue topic and its ``.dlq`` twin, physical names, as ``plan`` wants them."""
    unknown = sorted(set(plan.overrides) - {*TOPIC_NAMES, *map(dlq_topic, TOPIC_NAMES)})
    if unknown:
        raise ValueError(f"topic overrides name unknown topics: {', '.join(unknown)}")
    specs: list[TopicSpec] = []
    for topic in TOPIC_NAMES:
        own = [plan.overrides[topic]] if topic in plan.overrides else []
        dlq = dlq_topic(topic)
        dlq_own = [plan.overrides[dlq]] if dlq in plan.overrides else []
        specs.append(_merged(plan, own, prefix + topic))
        specs.append(_merged(plan, [*own, plan.dead_letters, *dlq_own], prefix + dlq))
    return specs


@dataclass
class TopicReport:
    """What :func:`create_topics` did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)


async def create_topics(settings: ServiceSettings, specs: list[TopicSpec]) -> TopicReport:
    """Create the missing topics of ``specs``; report existing ones that have fewer partitions.

    The broker and its connection security come from ``settings`` (as the services read them).
    """
    admin = make_admin(settings)
    await admin.start()
    try:
        report = TopicReport()
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            response = await admin.create_topics([_new_topic(s) for s in missing])
            _raise_on_errors(response.to_object())
            report.created = [s.name for s in missing]
        present = [s for s in specs if s.name in existing]
        report.existing = [s.name for s in present]
        report.drift = await _partition_drift(admin, present)
        return report
    finally:
        await admin.close()


def _new_topic(spec: TopicSpec) -> NewTopic:
    return NewTopic(
        spec.name, spec.partitions, spec.replication_factor, topic_configs=dict(spec.config)
    )


def _raise_on_errors(response: dict[str, Any]) -> None:
    errors = [
        f"{t['topic']}: {t.get('error_message') or t['error_code']}"
        for t in response["topic_errors"]
        if t["error_code"] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if errors:
        raise RuntimeError("creating topics failed: " + "; ".join(errors))


async def _partition_drift(admin: AIOKafkaAdminClient, present: list[TopicSpec]) -> list[str]:
    if not present:
        return []
    described = await admin.describe_topics([s.name for s in present])
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    return [
        f"{s.name} has {counts[s.name]} partitions, the plan says {s.partitions}"
        for s in present
        if counts.get(s.name, s.partitions) != s.partitions
    ]


def _check_known(name: str) -> None:
    if name not in (*SERVICES, _EXAMPLE):
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")


def migrations_dir(name: str) -> Path:
    """The migrations of service ``name``: ``services/<name>/migrations``."""
    _check_known(name)
    if name == _EXAMPLE:
        return Path(importlib.import_module("examples").__path__[0]) / "welcome_migrations"
    return Path(importlib.import_module(f"services.{name}").__path__[0]) / "migrations"


def settings_class(name: str) -> type[ServiceSettings]:
    """The settings class service ``name`` loads: ``services/<name>/settings.py``'s subclass
    of :class:`ServiceSettings` (when it has one), read from ``UPWARD_<NAME>_*``."""
    _check_known(name)
    base = ServiceSettings
    if name != _EXAMPLE and importlib.util.find_spec(f"services.{name}.settings"):
        module = importlib.import_module(f"services.{name}.settings")
        own = [
            cls
            for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, ServiceSettings)
            and cls.__module__ == module.__name__
        ]  # fmt: skip
        base = own[0] if len(own) == 1 else base
    return settings_for(name, base)


def known_env_names(name: str) -> set[str]:
    """Every environment variable the settings of service ``name`` read (its own settings
    and how it verifies bearer tokens, ``UPWARD_AUTH_*``)."""
    prefix = f"UPWARD_{name.upper()}_"
    names = {AUTH_ENV_PREFIX + field.upper() for field in AuthSettings.model_fields}
    for field_name, info in settings_class(name).model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(a for a in alias.choices if isinstance(a, str))
        else:
            names.add(alias if isinstance(alias, str) else prefix + field_name.upper())
    return names


async def migrate(name: str) -> list[str]:
    """Apply the kit's and service ``name``'s pending migrations to its own database."""
    settings = load_settings(name)
    pool = await db.create_pool(settings.database_url.get_secret_value(), max_size=1)
    try:
        applied = await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
        applied += await db.apply_migrations(pool, name, migrations_dir(name))
        return applied
    finally:
        await pool.close()


app = typer.Typer(
    name="deploy",
    help="Deployment steps: create topics, apply migrations (the Helm chart's prepare Job).",
    no_args_is_help=True,
)

ServiceOpt = Annotated[
    list[str],
    typer.Option("--service", help="A service whose migrations to apply (repeatable)."),
]
PlanOpt = Annotated[
    str,
    typer.Option("--topics", help="TopicPlan as JSON (the chart's `topics` value)."),
]
SkipTopicsOpt = Annotated[bool, typer.Option("--skip-topics", help="Do not create topics.")]


@app.command()
def prepare(
    services: ServiceOpt, topics: PlanOpt = "{}", skip_topics: SkipTopicsOpt = False
) -> None:
    """Create the topics of the plan, then apply every named service's migrations.

    Kafka comes from UPWARD_KAFKA_BOOTSTRAP_SERVERS and UPWARD_TOPIC_PREFIX, each database
    from UPWARD_<SERVICE>_DATABASE_URL, exactly as the services read them.
    """
    if not services:
        raise typer.BadParameter("name at least one --service")
    for name in services:
        migrations_dir(name)  # fail before changing anything
    if not skip_topics:
        _prepare_topics(TopicPlan.model_validate_json(topics), load_settings(services[0]))
    for name in services:
        applied = asyncio.run(migrate(name))
        typer.echo(f"{name}: {len(applied)} migration(s) applied {applied}")


def _prepare_topics(plan: TopicPlan, settings: ServiceSettings) -> None:
    specs = desired_topics(plan, prefix=settings.topic_prefix)
    report = asyncio.run(create_topics(settings, specs))
    typer.echo(f"topics: {len(report.created)} created, {len(report.existing)} already there")
    for line in report.drift:
        typer.echo(f"warning: {line} (left as is: see docs/operations.md)", err=True)
