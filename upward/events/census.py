"""A census of the catalogue topics: what is on them, twice, undecodable or dead-lettered.

:func:`topic_census` reads every catalogue topic and its ``.dlq`` twin from the beginning to
their end offsets as of the call (no consumer group). The demo's summary and the end-to-end
tests use it to check the platform's output, e.g. that each ``PairFormed`` is followed by a
``SessionScheduled`` for the same pair, or that events of one key stay in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from schemas.codec import DecodedEvent
from schemas.registry import TOPIC_NAMES
from upward.events.broker import BrokerUnreachable, read_all
from upward.events.catalogue import physical, physical_dlq
from upward.events.dead_letters import letters_of
from upward.events.records import SeenRecord, see


@dataclass(frozen=True)
class LoggedEvent:
    """A decoded event and where it sits on its topic."""

    partition: int
    offset: int
    key: bytes | None
    event: DecodedEvent


@dataclass(frozen=True)
class Census:
    """What the catalogue topics held at the time of the census (logical topic names).

    ``counts``: (topic, event type) -> decoded events; ``undecodable``: topic -> records the
    codec refused (by ``DecodeFailure`` in ``undecodable_reasons``); ``dead_letters``: topic ->
    dead letters on its ``.dlq`` twin (replay markers excluded), reasons in
    ``dead_letter_reasons``; ``duplicates``: topic -> {event id: times seen} for ids seen
    more than once; ``events``: topic -> partition -> decoded events in offset order.
    """

    counts: dict[tuple[str, str], int]
    undecodable: dict[str, int]
    undecodable_reasons: dict[str, dict[str, int]]
    dead_letters: dict[str, int]
    dead_letter_reasons: dict[str, dict[str, int]]
    duplicates: dict[str, dict[str, int]]
    events: dict[str, dict[int, tuple[LoggedEvent, ...]]]

    def count(self, event_type: str) -> int:
        """How many events of ``event_type`` across all topics."""
        return sum(n for (_, kind), n in self.counts.items() if kind == event_type)

    def of_type(self, event_type: str) -> list[DecodedEvent]:
        """Every decoded event of ``event_type`` (topic order, then partition and offset)."""
        return [
            logged.event
            for partitions in self.events.values()
            for partition in sorted(partitions)
            for logged in partitions[partition]
            if logged.event.envelope.event_name == event_type
        ]

    def about(self, subject: str) -> list[DecodedEvent]:
        """Every decoded event whose subject is ``subject``, on any topic, by event time
        (e.g. a pair's PairFormed, SessionScheduled and FeedbackRequested)."""
        found = [
            logged.event
            for partitions in self.events.values()
            for events in partitions.values()
            for logged in events
            if logged.event.envelope.subject == subject
        ]
        return sorted(found, key=lambda event: event.envelope.time)

    def by_key(self, topic: str) -> dict[bytes | None, list[DecodedEvent]]:
        """``topic``'s events grouped by record key, each group in offset order."""
        groups: dict[bytes | None, list[DecodedEvent]] = {}
        for partition in sorted(self.events.get(topic, {})):
            for logged in self.events[topic][partition]:
                groups.setdefault(logged.key, []).append(logged.event)
        return groups


async def topic_census(*, bootstrap: str, prefix: str) -> Census:
    """Read every catalogue topic and its dlq twin to their current end; count what is there.

    Topics that do not exist yet count as empty. Raises ``BrokerUnreachable`` when the broker
    does not answer.
    """
    names = {physical(prefix, topic): topic for topic in TOPIC_NAMES}
    dlq_names = {physical_dlq(prefix, topic): topic for topic in TOPIC_NAMES}
    records = await read_all(bootstrap, [*names, *dlq_names])
    seen = {
        topic: [see(record, topic=topic) for record in records.get(name, [])]
        for name, topic in names.items()
    }
    letters = {
        topic: letters_of(topic, name, records.get(name, [])) for name, topic in dlq_names.items()
    }
    return Census(
        counts=_counts(seen),
        undecodable={
            topic: sum(1 for s in items if s.event is None) for topic, items in seen.items()
        },
        undecodable_reasons={topic: _error_reasons(items) for topic, items in seen.items()},
        dead_letters={topic: len(found) for topic, found in letters.items()},
        dead_letter_reasons={
            topic: dict(Counter(letter.reason for letter in found))
            for topic, found in letters.items()
        },
        duplicates={topic: _duplicates(items) for topic, items in seen.items()},
        events={topic: _by_partition(items) for topic, items in seen.items()},
    )


def _counts(seen: dict[str, list[SeenRecord]]) -> dict[tuple[str, str], int]:
    """Decoded events per (topic, event type)."""
    counts: Counter[tuple[str, str]] = Counter()
    for topic, items in seen.items():
        for item in items:
            if item.event is not None:
                counts[(topic, item.event.envelope.event_name)] += 1
    return dict(counts)


def _error_reasons(items: list[SeenRecord]) -> dict[str, int]:
    """Undecodable records per decode failure reason."""
    return dict(Counter(item.error.reason.value for item in items if item.error is not None))


def _duplicates(items: list[SeenRecord]) -> dict[str, int]:
    """Event ids seen more than once, with how many times."""
    ids = Counter(item.event.envelope.id for item in items if item.event is not None)
    return {event_id: times for event_id, times in ids.items() if times > 1}


def _by_partition(items: list[SeenRecord]) -> dict[int, tuple[LoggedEvent, ...]]:
    """Decoded events per partition, in offset order (``items`` are already sorted)."""
    partitions: dict[int, list[LoggedEvent]] = {}
    for item in items:
        if item.event is not None:
            logged = LoggedEvent(item.partition, item.offset, item.key, item.event)
            partitions.setdefault(item.partition, []).append(logged)
    return {partition: tuple(events) for partition, events in partitions.items()}


__all__ = ["BrokerUnreachable", "Census", "LoggedEvent", "topic_census"]
