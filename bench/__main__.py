"""Run every benchmark: `python -m bench` (or `make bench`); `--quick` for a smoke run.

Each section prints its details; the run ends with one table of every headline figure next
to its naive baseline, both measured in the same run (`bench/summary.py`), then the chaos
accounting's properties. `--seed N` replays a chaos run (its seed is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random

from rich.console import Console

from batch_terminator_cli.emulator import chaos
from bench import (
    brake_scale,
    deadline_events,
    import_time,
    memory,
    policy_scale,
    summary,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--seed", type=int, default=None, help="the chaos run's seed")
    args = parser.parse_args()
    quick = args.quick
    console = Console(width=170)
    table = summary.Summary()

    deadline_events.run(console, events=500 if quick else 10_000)
    mine, loop = brake_scale.run(console, jobs=1_000 if quick else 10_000)
    summary.brake(table, mine, loop)
    rows = policy_scale.run(console, sizes=(2_000,) if quick else (10_000, 100_000))
    summary.sweep_scale(table, rows[-2:])
    timings = import_time.run(console, repeats=3 if quick else 7)
    summary.imports(table, timings)
    summary.memory_rows(table, memory.run(console))

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    console.print(f"chaos run: seed {seed}")
    result = chaos.run(chaos.ChaosSettings(seed=seed, requests=120 if quick else 10_000))
    chaos.report(console, result)

    with contextlib.redirect_stdout(io.StringIO()):  # the functions' EMF lines
        summary.calls_per_job(table, (100,) if quick else (1_000, 10_000))
    summary.chaos(table, result)
    table.print(console)


if __name__ == "__main__":
    main()
