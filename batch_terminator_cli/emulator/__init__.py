"""The embedded AWS emulator: moto, extended where it falls short for AWS Batch.

Everything that makes moto behave like Batch for this product lives in this package, so tests,
the demo, `batch-terminator local` and the benchmarks exercise one emulator, not per-test fakes.
By default it is as unkind as Batch (see `Behaviour`); `BatchControl.truth` and
`BatchControl.terminations` tell what really happened.

It is event-driven: Batch publishes its events to moto's EventBridge, whose rules route them
(`batch_events.py`, `eventbridge.py`); `scheduler.fire_due` runs EventBridge Scheduler's
one-time schedules; `BatchControl.advance` lets time pass without sleeping (`clock.py`).
"""

from batch_terminator_cli.emulator.behaviour import Behaviour
from batch_terminator_cli.emulator.control import BatchControl
from batch_terminator_cli.emulator.responses import install
from batch_terminator_cli.emulator.truth import JobTruth, StatusEntry, TerminationEvent

__all__ = [
    "BatchControl",
    "Behaviour",
    "JobTruth",
    "StatusEntry",
    "TerminationEvent",
    "install",
]
