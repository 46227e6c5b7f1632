"""Root pytest configuration: registers the shared fixture plugins.

``tests.fixtures.infra`` provides ``kafka_bootstrap``, ``postgres``,
``fresh_database_url``, ``unique_topic`` and ``unique_group`` (see its docstring);
``tests.fixtures.tokens`` bearer-token headers (``platform_admin_headers``,
``participant_headers``) and ``BearerAuth`` for schemathesis; ``tests.fixtures.mail``
``smtp_server`` (a real SMTP receiver).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `tests.fixtures` is imported as a module of the repository root. pyproject's
# `pythonpath = ["."]` (pytest ini options) does the same; this keeps plain
# `pytest` runs working without it.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.fixtures.infra", "tests.fixtures.tokens", "tests.fixtures.mail"]
