"""Docker HEALTHCHECK: exit 0 when the running service's ``/healthz`` answers 200.

A health check runs as its own process with the image's environment, so it reads which
service runs from PID 1's command line (``python -m services.<name>``, exec'd by the entry
point) and uses that service's ``UPWARD_<NAME>_HTTP_PORT`` (default 8000), as in
servicekit/settings.py. Only the standard library.
"""

import os
import sys
import urllib.request
from pathlib import Path


def service_name(cmdline: Path) -> str:
    """``matching`` for ``python -m services.matching``; ``welcome`` for the example."""
    argv = cmdline.read_bytes().decode().split("\0")
    module = argv[argv.index("-m") + 1] if "-m" in argv else ""
    return "welcome" if module == "examples.welcome_service" else module.rpartition(".")[2]


def main(cmdline: Path = Path("/proc/1/cmdline")) -> int:
    """Probe ``/healthz`` on the port of the service whose command line is ``cmdline``."""
    port = os.environ.get(f"UPWARD_{service_name(cmdline).upper()}_HTTP_PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
