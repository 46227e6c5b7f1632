"""Dead letters on ``<topic>.dlq``: read them, and replay them to their original topic.

The ``dlq.*`` headers are written by :mod:`servicekit.dead_letters`. A replay publishes the
dead letter's key and value, byte for byte, to ``dlq.original.topic`` and, **in the same
Kafka transaction**, a *replay marker* on the dead-letter topic: a record whose header
``dlq.replay.of`` is ``<partition>:<offset>`` of the dead letter it replayed. Readers use
``read_committed``, so either both the replayed record and its marker are visible or
neither is; a later replay skips every dead letter that has a marker. The replayed record
carries the original headers and ``dlq.replay.group``, the consumer group that dead-lettered
it: the other services reading the topic leave it alone (they processed the original
already), so each group re-processes its own dead letter once. The transactional id
is per dead-letter topic, so a second replay of the same topic fences a first one still
running. Markers are not dead letters: every reader here leaves them out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from schemas.errors import DecodeFailure
from servicekit.dead_letters import HEADER_PREFIX, REPLAY_GROUP
from upward.events.broker import (
    MAX_RECORD_BYTES,
    Record,
    connection_options,
    read_all,
    start_producer,
)
from upward.events.catalogue import physical_dlq

REPLAY_MARK = HEADER_PREFIX + "replay.of"
"""Header of a replay marker: ``<partition>:<offset>`` of the dead letter replayed."""
REPLAYED_AT = HEADER_PREFIX + "replayed.at"
REASONS: tuple[str, ...] = (
    *(failure.value for failure in DecodeFailure),
    "rejected",
    "unprocessable",
)
"""Every ``dlq.reason`` the kit writes (docs/events.md, "Dead letters")."""
TRANSACTION_SIZE = 100
"""Dead letters replayed per transaction (each with its marker)."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: where it sits, the original key/value, and its ``dlq.*`` headers."""

    topic: str
    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    replayed: bool = False

    def header(self, name: str) -> str:
        """The ``dlq.<name>`` header as text ("" when absent)."""
        for key, value in self.headers:
            if key == HEADER_PREFIX + name:
                return value.decode("utf-8", errors="replace")
        return ""

    @property
    def reason(self) -> str:
        """``dlq.reason`` (``unknown`` when missing)."""
        return self.header("reason") or "unknown"

    @property
    def truncated(self) -> bool:
        """True when only the first bytes of the original value were kept."""
        return bool(self.header("truncated"))

    @property
    def position(self) -> str:
        """``<partition>:<offset>`` on the dead-letter topic."""
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class DeadLetterTopic:
    """The dead letters of one logical topic, in (partition, offset) order."""

    topic: str
    dlq_topic: str
    exists: bool
    letters: tuple[DeadLetter, ...]

    def reasons(self) -> Counter[str]:
        """How many dead letters per ``dlq.reason``."""
        return Counter(letter.reason for letter in self.letters)


def letters_of(topic: str, dlq_topic: str, records: Iterable[Record]) -> tuple[DeadLetter, ...]:
    """Dead letters among ``records`` of ``dlq_topic`` (markers applied, then left out)."""
    kept: list[Record] = []
    replayed: set[str] = set()
    for record in records:
        mark = dict(record.headers).get(REPLAY_MARK)
        if mark is None:
            kept.append(record)
        else:
            replayed.add(mark.decode("ascii", errors="replace"))
    return tuple(
        DeadLetter(
            topic=topic,
            dlq_topic=dlq_topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers),
            replayed=f"{record.partition}:{record.offset}" in replayed,
        )
        for record in kept
    )


async def read_dead_letters(
    bootstrap: str, prefix: str, topics: Iterable[str]
) -> list[DeadLetterTopic]:
    """The dead letters of each logical topic in ``topics`` (a missing dlq topic is empty)."""
    names = {topic: physical_dlq(prefix, topic) for topic in topics}
    records = await read_all(bootstrap, names.values())
    return [
        DeadLetterTopic(
            topic=topic,
            dlq_topic=name,
            exists=name in records,
            letters=letters_of(topic, name, records.get(name, [])),
        )
        for topic, name in names.items()
    ]


