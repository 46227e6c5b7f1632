"""Reconcile every store and topic against the workload's input, after the faults.

From :class:`tests.chaos.workload.Input` (who joined, which pairs both people accepted,
which sessions were recorded held or missed, which feedback requests were answered) this
computes what each store must hold and checks it exactly: no missing row, no extra row,
no effect twice. Topics are read with :func:`upward.events.census.topic_census`: every
event a store's outbox produced is on its topic (none lost), every event on a topic came
from an outbox or from the input, repeats on the wire (at-least-once) are counted and
reported but each effect happened once, and for every key the order of first appearance on
the topic is the producing outbox's order (``kit_outbox.seq``), with causal order inside
a key (PairProposed before PairFormed, SessionScheduled before SessionHeld). The mails
in the sink are counted by their stable Message-ID: a resend of the same id after a crash
is reported; a message of no sent delivery, or a sent delivery without its mail, fails.

:func:`reconcile` returns a :class:`Reconciliation`: ``problems`` (empty when all holds) and
the figures for the summary :meth:`Reconciliation.summary` prints.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.workload import Input
from upward.demo.platform import TOPICS, Platform
from upward.events.census import Census, topic_census
from upward.services.mailsink import read_mailbox
from upward.stack import SERVICES

#: Within one key, an event of the first type must come before the second's.
CAUSAL = (
    ("PairProposed", "PairAccepted"),
    ("PairProposed", "PairFormed"),
    ("PairFormed", "PairEnded"),
    ("SessionScheduled", "SessionHeld"),
    ("SessionScheduled", "SessionMissed"),
    ("SessionScheduled", "SessionCancelled"),
    ("FeedbackRequested", "FeedbackSubmitted"),
)
#: Events whose notifications go to both people of the pair they name.
PAIR_NOTICES = ("PairProposed", "PairFormed")
#: Events that must each cause notifications (source key = the event id).
NOTIFYING = ("PairProposed", "PairFormed", "SessionScheduled", "FeedbackRequested")


@dataclass
class Reconciliation:
    """What the stores and topics hold compared with the input."""

    problems: list[str] = field(default_factory=list)
    effects: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    wire_duplicates: dict[str, int] = field(default_factory=dict)
    mail_resends: int = 0
    unsent_later: int = 0

    def expect(self, what: str, expected: set[str], actual: set[str] | list[str]) -> None:
        """*actual* must be exactly *expected*: each once, nothing missing, nothing extra."""
        items = list(actual)
        twice = sorted(k for k, n in Counter(items).items() if n > 1)
        missing = sorted(expected - set(items))
        extra = sorted(set(items) - expected)
        if twice:
            self.problems.append(f"{what}: {len(twice)} twice, e.g. {twice[:3]}")
        if missing:
            self.problems.append(f"{what}: {len(missing)} missing, e.g. {missing[:3]}")
        if extra:
            self.problems.append(f"{what}: {len(extra)} extra, e.g. {extra[:3]}")

    def summary(self, *, faults: list[str], seed: int, runtime_s: float, inp: Input) -> str:
        """The reconciliation summary printed by every case."""
        lines = [f"reconciliation (seed {seed}, {runtime_s:.0f} s):"]
        lines.append("  effects: " + ", ".join(f"{k} {v}" for k, v in self.effects.items()))
        lines.append(
            f"  events on topics: {sum(self.events.values())} distinct " + str(self.events)
        )
        dup = sum(self.wire_duplicates.values())
        lines.append(f"  wire duplicates (at-least-once, absorbed): {dup} {self.wire_duplicates}")
        lines.append(f"  mail resends with the same Message-ID: {self.mail_resends}")
        lines.append(f"  deliveries due after the run (not sent yet): {self.unsent_later}")
        lines.append(
            f"  driver: {len(inp.joined)} joins, {inp.days} days, {inp.http_retries} HTTP retries,"
            f" {inp.ambiguous_checked} lost answers checked in the store"
        )
        lines.append(f"  faults injected: {len(faults)}")
        lines += [f"    - {line}" for line in faults]
        lines.append("  problems: " + ("none" if not self.problems else ""))
        lines += [f"    ! {p}" for p in self.problems]
        return "\n".join(lines)


QUERIES = {
    "participants": ("matching", "SELECT participant_id FROM participants WHERE program_id = $1"),
    "pairs": (
        "matching",
        "SELECT pair_id, mentor_id, mentee_id, status, formed_at FROM pairs WHERE program_id = $1",
    ),
    "session_pairs": ("sessions", "SELECT pair_id FROM pairs WHERE program_id = $1"),
    "sessions": ("sessions", "SELECT session_id, status FROM sessions WHERE program_id = $1"),
    "feedback_pairs": ("feedback", "SELECT pair_id FROM pairs WHERE program_id = $1"),
    "requests": (
        "feedback",
        "SELECT request_id, status FROM feedback_requests WHERE program_id = $1",
    ),
}
DELIVERIES = (
    "SELECT delivery_id, source_key, recipient_id, kind, status, message_id, due_at FROM deliveries"
)
OUTBOX = "SELECT seq, event_id, topic, event_key, event_type FROM kit_outbox ORDER BY seq"


async def reconcile(
    platform: Platform, inp: Input, *, mail_file: Path, census: Census | None = None
) -> Reconciliation:
    """Check the stores, the topics and the mail sink against *inp*."""
    result = Reconciliation()
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, (service, sql) in QUERIES.items():
        rows[name] = [dict(r) for r in await platform.fetch(service, sql, inp.program_id)]
    deliveries = [dict(r) for r in await platform.fetch("notifications", DELIVERIES)]
    outboxes = {s: [dict(r) for r in await platform.fetch(s, OUTBOX)] for s in SERVICES}
    if census is None:
        census = await topic_census(
            bootstrap=platform.address.bootstrap_servers, prefix=platform.address.topic_prefix
        )
    _topics(result, census, outboxes, inp)
    _stores(result, census, rows, inp)
    _notifications(result, census, deliveries, inp, mail_file)
    return result


def _distinct(census: Census, event_type: str) -> dict[str, Any]:
    """Event id -> data of every distinct event of *event_type* on the topics."""
    return {e.envelope.id: e.envelope.data for e in census.of_type(event_type)}


def _topics(
    result: Reconciliation,
    census: Census,
    outboxes: dict[str, list[dict[str, Any]]],
    inp: Input,
) -> None:
    """No event lost or invented, no dead letter, order kept per key, causal order."""
    on_topic: dict[str, set[str]] = {
        topic: {
            logged.event.envelope.id
            for events in census.events.get(topic, {}).values()
            for logged in events
        }
        for topic in TOPICS
    }
    for topic in TOPICS:
        result.events[topic] = len(on_topic[topic])
        dupes = census.duplicates.get(topic, {})
        if dupes:
            result.wire_duplicates[topic] = sum(n - 1 for n in dupes.values())
        if census.dead_letters.get(topic, 0):
            reasons = census.dead_letter_reasons.get(topic, {})
            result.problems.append(
                f"{topic}: {census.dead_letters[topic]} dead letters (reasons {reasons})"
            )
        if census.undecodable.get(topic, 0):
            result.problems.append(f"{topic}: {census.undecodable[topic]} undecodable records")
    produced: dict[str, set[str]] = defaultdict(set)
    for service, rows in outboxes.items():
        for row in rows:
            produced[row["topic"]].add(row["event_id"])
            if row["event_id"] not in on_topic.get(row["topic"], set()):
                result.problems.append(
                    f"{service} outbox event {row['event_id']} ({row['event_type']}) "
                    f"never reached {row['topic']}"
                )
    produced["upward.participants"] |= set(inp.join_event_ids)
    for topic in TOPICS:
        result.expect(
            f"{topic}: events from an outbox or the input", produced[topic], on_topic[topic]
        )
    for topic in TOPICS:
        streams = _first_appearance(census, topic)
        for service, rows in outboxes.items():
            by_key: dict[str, list[str]] = defaultdict(list)
            for row in rows:
                if row["topic"] == topic:
                    by_key[row["event_key"]].append(row["event_id"])
            for key, ids in by_key.items():
                wanted = set(ids)
                seen = [i for i, _ in streams.get(key.encode(), []) if i in wanted]
                if seen != ids:
                    result.problems.append(
                        f"{topic} key {key}: order on the topic {seen} is not {service}'s "
                        f"outbox order {ids}"
                    )
        for stream_key, stream in streams.items():
            first: dict[str, int] = {}
            for index, (_, kind) in enumerate(stream):
                first.setdefault(kind, index)
            for before, after in CAUSAL:
                if after in first and (before not in first or first[before] > first[after]):
                    result.problems.append(
                        f"{topic} key {stream_key!r}: {after} without an earlier {before}"
                    )


def _first_appearance(census: Census, topic: str) -> dict[bytes | None, list[tuple[str, str]]]:
    """Per key, (event id, event type) in the order each id first appeared."""
    streams: dict[bytes | None, list[tuple[str, str]]] = {}
    seen: set[str] = set()
    for key, events in census.by_key(topic).items():
        stream = streams.setdefault(key, [])
        for event in events:
            if event.envelope.id not in seen:
                seen.add(event.envelope.id)
                stream.append((event.envelope.id, event.envelope.event_name))
    return streams


def _once_per(result: Reconciliation, census: Census, kind: str, field_: str) -> set[str]:
    """The *field_* values of the *kind* events; each must have exactly one event id."""
    values = [str(data[field_]) for data in _distinct(census, kind).values()]
    twice = sorted(v for v, n in Counter(values).items() if n > 1)
    if twice:
        result.problems.append(f"{kind}: {len(twice)} announced twice, e.g. {twice[:3]}")
    return set(values)


def _stores(
    result: Reconciliation, census: Census, rows: dict[str, list[dict[str, Any]]], inp: Input
) -> None:
    """Each store holds exactly what the input and the announced events imply."""
    joined = set(inp.joined)
    result.expect(
        "matching participants", joined, [r["participant_id"] for r in rows["participants"]]
    )
    result.expect(
        "ParticipantJoined events",
        set(inp.join_event_ids),
        set(_distinct(census, "ParticipantJoined")),
    )
    pairs = rows["pairs"]
    proposed = _once_per(result, census, "PairProposed", "pair_id")
    result.expect("matching pairs (proposed once each)", proposed, [r["pair_id"] for r in pairs])
    formed_rows = [r["pair_id"] for r in pairs if r["formed_at"] is not None]
    result.expect("pairs formed (both accepted)", inp.accepted, formed_rows)
    formed = _once_per(result, census, "PairFormed", "pair_id")
    result.expect("PairFormed events", inp.accepted, formed)
    mentees = Counter(r["mentee_id"] for r in pairs if r["formed_at"] is not None)
    if any(n > 1 for n in mentees.values()):
        result.problems.append("a mentee is in two formed pairs")
    result.expect("sessions pairs", inp.accepted, [r["pair_id"] for r in rows["session_pairs"]])
    result.expect("feedback pairs", inp.accepted, [r["pair_id"] for r in rows["feedback_pairs"]])
    sessions = rows["sessions"]
    scheduled = _once_per(result, census, "SessionScheduled", "session_id")
    result.expect("sessions (scheduled once each)", scheduled, [r["session_id"] for r in sessions])
    held = [r["session_id"] for r in sessions if r["status"] == "held"]
    result.expect("sessions held", inp.held, held)
    result.expect(
        "SessionHeld events", inp.held, _once_per(result, census, "SessionHeld", "session_id")
    )
    missed = [r["session_id"] for r in sessions if r["status"] == "missed"]
    result.expect("sessions missed", inp.missed, missed)
    result.expect(
        "SessionMissed events", inp.missed, _once_per(result, census, "SessionMissed", "session_id")
    )
    requests = rows["requests"]
    requested = _once_per(result, census, "FeedbackRequested", "request_id")
    result.expect(
        "feedback requests (requested once each)", requested, [r["request_id"] for r in requests]
    )
    submitted = [r["request_id"] for r in requests if r["status"] == "submitted"]
    result.expect("feedback submitted", inp.answered, submitted)
    result.expect(
        "FeedbackSubmitted events",
        inp.answered,
        _once_per(result, census, "FeedbackSubmitted", "request_id"),
    )
    result.effects |= {
        "participants": len(rows["participants"]),
        "pairs proposed": len(pairs),
        "pairs formed": len(formed_rows),
        "sessions": len(sessions),
        "held": len(held),
        "missed": len(missed),
        "feedback requests": len(requests),
        "feedback submitted": len(submitted),
    }


def _notifications(
    result: Reconciliation,
    census: Census,
    deliveries: list[dict[str, Any]],
    inp: Input,
    mail_file: Path,
) -> None:
    """Each notifying event planned its deliveries once; sent ones reached the sink once."""
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for delivery in deliveries:
        by_source[delivery["source_key"]].append(delivery)
    all_ids = {
        logged.event.envelope.id
        for partitions in census.events.values()
        for events in partitions.values()
        for logged in events
    }
    for kind in NOTIFYING:
        for event_id, data in _distinct(census, kind).items():
            planned = by_source.get(event_id, [])
            if not planned:
                result.problems.append(f"{kind} {event_id}: no notification planned")
                continue
            recipients = [d["recipient_id"] for d in planned]
            if kind in PAIR_NOTICES:
                people = {str(data["mentor_id"]), str(data["mentee_id"])}
                result.expect(f"{kind} {event_id} recipients", people, recipients)
            elif kind == "FeedbackRequested":
                result.expect(
                    f"{kind} {event_id} recipients", {str(data["participant_id"])}, recipients
                )
    for delivery in deliveries:
        source = delivery["source_key"]
        if ":" not in source and source not in all_ids:
            result.problems.append(f"delivery {delivery['delivery_id']}: unknown event {source}")
    assert inp.final_clock is not None
    sent = [d for d in deliveries if d["status"] == "sent"]
    late = [d for d in deliveries if d["status"] == "pending" and d["due_at"] > inp.final_clock]
    stuck = [
        (d["delivery_id"], d["status"], d["kind"])
        for d in deliveries
        if d["status"] not in ("sent", "cancelled") and d not in late
    ]
    if stuck:
        result.problems.append(f"{len(stuck)} deliveries neither sent nor due later: {stuck[:3]}")
    result.unsent_later = len(late)
    result.expect(
        "NotificationSent events",
        {d["delivery_id"] for d in sent},
        _once_per(result, census, "NotificationSent", "notification_id"),
    )
    mails = [
        str(m["message_id"]).strip("<>").split("@")[0] for m in read_mailbox(mail_file).messages
    ]
    counts = Counter(mails)
    result.mail_resends = sum(n - 1 for n in counts.values())
    result.expect("mails by Message-ID", {str(d["message_id"]) for d in sent}, set(counts))
    result.effects |= {
        "deliveries": len(deliveries),
        "sent": len(sent),
        "mails": len(counts),
    }
