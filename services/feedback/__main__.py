"""``python -m services.feedback``: run the feedback service until SIGTERM."""

from __future__ import annotations

from servicekit.runtime import serve
from servicekit.settings import load_settings
from services.feedback.bootstrap import DEFINITION, FeedbackServiceSettings


def main() -> None:
    """Load the settings from the environment and run the service."""
    serve(DEFINITION, load_settings("feedback", FeedbackServiceSettings))


if __name__ == "__main__":
    main()
