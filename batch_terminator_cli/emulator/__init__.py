"""The embedded AWS emulator: moto, extended where it falls short for AWS Batch.

Everything that makes moto behave like Batch for this product lives in this package, so tests,
the demo, `batch-terminator local` and the benchmarks exercise one emulator, not per-test fakes.
"""

from batch_terminator_cli.emulator.batch import BatchControl, install

__all__ = ["BatchControl", "install"]
