"""Trace context: a handled event's children stay in its trace."""

from servicekit.tracing import child_span, parse_traceparent

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_child_span_keeps_the_trace_and_makes_a_new_span() -> None:
    child = child_span(PARENT)
    assert child.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert child.span_id != "00f067aa0ba902b7"
    assert parse_traceparent(child.traceparent) == child


def test_missing_or_malformed_parent_starts_a_new_trace() -> None:
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
        assert parse_traceparent(bad) is None
        assert len(child_span(bad).trace_id) == 32


def test_two_roots_are_different_traces() -> None:
    assert child_span(None).trace_id != child_span(None).trace_id
