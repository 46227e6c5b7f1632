"""Process entry point: ``python -m services.notifications``."""

from __future__ import annotations

import asyncio
import gc

from servicekit.runtime import run_service
from servicekit.settings import load_settings
from services.notifications.bootstrap import definition
from services.notifications.settings import NotificationsSettings

GC_THRESHOLDS = (50_000, 20, 20)
"""The collector's generation thresholds in this process (CPython's default: 700, 10, 10).

A consumer batch keeps its events, notices and deliveries alive until it commits (tens of
thousands of objects). With the default, young collections run every 700 allocations,
find them all alive, and promote them, so full collections of the whole heap (100 ms and
more) follow every few batches: up to a third of the service's CPU under a backlog, and
the long pauses at the top of its latency. At 50,000 a batch's objects are mostly freed
by reference counting before a collection runs; cycles are still collected."""


def tune_garbage_collector() -> None:
    """Freeze what start-up imported (never collected, never scanned again) and raise the
    collection thresholds to :data:`GC_THRESHOLDS`."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main() -> None:
    """Read the settings from the environment and run the service until SIGTERM."""
    settings = load_settings("notifications", base=NotificationsSettings)
    assert isinstance(settings, NotificationsSettings)
    tune_garbage_collector()
    asyncio.run(run_service(definition(settings), settings))


if __name__ == "__main__":
    main()
