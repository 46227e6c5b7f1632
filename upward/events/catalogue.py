"""Names the tools accept: catalogue topics (``upward.pairs`` or ``pairs``) and event types."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.registry import EVENTS, TOPIC_NAMES, dlq_topic

SHORT_PREFIX = "upward."


class UnknownName(ValueError):
    """A topic or event type name that is not in the catalogue; lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind, self.name, self.valid = kind, name, tuple(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")


def resolve_topics(names: Iterable[str] | None) -> tuple[str, ...]:
    """Logical topic names for ``names`` (all catalogue topics when none are given).

    ``pairs`` is accepted for ``upward.pairs``; order follows the catalogue.
    """
    wanted = list(names or ())
    if not wanted:
        return TOPIC_NAMES
    chosen: set[str] = set()
    for name in wanted:
        full = name if name.startswith(SHORT_PREFIX) else SHORT_PREFIX + name
        if full not in TOPIC_NAMES:
            raise UnknownName("topic", name, TOPIC_NAMES)
        chosen.add(full)
    return tuple(topic for topic in TOPIC_NAMES if topic in chosen)


def resolve_types(names: Iterable[str] | None) -> frozenset[str]:
    """Event type names for ``names`` (empty: no filter); ``upward.PairFormed`` is accepted."""
    chosen: set[str] = set()
    for name in names or ():
        short = name.removeprefix(SHORT_PREFIX)
        if short not in EVENTS:
            raise UnknownName("event type", name, sorted(EVENTS))
        chosen.add(short)
    return frozenset(chosen)


def physical(prefix: str, topic: str) -> str:
    """The physical name of logical ``topic`` under ``prefix``."""
    return f"{prefix}{topic}"


def physical_dlq(prefix: str, topic: str) -> str:
    """The physical dead-letter topic of logical ``topic`` under ``prefix``."""
    return dlq_topic(physical(prefix, topic))
