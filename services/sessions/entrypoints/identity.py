"""Calendar feed tokens: how a calendar client proves it may read a participant's feed.

Every other route authenticates its caller with a bearer JWT (``servicekit.auth``).
Calendar clients cannot send headers, so a participant's ``.ics`` feed URL carries a
token instead: the HMAC-SHA256 of the participant id under the configured
``calendar_feed_secret``. Changing the secret revokes every feed URL at once.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException


def feed_token(secret: str, participant_id: str) -> str:
    """The calendar feed token of ``participant_id``."""
    return hmac.new(secret.encode(), participant_id.encode(), hashlib.sha256).hexdigest()


def check_feed_token(secret: str, participant_id: str, token: str | None) -> None:
    """401 without a token, 403 with a wrong one."""
    if not token:
        raise HTTPException(401, "the calendar feed needs its token: ?token=...")
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    expected = feed_token(secret, participant_id).encode()
    if not hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass")):
        raise HTTPException(403, "this token does not open this participant's calendar feed")
