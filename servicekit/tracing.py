"""W3C trace context (``traceparent``) carried from an event to the events it causes.

Each handled event opens a child span of the trace it arrived with; every event
the handler emits carries that span as its parent, so a trace follows a flow
across services. A message without trace context starts a new trace.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_SAMPLED = "01"


@dataclass(frozen=True)
class TraceContext:
    """A trace id and the id of the current span."""

    trace_id: str
    span_id: str
    flags: str = _SAMPLED

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` header value of this span."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceContext | None:
    """Parse a ``traceparent`` value; ``None`` when absent or malformed."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return TraceContext(match.group(1), match.group(2), match.group(3))


def child_span(parent: str | None) -> TraceContext:
    """A new span under ``parent``, or the root span of a new trace."""
    context = parse_traceparent(parent)
    span_id = _random_hex(64)
    if context is None:
        return TraceContext(_random_hex(128), span_id)
    return TraceContext(context.trace_id, span_id, context.flags)


def _random_hex(bits: int) -> str:
    """A non-zero random id of ``bits`` bits in lowercase hex.

    Trace and span ids need uniqueness, not secrecy: like OpenTelemetry's id generator,
    this uses ``random.getrandbits`` (reseeded in forked children) rather than a system
    call for every id.
    """
    value = 0
    while value == 0:
        value = random.getrandbits(bits)
    return f"{value:0{bits // 4}x}"
