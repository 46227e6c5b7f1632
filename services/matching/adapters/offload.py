"""Big pure steps run in a worker thread, so one 10k-pair run does not stall the API.

Decoding a stored plan, building thousands of pairs and their events, turning a pool
of 20k profiles into candidates: each is pure Python that would hold the event loop
for a noticeable moment. Small inputs stay on the loop (a thread costs more than they do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

BIG = 500
"""Items from which a step is moved off the event loop (and events are emitted in chunks)."""

T = TypeVar("T")


async def off_loop(step: Callable[[], T], *, size: int) -> T:
    """``step()`` in a worker thread when ``size`` items make it big, else right here."""
    if size < BIG:
        return step()
    return await asyncio.to_thread(step)
