"""deploy/mirrormaker2: the example MirrorMaker 2 configuration follows the runbook.

Region-keyed topics mirrored under their own names, one direction per topic set (identity
names cannot detect cycles), the services' consumer groups translated for failover, and
nothing with personal data leaving the residency zone.
"""

from __future__ import annotations

import re
from pathlib import Path

from schemas.registry import TOPIC_NAMES, dlq_topic
from upward.deploy import SERVICES

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mirrormaker2" / "mm2-eu.properties"
ZONE = {"eu-west", "eu-central"}
WITHOUT_PERSONAL_DATA = {"upward.programs"}
"""Topics whose events carry no personal data (docs/operations.md, "Where personal data lives")."""


def properties() -> dict[str, str]:
    """The file as Java reads it (``\\\\`` is one backslash)."""
    result: dict[str, str] = {}
    for line in CONFIG.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip().replace("\\\\", "\\")
    return result


def physical_topics(region: str) -> set[str]:
    """Every topic of a region: catalogue topics and dead letters, region-prefixed."""
    return {f"{region}.{t}" for topic in TOPIC_NAMES for t in (topic, dlq_topic(topic))}


def flows() -> dict[tuple[str, str], str]:
    """Enabled replication flows and their topic patterns."""
    props = properties()
    flow = re.compile(r"^([a-z0-9-]+)->([a-z0-9-]+)\.enabled$")
    enabled = [m.groups() for k, v in props.items() if (m := flow.match(k)) and v == "true"]
    return {(a, b): props[f"{a}->{b}.topics"] for a, b in enabled}


def mirrored(pattern: str, regions: set[str]) -> set[str]:
    """The topics of ``regions`` that ``pattern`` selects."""
    every = set().union(*(physical_topics(r) for r in regions))
    return {t for t in every if re.fullmatch(pattern, t)}


def test_names_are_kept_and_offsets_translated() -> None:
    props = properties()
    assert props["replication.policy.class"].endswith(".IdentityReplicationPolicy")
    assert props["sync.group.offsets.enabled"] == "true"
    assert props["emit.checkpoints.enabled"] == "true"
    assert set(props["clusters"].replace(" ", "").split(",")) == ZONE | {"us-east"}


def test_each_region_is_mirrored_whole_to_its_peer() -> None:
    props = properties()
    for source, target in (("eu-west", "eu-central"), ("eu-central", "eu-west")):
        pattern = flows()[(source, target)]
        assert mirrored(pattern, ZONE | {"us-east"}) == physical_topics(source)
        groups = props[f"{source}->{target}.groups"]
        for service in SERVICES:
            assert re.fullmatch(groups, f"{source}.upward-{service}"), service


def test_no_topic_is_mirrored_in_two_directions() -> None:
    regions = ZONE | {"us-east"}
    for (source, target), pattern in flows().items():
        back = flows().get((target, source))
        if back:
            assert not mirrored(pattern, regions) & mirrored(back, regions), (source, target)


def test_personal_data_stays_in_the_zone() -> None:
    leaving = {k: v for k, v in flows().items() if not {k[0], k[1]} <= ZONE}
    assert leaving  # the example shows the one flow that leaves
    for (source, _), pattern in leaving.items():
        topics = mirrored(pattern, {source})
        assert topics == {f"{source}.{t}" for t in WITHOUT_PERSONAL_DATA}
    assert properties()["eu-west->us-east.groups.exclude"] == ".*"
