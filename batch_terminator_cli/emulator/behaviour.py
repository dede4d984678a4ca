"""How kind the emulated Batch is: the delays and omissions of the real service, each a knob.

The default is realistic, so a test passes only if the product copes with what AWS really does;
`Behaviour.kind()` switches every knob off for tests about something else.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    """Per account and region, stored on the emulated backend (`BatchControl.configure`).

    linger_reads: a terminated job keeps its status for this many reads that return it
        (DescribeJobs or ListJobs) before it becomes FAILED. TerminateJob only asks ECS to stop
        the container (SIGTERM, then SIGKILL after the stop timeout); the job turns FAILED when
        the container has stopped:
        https://aws.amazon.com/blogs/hpc/understanding-the-aws-batch-termination-process/
    describe_lag_reads, describe_lag_seconds: a job created less than `describe_lag_seconds`
        ago is left out of the first `describe_lag_reads` DescribeJobs calls that name it.
        DescribeJobs is eventually consistent right after SubmitJob: clients retry an empty
        answer (https://github.com/Netflix/metaflow/pull/543,
        https://github.com/apache/airflow/pull/37552).
    omit_job_definition: ListJobs leaves `jobDefinition` out of some summaries, although
        JobSummary documents it; the Batch team acknowledged it
        (https://github.com/aws/aws-sdk/issues/588, https://github.com/aws/aws-sdk-js/issues/4193).
        Which jobs is decided by `omits_job_definition`, deterministically.
    """

    linger_reads: int = 2
    describe_lag_reads: int = 1
    describe_lag_seconds: float = 10.0
    omit_job_definition: bool = True

    @classmethod
    def kind(cls) -> Behaviour:
        """Everything off: terminated jobs fail at once, DescribeJobs sees every job, summaries
        are complete."""
        return cls(
            linger_reads=0,
            describe_lag_reads=0,
            describe_lag_seconds=0.0,
            omit_job_definition=False,
        )

    def omits_job_definition(self, job_id: str) -> bool:
        """Whether ListJobs leaves `jobDefinition` out of this job's summary (about half of them:
        the parity of a checksum of the id, so the same job is always treated the same way)."""
        return self.omit_job_definition and zlib.crc32(job_id.encode()) % 2 == 1
