"""py-spy's raw output summarised: shares by innermost frame and by the service's own code."""

from __future__ import annotations

import pytest

from benchmarks.profiles import ROOT, Share, describe, summarise

COLLAPSED = "\n".join(
    [
        f"main ({ROOT}/services/x/__main__.py:9);handle ({ROOT}/services/x/handlers.py:12);"
        "write (/usr/lib/python3.11/asyncio/selector_events.py:1) 6",
        f"main ({ROOT}/services/x/__main__.py:9);_score ({ROOT}/services/x/domain/slots.py:3) 3",
        "run (/venv/lib/python3.11/site-packages/faust/streams.py:7);"
        "main (/elsewhere/upward/services/manager.py:1) 1",
        f"main ({ROOT}/services/x/__main__.py:9);"
        "emit (/venv/lib/python3.11/site-packages/faust/streams.py:8) 0",
        "garbage line without a count",
    ]
)


def test_innermost_frames_and_own_code_are_ranked_by_share() -> None:
    shares = summarise(COLLAPSED)
    leaf = [s for s in shares if s.kind == "leaf"]
    own = [s for s in shares if s.kind == "service"]
    assert leaf[0] == Share("leaf", "write (asyncio/selector_events.py)", pytest.approx(0.6))
    assert [s.share for s in leaf] == pytest.approx([0.6, 0.3, 0.1, 0.0])
    assert own[0].function.startswith("handle (") and own[0].function.endswith("handlers.py)")
    assert Share("service", "(outside services/)", pytest.approx(0.1)) in own
    assert leaf[2].function == "main (/elsewhere/upward/services/manager.py)"
    assert leaf[3].function == "emit (faust/streams.py)" and leaf[3].share == 0
    text = describe(shares)
    assert "60%" in text and "In the service's code" in text


def test_an_empty_profile_has_no_shares() -> None:
    assert summarise("") == []
