"""``upward dlq list|show|replay`` against the real broker, on dead letters the kit wrote."""

from __future__ import annotations

import json
from typing import Any

import pytest
from events_io import (
    create_topics,
    dead_letter,
    encoded,
    invoke,
    new_prefix,
    records_of,
    run,
)

from schemas.participants import ParticipantJoined
from servicekit.dead_letters import RawRecord

pytestmark = pytest.mark.integration


@pytest.fixture
def dead(kafka_bootstrap: str) -> dict[str, Any]:
    """Under a fresh prefix: on upward.participants.dlq, two rejected events (partitions
    0 and 1), an invalid_json record and a truncated oversized one (partition 2)."""
    prefix = new_prefix()
    topic = f"{prefix}upward.participants"
    first = encoded(ParticipantJoined, participant_id="emp-dlq-1")
    second = encoded(ParticipantJoined, participant_id="emp-dlq-2")
    rejected = [
        RawRecord(topic, 0, 10, first.key, first.value, (("traceparent", b"00-abc"),)),
        RawRecord(topic, 1, 11, second.key, second.value),
    ]
    junk = RawRecord(topic, 2, 12, b"emp-dlq-3", b"{oops")
    huge = RawRecord(topic, 2, 13, b"emp-dlq-4", b'{"pad": "' + b"x" * 300 + b'"}')
    run(
        create_topics(kafka_bootstrap, [topic]),
        dead_letter(kafka_bootstrap, rejected, reason="rejected", detail="program closed"),
        dead_letter(kafka_bootstrap, [junk], reason="invalid_json", detail="Expecting value"),
        dead_letter(kafka_bootstrap, [huge], reason="oversized", max_bytes=100),
    )
    return {"prefix": prefix, "topic": topic, "events": [first, second], "junk": junk}


def test_list_counts_dead_letters_with_their_reasons_and_origins(
    kafka_bootstrap: str, dead: dict[str, Any]
) -> None:
    result = invoke(
        ["dlq", "list", "-t", "participants"], bootstrap=kafka_bootstrap, prefix=dead["prefix"]
    )

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"{dead['topic']}.dlq: 4 dead letters — invalid_json 1, oversized 1, rejected 2" in text
    rows = [line for line in text.splitlines() if "upward-welcome" in line]
    assert len(rows) == 4
    assert sum("rejected" in row and "program closed" in row for row in rows) == 2
    assert any("upward.participants:0:10" in row for row in rows)  # shown without the prefix
    assert any("invalid_json" in row and "upward.participants:2:12" in row for row in rows)


def test_list_of_all_topics_says_which_are_empty(
    kafka_bootstrap: str, dead: dict[str, Any]
) -> None:
    result = invoke(["dlq", "list"], bootstrap=kafka_bootstrap, prefix=dead["prefix"])

    assert result.exit_code == 0, result.output
    assert (
        f"{dead['prefix']}upward.pairs.dlq: 0 dead letters (topic does not exist yet)"
        in result.stdout
    )
    assert f"{dead['topic']}.dlq: 4 dead letters" in result.stdout


def test_show_prints_headers_and_the_value_as_json_or_text(
    kafka_bootstrap: str, dead: dict[str, Any]
) -> None:
    letters = run_list(kafka_bootstrap, dead)
    rejected = next(at for at, reason in letters if reason == "rejected")
    junk = next(at for at, reason in letters if reason == "invalid_json")

    where = {"bootstrap": kafka_bootstrap, "prefix": dead["prefix"]}
    shown = invoke(["dlq", "show", "participants", *rejected.split(":")], **where)
    raw = invoke(["dlq", "show", "upward.participants", *junk.split(":")], **where)

    assert shown.exit_code == 0, shown.output
    assert "dlq.reason" in shown.stdout and "rejected" in shown.stdout
    assert "traceparent" in shown.stdout or "dlq.original.partition" in shown.stdout
    value = shown.stdout.split("value:", 1)[1]
    assert json.loads(value)["type"] == "upward.ParticipantJoined"
    assert raw.exit_code == 0, raw.output
    assert raw.stdout.split("value:", 1)[1].strip() == "{oops"
    assert "key: emp-dlq-3" in raw.stdout


