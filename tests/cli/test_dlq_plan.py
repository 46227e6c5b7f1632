"""Which dead letters a replay sends: pure logic over records, no broker."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from servicekit.dead_letters import RawRecord, dead_letter_headers
from upward.events.dead_letters import REPLAY_MARK, DeadLetterTopic, letters_of, plan_replay

DLQ = "p.upward.pairs.dlq"


def record(
    partition: int, offset: int, headers: list[tuple[str, bytes]], value: bytes = b"{}"
) -> ConsumerRecord[bytes, bytes]:
    sizes = {"checksum": None, "serialized_key_size": 1, "serialized_value_size": len(value)}
    return ConsumerRecord(
        DLQ, partition, offset, 0, 0, b"k", value, headers=tuple(headers), **sizes
    )


def dead(partition: int, offset: int, reason: str) -> ConsumerRecord[bytes, bytes]:
    original = RawRecord("p.upward.pairs", 0, offset, b"k", b"{}")
    return record(
        partition, offset, dead_letter_headers(original, reason=reason, detail="d", group="g")
    )


def marker(of: str) -> ConsumerRecord[bytes, bytes]:
    return record(0, 99, [(REPLAY_MARK, of.encode())])


def topic(*records: ConsumerRecord[bytes, bytes]) -> DeadLetterTopic:
    return DeadLetterTopic("upward.pairs", DLQ, True, letters_of("upward.pairs", DLQ, records))


def test_markers_are_not_dead_letters_and_mark_theirs_as_replayed() -> None:
    found = topic(dead(0, 0, "rejected"), dead(1, 0, "rejected"), marker("1:0"))

    assert [(letter.position, letter.replayed) for letter in found.letters] == [
        ("0:0", False),
        ("1:0", True),
    ]
    assert found.reasons() == {"rejected": 2}


def test_plan_skips_replayed_truncated_headerless_and_other_reasons() -> None:
    truncated = dead(0, 2, "oversized")
    truncated = record(0, 2, [*truncated.headers, ("dlq.truncated", b"5000")])
    found = topic(
        dead(0, 0, "rejected"),
        dead(0, 1, "rejected"),
        marker("0:1"),
        truncated,
        record(1, 0, [("dlq.reason", b"rejected")]),  # no dlq.original.topic
        dead(2, 0, "invalid_json"),
    )

    everything = plan_replay([found], reasons=frozenset())
    rejected = plan_replay([found], reasons=frozenset({"rejected"}))

    assert [letter.position for letter in everything.to_send] == ["0:0", "2:0"]
    assert everything.skipped == {
        "already replayed": 1,
        "truncated (original too large)": 1,
        "no dlq.original.topic header": 1,
    }
    assert everything.by_reason() == {"rejected": 1, "invalid_json": 1}
    assert [letter.position for letter in rejected.to_send] == ["0:0"]
    assert rejected.skipped["other reason"] == 2  # invalid_json and the truncated oversized
