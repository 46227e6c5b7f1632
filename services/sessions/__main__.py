"""``python -m services.sessions``: run the sessions service until SIGTERM."""

from __future__ import annotations

import asyncio

from servicekit.runtime import run_service
from services.sessions.bootstrap import build_definition
from services.sessions.settings import load_sessions_settings


def main() -> None:
    """Read the settings from the environment and run the service."""
    settings = load_sessions_settings()
    asyncio.run(run_service(build_definition(settings), settings))


if __name__ == "__main__":
    main()
