"""Docker HEALTHCHECK: exit 0 when the running service's ``/healthz`` answers 200.

The entry point exports ``UPWARD_SERVICE``; the port is the service's
``UPWARD_<SERVICE>_HTTP_PORT`` (default 8000), as in servicekit/settings.py.
Only the standard library: it runs once per interval inside the container.
"""

import os
import sys
import urllib.request

service = os.environ.get("UPWARD_SERVICE", "")
port = os.environ.get(f"UPWARD_{service.upper()}_HTTP_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
