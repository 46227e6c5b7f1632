"""Dead letters say why and where from, and keep the original headers."""

from servicekit.dead_letters import RawRecord, dead_letter_headers, replayed_for_another_group


def test_headers_carry_reason_and_origin() -> None:
    record = RawRecord("t.upward.pairs", 2, 41, b"k", b"{", (("traceparent", b"00-x"),))
    headers = dict(dead_letter_headers(record, reason="invalid_json", detail="line 1", group="g"))
    assert headers["dlq.reason"] == b"invalid_json"
    assert headers["dlq.original.topic"] == b"t.upward.pairs"
    assert headers["dlq.original.partition"] == b"2"
    assert headers["dlq.original.offset"] == b"41"
    assert headers["dlq.consumer.group"] == b"g"
    assert headers["traceparent"] == b"00-x"


def test_previous_dead_letter_headers_are_replaced_on_a_second_failure() -> None:
    record = RawRecord("t", 0, 1, None, b"x", (("dlq.reason", b"old"),))
    headers = dead_letter_headers(record, reason="new", detail="", group="g")
    assert [v for k, v in headers if k == "dlq.reason"] == [b"new"]


def test_a_replayed_dead_letter_is_for_the_group_that_dead_lettered_it() -> None:
    replayed = RawRecord("t", 0, 1, b"k", b"{}", (("dlq.replay.group", b"upward-matching"),))
    assert not replayed_for_another_group(replayed, "upward-matching")
    assert replayed_for_another_group(replayed, "upward-sessions")
    assert not replayed_for_another_group(RawRecord("t", 0, 2, b"k", b"{}"), "upward-sessions")
