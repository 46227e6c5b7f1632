"""Process entry point: ``python -m services.notifications``."""

from __future__ import annotations

from servicekit.runtime import serve
from servicekit.settings import load_settings
from services.notifications.bootstrap import definition
from services.notifications.settings import NotificationsSettings


def main() -> None:
    """Read the settings from the environment and run the service until SIGTERM."""
    settings = load_settings("notifications", base=NotificationsSettings)
    assert isinstance(settings, NotificationsSettings)
    serve(definition(settings), settings)


if __name__ == "__main__":
    main()
