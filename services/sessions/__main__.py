"""``python -m services.sessions``: run the sessions service until SIGTERM."""

from __future__ import annotations

from servicekit.runtime import serve
from services.sessions.bootstrap import build_definition
from services.sessions.settings import load_sessions_settings


def main() -> None:
    """Read the settings from the environment and run the service."""
    settings = load_sessions_settings()
    serve(build_definition(settings), settings)


if __name__ == "__main__":
    main()