async def find_dead_letter(
    bootstrap: str, prefix: str, topic: str, partition: int, offset: int
) -> DeadLetter | None:
    """The dead letter at ``partition``/``offset`` of ``topic``'s dlq topic, if there is one."""
    (found,) = await read_dead_letters(bootstrap, prefix, [topic])
    for letter in found.letters:
        if (letter.partition, letter.offset) == (partition, offset):
            return letter
    return None


@dataclass
class ReplayPlan:
    """Which dead letters a replay sends, and which it skips (and why)."""

    to_send: list[DeadLetter] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def by_reason(self) -> Counter[str]:
        """The dead letters to send, per ``dlq.reason``."""
        return Counter(letter.reason for letter in self.to_send)


def plan_replay(topics: Iterable[DeadLetterTopic], *, reasons: frozenset[str]) -> ReplayPlan:
    """Choose what to replay: not yet replayed, not truncated, with a known original topic."""
    plan = ReplayPlan()
    for letter in (letter for found in topics for letter in found.letters):
        why_not = _skip_reason(letter, reasons)
        if why_not:
            plan.skipped[why_not] += 1
        else:
            plan.to_send.append(letter)
    return plan


def _skip_reason(letter: DeadLetter, reasons: frozenset[str]) -> str:
    """Why ``letter`` is not replayed ("" when it is)."""
    if reasons and letter.reason not in reasons:
        return "other reason"
    if letter.replayed:
        return "already replayed"
    if letter.truncated:
        return "truncated (original too large)"
    if not letter.header("original.topic"):
        return "no dlq.original.topic header"
    return ""


async def replay(
    bootstrap: str, plan: ReplayPlan, *, on_sent: Callable[[int], None] = lambda _: None
) -> int:
    """Publish every dead letter of ``plan`` back, each with its marker; return how many.

    One transaction per dead-letter topic and :data:`TRANSACTION_SIZE` letters;
    ``on_sent(n)`` is called after each committed transaction of ``n`` letters.
    """
    sent = 0
    by_dlq: dict[str, list[DeadLetter]] = {}
    for letter in plan.to_send:
        by_dlq.setdefault(letter.dlq_topic, []).append(letter)
    for dlq_topic, letters in by_dlq.items():
        producer = _transactional_producer(bootstrap, dlq_topic)
        await start_producer(producer, bootstrap)
        try:
            for start in range(0, len(letters), TRANSACTION_SIZE):
                chunk = letters[start : start + TRANSACTION_SIZE]
                await _replay_chunk(producer, chunk)
                sent += len(chunk)
                on_sent(len(chunk))
        finally:
            await producer.stop()
    return sent


def _transactional_producer(bootstrap: str, dlq_topic: str) -> AIOKafkaProducer:
    """An idempotent, transactional producer owning the replays of ``dlq_topic``."""
    return AIOKafkaProducer(
        **connection_options(bootstrap),
        transactional_id=f"upward-dlq-replay-{dlq_topic}",
        enable_idempotence=True,
        acks="all",
        max_request_size=MAX_RECORD_BYTES,
    )


async def _replay_chunk(producer: AIOKafkaProducer, letters: list[DeadLetter]) -> None:
    """Send ``letters`` to their original topics and their markers, in one transaction."""
    async with producer.transaction():
        for letter in letters:
            original = letter.header("original.topic")
            headers = [(k, v) for k, v in letter.headers if not k.startswith(HEADER_PREFIX)]
            if group := letter.header("consumer.group"):
                headers.append((REPLAY_GROUP, group.encode("utf-8")))
            await producer.send(original, value=letter.value, key=letter.key, headers=headers)
            await producer.send(
                letter.dlq_topic,
                value=_marker_value(letter, original),
                partition=letter.partition,
                headers=[
                    (REPLAY_MARK, letter.position.encode("ascii")),
                    (REPLAYED_AT, datetime.now(UTC).isoformat().encode("ascii")),
                ],
            )


def _marker_value(letter: DeadLetter, original: str) -> bytes:
    """The body of a replay marker: what was replayed where (for people reading the topic)."""
    document = {"replayed": letter.position, "to": original, "reason": letter.reason}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
