"""The service's process settings: the garbage collector tuned for batches."""

from __future__ import annotations

import gc

from services.notifications.__main__ import GC_THRESHOLDS, tune_garbage_collector


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
