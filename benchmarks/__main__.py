"""Entry point of ``make bench``."""

from benchmarks.kit_pipeline import main

if __name__ == "__main__":
    main()
