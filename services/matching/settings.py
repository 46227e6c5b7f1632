"""Settings of the matching service (``UPWARD_MATCHING_*`` on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from servicekit.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    """The matching service's own settings."""

    continuous_interval_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How often continuous programs match new joiners and rematches at the latest"
            " (a pool change wakes the timer sooner: continuous_debounce_s)"
        ),
    )
    continuous_debounce_s: float = Field(
        default=0.05,
        ge=0,
        description=(
            "How long after a committed pool change (a join, a freed place) the"
            " continuous-matching timer runs: the changes of a burst make one micro-batch"
        ),
    )
    expiry_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often proposals past their acceptance deadline are declined",
    )
