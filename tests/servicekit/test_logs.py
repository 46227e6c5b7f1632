"""Logs are JSON lines carrying the service and the bound correlation id."""

import json

import pytest

from servicekit.logs import bound, configure_logging, get_logger


def test_log_lines_are_json_with_bound_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="matching", level="INFO")
    log = get_logger("test")
    with bound(correlation_id="corr-1", event_id="evt-9"):
        log.info("pair_proposed", pair_id="pair-7")
    log.info("after")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    inside, after = lines[-2], lines[-1]
    assert inside["event"] == "pair_proposed" and inside["pair_id"] == "pair-7"
    assert inside["correlation_id"] == "corr-1" and inside["service"] == "matching"
    assert inside["level"] == "info" and "timestamp" in inside
    assert "correlation_id" not in after
