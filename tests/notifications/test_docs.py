"""docs/notifications.md documents every setting of the service."""

from __future__ import annotations

from pathlib import Path

from servicekit.settings import ServiceSettings
from services.notifications.settings import NotificationsSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def test_every_notifications_setting_is_in_the_settings_table() -> None:
    text = DOC.read_text()
    own = set(NotificationsSettings.model_fields) - set(ServiceSettings.model_fields)
    missing = sorted(f for f in own if f"_{f.upper()}`" not in text)
    assert own and missing == []
