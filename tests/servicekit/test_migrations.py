"""Migration files are read in order and checked before anything runs."""

from pathlib import Path

import pytest

from servicekit.db import KIT_MIGRATIONS, MigrationError, read_migrations


def test_kit_migrations_are_ordered() -> None:
    found = read_migrations("servicekit", KIT_MIGRATIONS)
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].name == "0001_outbox_inbox.sql"


def test_badly_named_or_duplicated_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "create.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNNN_description"):
        read_migrations("x", tmp_path)
    (tmp_path / "create.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 2")
    with pytest.raises(MigrationError, match="share a version"):
        read_migrations("x", tmp_path)
