"""Entry point of ``make bench``: ``python -m benchmarks [--suite SUITE]``.

Suites: all (default), kit, matching, services, joiners.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import joiners, kit_pipeline, matching, services


def main() -> None:
    """Parse arguments and run the chosen suites (all by default)."""
    parser = argparse.ArgumentParser(
        description="Upward benchmarks; results go to docs/benchmarks.md."
    )
    parser.add_argument(
        "--suite", choices=("all", "kit", "matching", "services", "joiners"), default="all"
    )
    parser.add_argument("--events", type=int, default=5000, help="kit: events per benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every benchmark")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(matching.SIZES),
        help="matching: people per side",
    )
    parser.add_argument(
        "--no-dense", action="store_true", help="matching: skip the dense reference"
    )
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=list(joiners.RATES),
        help="joiners: joiners offered per second (one measurement per rate)",
    )
    parser.add_argument(
        "--duration", type=float, default=joiners.DURATION_S, help="joiners: seconds of load"
    )
    parser.add_argument(
        "--service-events",
        type=int,
        default=services.DEFAULT_EVENTS,
        help="services: backlog per service and round (cost growth: 1x, 4x, 16x of it)",
    )
    parser.add_argument(
        "--services",
        nargs="+",
        choices=services.SERVICES,
        default=list(services.SERVICES),
        help="services: which services to measure",
    )
    parser.add_argument(
        "--profile", action="store_true", help="services: py-spy profile of each first drain"
    )
    args = parser.parse_args()
    command = " ".join(["python -m benchmarks", *sys.argv[1:]])
    if args.suite in ("all", "kit"):
        kit_pipeline.main(args.events, args.rounds, command)
    if args.suite in ("all", "matching"):
        matching.main(tuple(args.sizes), args.rounds, dense=not args.no_dense, command=command)
    if args.suite in ("all", "services"):
        services.main(
            args.service_events, args.rounds, command,
            services=args.services, profile=args.profile,
        )  # fmt: skip
    if args.suite in ("all", "joiners"):
        joiners.main(args.rate, args.duration, command=command)


if __name__ == "__main__":
    main()
