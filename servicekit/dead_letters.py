"""Dead letters: bad events are set aside on ``<topic>.dlq`` with the reason.

The original key and value are kept byte for byte so that ``upward dlq replay``
can put them back on the original topic after a fix. Several services read one topic,
each in its own consumer group, and each dead-letters a record it cannot process: a
replay therefore names the group the dead letter came from in the ``dlq.replay.group``
header of the record it publishes, and the other groups leave that record alone
(:func:`replayed_for_another_group`): each group re-processes its own dead letter once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from servicekit import metrics
from servicekit.kafka import dlq_topic

HEADER_PREFIX = "dlq."
REPLAY_GROUP = HEADER_PREFIX + "replay.group"
"""Header of a replayed record: the consumer group whose dead letter it is."""


@dataclass(frozen=True)
class RawRecord:
    """A message as read from Kafka, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def replayed_for_another_group(record: RawRecord, group: str) -> bool:
    """True when ``record`` is a dead letter replayed for a consumer group other than ``group``."""
    for key, value in record.headers:
        if key == REPLAY_GROUP:
            return value.decode("utf-8", errors="replace") != group
    return False


def dead_letter_headers(
    record: RawRecord, *, reason: str, detail: str, group: str, error: str = ""
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why, and where the original came from."""
    values = {
        "reason": reason,
        "detail": detail[:2000],
        "error": error,
        "original.topic": record.topic,
        "original.partition": str(record.partition),
        "original.offset": str(record.offset),
        "consumer.group": group,
        "failed.at": datetime.now(UTC).isoformat(),
    }
    originals = [(k, v) for k, v in record.headers if not k.startswith(HEADER_PREFIX)]
    return originals + [(HEADER_PREFIX + k, v.encode()) for k, v in values.items()]


async def send_to_dead_letters(
    producer: AIOKafkaProducer,
    record: RawRecord,
    *,
    reason: str,
    detail: str,
    group: str,
    logical_topic: str,
    max_bytes: int,
    error: str = "",
) -> None:
    """Publish ``record`` to its dead-letter topic and wait for the ack.

    The value is kept byte for byte, unless it is larger than ``max_bytes``:
    then only its first ``max_bytes`` are kept (a dead letter must itself fit
    the topic) and ``dlq.truncated`` gives the original size.
    """
    value, headers = (
        record.value,
        dead_letter_headers(record, reason=reason, detail=detail, group=group, error=error),
    )
    if value is not None and len(value) > max_bytes:
        value = value[:max_bytes]
        headers.append((HEADER_PREFIX + "truncated", str(len(record.value or b"")).encode()))
    await producer.send_and_wait(
        dlq_topic(record.topic), value=value, key=record.key, headers=headers
    )
    metrics.EVENTS_DEAD_LETTERED.labels(logical_topic, reason).inc()
