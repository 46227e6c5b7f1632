"""``python -m services.matching``: run the matching service."""

from services.matching.entrypoints.main import main

main()
