"""Run every benchmark: `python -m bench` (or `make bench`)."""

from __future__ import annotations

import argparse

from rich.console import Console

from bench import (
    brake_scale,
    deadline_events,
    import_time,
    policy_calls,
    policy_scale,
    terminate_calls,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    console = Console(width=170)
    terminate_calls.run(console, jobs=200 if args.quick else 1000)
    policy_calls.run(console, jobs=200 if args.quick else 1000)
    deadline_events.run(console, events=1_000 if args.quick else 10_000)
    brake_scale.run(console, jobs=1_000 if args.quick else 10_000)
    import_time.run(console, repeats=3 if args.quick else 7)
    policy_scale.run(console, sizes=(2_000, 10_000) if args.quick else (10_000, 100_000))


if __name__ == "__main__":
    main()
