"""``python -m services.feedback``: run the feedback service until SIGTERM."""

from __future__ import annotations

import asyncio

from servicekit.runtime import run_service
from servicekit.settings import load_settings
from services.feedback.bootstrap import DEFINITION, FeedbackServiceSettings


def main() -> None:
    """Load the settings from the environment and run the service."""
    asyncio.run(run_service(DEFINITION, load_settings("feedback", FeedbackServiceSettings)))


if __name__ == "__main__":
    main()
