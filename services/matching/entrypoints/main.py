"""Process entry point: ``python -m services.matching`` runs the matching service."""

from __future__ import annotations

from servicekit.runtime import serve
from servicekit.settings import load_settings
from services.matching.bootstrap import DEFINITION, NAME
from services.matching.settings import MatchingSettings


def main() -> None:
    """Run the service with settings from the environment until SIGTERM or SIGINT."""
    serve(DEFINITION, load_settings(NAME, MatchingSettings))
