"""The reconciliation itself, on hand-made topics and outboxes: it must see a lost event, an
effect twice, a key out of order and a cause after its effect, and accept wire repeats."""

from __future__ import annotations

from typing import Any

from schemas.codec import decode, encode, new_event
from schemas.pairs import PairFormed, PairProposed
from tests.chaos.reconcile import Reconciliation, _topics
from tests.chaos.workload import Input
from upward.demo.platform import TOPICS
from upward.events.census import Census, LoggedEvent

PAIR = PairProposed.example()


def _event(kind: type[PairProposed] | type[PairFormed], event_id: str) -> LoggedEvent:
    data = kind.example().model_copy(update={"pair_id": PAIR.pair_id})
    event = decode(
        encode(new_event(data, source="/test", event_id=event_id)), key=PAIR.pair_id.encode()
    )
    return LoggedEvent(0, 0, event.envelope.subject.encode(), event)


def _census(*logged: LoggedEvent) -> Census:
    events: dict[str, dict[int, tuple[LoggedEvent, ...]]] = {topic: {} for topic in TOPICS} | {
        "upward.pairs": {0: tuple(logged)}
    }
    ids = [e.event.envelope.id for e in logged]
    twice = {i: ids.count(i) for i in ids if ids.count(i) > 1}
    return Census(
        counts={}, undecodable={}, undecodable_reasons={}, dead_letters={},
        dead_letter_reasons={}, duplicates={"upward.pairs": twice}, events=events,
    )  # fmt: skip


def _outbox(*ids: tuple[str, str]) -> dict[str, list[dict[str, Any]]]:
    rows = [
        {"seq": n, "event_id": event_id, "topic": "upward.pairs", "event_key": PAIR.pair_id,
         "event_type": kind}
        for n, (event_id, kind) in enumerate(ids)
    ]  # fmt: skip
    return {"matching": rows}


def _check(census: Census, outboxes: dict[str, list[dict[str, Any]]]) -> Reconciliation:
    result = Reconciliation()
    _topics(result, census, outboxes, Input(program_id="p"))
    return result


def test_every_outbox_event_once_in_order_with_a_wire_repeat_is_clean() -> None:
    proposed, formed = _event(PairProposed, "e-1"), _event(PairFormed, "e-2")
    result = _check(
        _census(proposed, proposed, formed), _outbox(("e-1", "PairProposed"), ("e-2", "PairFormed"))
    )
    assert result.problems == []
    assert result.wire_duplicates == {"upward.pairs": 1}


def test_a_lost_event_and_an_invented_one_are_problems() -> None:
    result = _check(_census(_event(PairProposed, "e-1"), _event(PairFormed, "e-9")),
                    _outbox(("e-1", "PairProposed"), ("e-2", "PairFormed")))  # fmt: skip
    assert any("e-2 (PairFormed) never reached" in p for p in result.problems)
    assert any("1 extra" in p and "e-9" in p for p in result.problems)


def test_a_key_out_of_outbox_order_and_an_effect_before_its_cause_are_problems() -> None:
    result = _check(_census(_event(PairFormed, "e-2"), _event(PairProposed, "e-1")),
                    _outbox(("e-1", "PairProposed"), ("e-2", "PairFormed")))  # fmt: skip
    assert any("is not matching's outbox order" in p for p in result.problems)
    assert any("PairFormed without an earlier PairProposed" in p for p in result.problems)


def test_expect_names_what_is_missing_extra_or_twice() -> None:
    result = Reconciliation()
    result.expect("sessions held", {"s-1", "s-2"}, ["s-1", "s-1", "s-3"])
    assert result.problems == [
        "sessions held: 1 twice, e.g. ['s-1']",
        "sessions held: 1 missing, e.g. ['s-2']",
        "sessions held: 1 extra, e.g. ['s-3']",
    ]
