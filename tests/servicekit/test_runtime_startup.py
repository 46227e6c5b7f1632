"""A service waits for its database within a limit, then fails clearly."""

import time
from pathlib import Path

import pytest

from servicekit.runtime import ServiceDefinition, ServiceRuntime
from servicekit.settings import settings_for
from upward.stack import free_ports


async def test_start_gives_up_after_the_startup_timeout(tmp_path: Path) -> None:
    port = free_ports(1)[0]  # nothing listens there
    settings = settings_for("probe")(
        service_name="probe",
        database_url=f"postgresql://postgres@127.0.0.1:{port}/nothing",
        startup_timeout_s=1.0,
        retry_initial_backoff_s=0.1,
        retry_max_backoff_s=0.2,
    )
    definition = ServiceDefinition(
        name="probe", version="0", subscribes=(), publishes=(), handlers={}, migrations=tmp_path
    )
    started = time.monotonic()
    with pytest.raises(OSError):
        await ServiceRuntime(definition, settings).start()
    assert time.monotonic() - started >= 1.0  # it waited and retried before giving up
