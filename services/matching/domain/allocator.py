"""Keep freed memory for reuse while a plan runs (glibc; elsewhere a no-op).

A 10,000 x 10,000 plan makes dozens of passes over arrays of 14 million arcs, each pass
allocating temporaries of tens of megabytes. glibc serves allocations that large with a
fresh ``mmap`` and returns them to the system on ``free``, so every pass faults its
temporaries in again, page by page: on a virtual machine that alone doubles the cost of
a pass. While at least one plan runs, :func:`reusing_freed_memory` raises glibc's mmap
and trim thresholds so freed blocks stay in the heap and are reused; when the last plan
ends it sets glibc's default values back and trims the heap, so the service's resident
memory goes back down. The peak can be higher (freed blocks are kept, and fragment): with
the threaded sweep, the 10,000 x 10,000 benchmark went from 0.54 to about 0.85 GiB.

numpy also asks the kernel for transparent huge pages on every array of 4 MiB or more
(``madvise``); on reused heap memory that only costs the kernel compaction work, in
stalls of up to a few hundred milliseconds, so it is switched off for the same span
(``NUMPY_MADVISE_HUGEPAGE=0`` for the whole process does the same).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_THRESHOLD = 128 * 1024
"""glibc's default for both thresholds. Once set explicitly, glibc no longer raises the
mmap threshold by itself as large blocks are freed; with 128 KiB fixed, every large
temporary outside a plan is a fresh mapping, which only costs page faults."""
_WHILE_PLANNING = 1 << 30
_lock = threading.Lock()
_active = 0
_huge_pages_before = True


def _huge_page_switch() -> Callable[[bool], bool] | None:
    """numpy's switch for ``madvise(MADV_HUGEPAGE)`` (returns the previous setting)."""
    core = getattr(np, "_core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    return switch if callable(switch) else None


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def _set_thresholds(libc: ctypes.CDLL, value: int) -> None:
    libc.mallopt(_M_MMAP_THRESHOLD, value)
    libc.mallopt(_M_TRIM_THRESHOLD, value)


@contextmanager
def reusing_freed_memory() -> Iterator[None]:
    """Large freed blocks stay in the heap for reuse until the last plan ends."""
    global _active, _huge_pages_before
    libc, switch = _glibc(), _huge_page_switch()
    if libc is None:
        yield
        return
    with _lock:
        _active += 1
        if _active == 1:
            _set_thresholds(libc, _WHILE_PLANNING)
            _huge_pages_before = switch(False) if switch else True
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                if switch:
                    switch(_huge_pages_before)
                _set_thresholds(libc, _DEFAULT_THRESHOLD)
                libc.malloc_trim(0)
