"""A service process's collector is tuned for batches (every service's main runs ``serve``)."""

from __future__ import annotations

import gc
import inspect

import pytest

from servicekit.runtime import GC_THRESHOLDS, serve, tune_garbage_collector
from services.feedback import __main__ as feedback_main
from services.matching.entrypoints import main as matching_main
from services.notifications import __main__ as notifications_main
from services.sessions import __main__ as sessions_main


def test_start_up_is_frozen_and_young_collections_wait_for_a_batch_worth() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(
    "module", [matching_main, sessions_main, feedback_main, notifications_main]
)
def test_every_service_process_starts_through_serve(module: object) -> None:
    assert module.serve is serve  # type: ignore[attr-defined]
    assert "serve(" in inspect.getsource(module.main)  # type: ignore[attr-defined]
