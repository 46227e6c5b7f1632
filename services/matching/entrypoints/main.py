"""Process entry point: ``python -m services.matching`` runs the matching service."""

from __future__ import annotations

import asyncio

from servicekit.runtime import run_service
from servicekit.settings import load_settings
from services.matching.bootstrap import DEFINITION, NAME
from services.matching.settings import MatchingSettings


def main() -> None:
    """Run the service with settings from the environment until SIGTERM or SIGINT."""
    asyncio.run(run_service(DEFINITION, load_settings(NAME, MatchingSettings)))
