"""The calendar feed token check answers 401/403, never a crash, whatever the token."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from services.sessions.entrypoints.identity import check_feed_token, feed_token


@pytest.mark.parametrize("token", ["tökén", "\udc80", "0" * 64])
def test_a_wrong_token_is_refused_with_403(token: str) -> None:
    """Non-ASCII tokens made hmac.compare_digest raise TypeError (a 500): found by fuzzing."""
    with pytest.raises(HTTPException) as refused:
        check_feed_token("feed-secret", "emp-1", token)
    assert refused.value.status_code == 403


def test_no_token_is_401_and_the_right_one_opens_the_feed() -> None:
    with pytest.raises(HTTPException) as missing:
        check_feed_token("feed-secret", "emp-1", None)
    assert missing.value.status_code == 401
    check_feed_token("feed-secret", "emp-1", feed_token("feed-secret", "emp-1"))
