"""Erasure helpers every service uses on ParticipantForgotten: redaction and the outbox.

A service erases a forgotten person in its own tables (its repository knows them) and,
in the same transaction, in its outbox with :func:`erase_from_outbox`: the events it
published that mention the person are deleted (they were sent; keeping them until
retention would keep the data), and the events still waiting keep their place in the
queue with the person's name, e-mail and other texts replaced, so publishing is never
blocked. :func:`redact` does the replacing, also inside iCalendar text, whose long lines
may be folded in the middle of a name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from typing import Any

from servicekit.db import Connection

ERASED = "(erased)"
"""What a forgotten person's name or free text becomes."""
ERASED_EMAIL = "erased@erased.invalid"
"""What a forgotten person's e-mail address becomes (still an address, so events stay valid)."""

_FOLD = ("\r\n ", "\r\n\t", "\n ", "\n\t")

_DELETE_PUBLISHED = """
DELETE FROM kit_outbox
WHERE published_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle) WHERE position(needle IN payload) > 0)
"""
_WAITING = """
SELECT seq, payload FROM kit_outbox
WHERE published_at IS NULL
  AND EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle) WHERE position(needle IN payload) > 0)
ORDER BY seq
FOR UPDATE
"""


def unfold(text: str) -> str:
    """``text`` with iCalendar line folding (RFC 5545 3.1) undone."""
    for fold in _FOLD:
        text = text.replace(fold, "")
    return text


def personal_texts(*, name: str | None, email: str | None) -> set[str]:
    """A person's name and e-mail address, exactly as events and stores carry them."""
    return {text for text in (name, email) if text}


def with_name_words(texts: Collection[str]) -> set[str]:
    """``texts`` and each word (3 letters or more) of the names among them.

    Free text written by others names people by their first name as often as by their
    full name; replacing the words of a name errs on the side of erasing too much. Only
    for free text: in events, words of a name could hit an enum value or a topic key.
    """
    words = {w for text in texts if "@" not in text for w in text.split() if len(w) >= 3}
    return set(texts) | words


def redact(text: str, personal: Collection[str]) -> str:
    """``text`` with every occurrence of a ``personal`` text replaced by a placeholder.

    Matching ignores case and stops at word boundaries ("Sam" is not erased from
    "Samsung"). E-mail addresses become :data:`ERASED_EMAIL`, anything else
    :data:`ERASED`. Folded iCalendar lines that mention the person are unfolded.
    """
    wanted = sorted({p for p in personal if p}, key=len, reverse=True)
    if not wanted:
        return text
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(re.escape(p) for p in wanted) + r")(?!\w)", re.IGNORECASE
    )
    unfolded = unfold(text)
    if unfolded != text and pattern.search(unfolded):
        text = unfolded
    return pattern.sub(lambda m: ERASED_EMAIL if "@" in m.group(0) else ERASED, text)


def redact_json(value: Any, personal: Collection[str]) -> Any:
    """A JSON value with :func:`redact` applied to every string in it (keys kept)."""
    if isinstance(value, str):
        return redact(value, personal)
    if isinstance(value, list):
        return [redact_json(item, personal) for item in value]
    if isinstance(value, dict):
        return {key: redact_json(item, personal) for key, item in value.items()}
    return value


async def redact_texts(
    conn: Connection, *, select: str, args: Sequence[object], update: str, personal: set[str]
) -> int:
    """Take the person (``personal``: their name, its words and their address) out of free
    text: ``select`` (with ``args``) yields rows of (key, text), locked; ``update`` stores a
    changed text (``$1`` the key, ``$2`` the text). The number of texts changed."""
    words = with_name_words(personal)
    changed = 0
    for key, text in await conn.fetch(select, *args):
        cleaned = redact(text, words)
        if cleaned != text:
            await conn.execute(update, key, cleaned)
            changed += 1
    return changed


async def erase_from_outbox(
    conn: Connection, *, participant_id: str, personal: Collection[str]
) -> int:
    """Erase a forgotten person from the outbox, in the caller's transaction; rows touched.

    Published rows that mention the person's id or one of the ``personal`` texts (their
    exact name and e-mail, see :func:`personal_texts`) are deleted. Rows not yet
    published are rewritten with :func:`redact_json` (they are still published, in
    order); their ids stay, so the event still reaches its key.
    """
    texts = sorted({p for p in personal if p})
    needles = [_needle(json.dumps(participant_id, ensure_ascii=False))]
    needles += [_needle(json.dumps(text, ensure_ascii=False)[1:-1]) for text in texts]
    status = await conn.execute(_DELETE_PUBLISHED, needles)
    touched = int(status.rsplit(" ", 1)[-1])
    if not texts:
        return touched
    for row in await conn.fetch(_WAITING, needles):
        document = json.loads(row["payload"])
        redacted = redact_json(document, texts)
        if redacted != document:
            payload = json.dumps(redacted, ensure_ascii=False, separators=(",", ":")).encode()
            await conn.execute(
                "UPDATE kit_outbox SET payload = $2 WHERE seq = $1", row["seq"], payload
            )
            touched += 1
    return touched


def _needle(text: str) -> bytes:
    return text.encode("utf-8")