def test_show_of_a_position_without_a_dead_letter_exits_1(
    kafka_bootstrap: str, dead: dict[str, Any]
) -> None:
    where = {"bootstrap": kafka_bootstrap, "prefix": dead["prefix"]}
    result = invoke(["dlq", "show", "participants", "0", "99"], **where)

    assert result.exit_code == 1
    assert f"no dead letter at 0:99 of {dead['topic']}.dlq" in result.stderr


def test_dry_run_publishes_nothing(kafka_bootstrap: str, dead: dict[str, Any]) -> None:
    result = invoke(
        ["dlq", "replay", "--dry-run"], bootstrap=kafka_bootstrap, prefix=dead["prefix"]
    )

    assert result.exit_code == 0, result.output
    assert "Dead letters: 3 to replay, 1 skipped" in result.stdout
    assert row(result.stdout, "to replay", "rejected").endswith("2")
    assert row(result.stdout, "skipped", "truncated").endswith("1")
    assert published_on(kafka_bootstrap, dead["topic"]) == []


def test_replay_publishes_each_dead_letter_once_even_when_run_twice(
    kafka_bootstrap: str, dead: dict[str, Any]
) -> None:
    args = ["dlq", "replay", "--reason", "rejected", "--yes"]
    first = invoke(args, bootstrap=kafka_bootstrap, prefix=dead["prefix"])
    second = invoke(args, bootstrap=kafka_bootstrap, prefix=dead["prefix"])

    assert first.exit_code == 0, first.output
    assert "Dead letters: 2 replayed, 2 skipped" in first.stdout
    assert row(first.stdout, "skipped", "other reason").endswith("2")
    assert second.exit_code == 0, second.output
    assert "Dead letters: 0 replayed, 4 skipped" in second.stdout
    assert row(second.stdout, "skipped", "already replayed").endswith("2")
    replayed = published_on(kafka_bootstrap, dead["topic"])
    originals = {(e.key, e.value) for e in dead["events"]}
    assert sorted((r.key, r.value) for r in replayed) == sorted(originals)
    traced = next(r for r in replayed if r.key == b"emp-dlq-1")
    assert traced.headers == (  # the original headers and the group it is replayed for
        ("traceparent", b"00-abc"),
        ("dlq.replay.group", b"upward-welcome"),
    )
    listing = invoke(["dlq", "list"], bootstrap=kafka_bootstrap, prefix=dead["prefix"])
    assert "4 dead letters, 2 replayed" in listing.stdout


def test_replay_asks_first_and_a_no_publishes_nothing(
    kafka_bootstrap: str, dead: dict[str, Any]
) -> None:
    result = invoke(
        ["dlq", "replay"], bootstrap=kafka_bootstrap, prefix=dead["prefix"], stdin="n\n"
    )

    assert result.exit_code == 1
    assert "Replay 3 dead letter(s)?" in result.stdout
    assert published_on(kafka_bootstrap, dead["topic"]) == []


def run_list(bootstrap: str, dead: dict[str, Any]) -> list[tuple[str, str]]:
    """(partition:offset, reason) of each dead letter, from ``upward dlq list``."""
    result = invoke(
        ["dlq", "list", "-t", "participants"], bootstrap=bootstrap, prefix=dead["prefix"]
    )
    assert result.exit_code == 0, result.output
    found = []
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if len(cells) >= 2 and cells[0][:1].isdigit():
            found.append((cells[0], cells[1]))
    return found


def row(text: str, outcome: str, why: str) -> str:
    """The summary table row with ``outcome`` and ``why`` (stripped of borders)."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if len(cells) == 3 and cells[0] == outcome and cells[1].startswith(why):
            return " ".join(cells)
    raise AssertionError(f"no row {outcome!r} {why!r} in:\n{text}")


def published_on(bootstrap: str, topic: str) -> list[Any]:
    """Every record now on ``topic`` (the original topic a replay writes to)."""
    found: list[Any] = []

    async def read() -> None:
        found.extend(await records_of(bootstrap, topic))

    run(read())
    return found
