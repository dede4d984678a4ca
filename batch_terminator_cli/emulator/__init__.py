"""The embedded AWS emulator: moto, extended where it falls short for AWS Batch.

Everything that makes moto behave like Batch for this product lives in this package, so tests,
the demo, `batch-terminator local` and the benchmarks exercise one emulator, not per-test fakes.
By default it is as unkind as Batch (see `Behaviour`); `BatchControl.truth` and
`BatchControl.terminations` tell what really happened.
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
