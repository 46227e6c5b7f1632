"""docs/events.md stays in sync with the registry."""

from __future__ import annotations

from schemas.generate import PACKAGE_DIR, catalogue_markdown
from schemas.registry import EVENTS

DOC = PACKAGE_DIR.parent / "docs" / "events.md"


def test_catalogue_tables_match_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- catalogue:start -->\n") + len("<!-- catalogue:start -->\n")
    end = text.index("<!-- catalogue:end -->")
    assert text[start:end] == catalogue_markdown(), (
        "docs/events.md is stale: paste schemas.generate.catalogue_markdown() between the "
        "catalogue markers"
    )


def test_every_event_and_dlq_header_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in EVENTS:
        assert f"| {name} |" in text
    for header in ("dlq.reason", "dlq.detail", "dlq.original.topic", "dlq.original.partition"):
        assert f"`{header}`" in text
    for header in ("dlq.original.offset", "dlq.consumer.group", "dlq.failed.at"):
        assert f"`{header}`" in text
