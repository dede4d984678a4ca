"""The policies file (`policies.yaml`) as people write it: validated with every error named, and
the source of its JSON Schema. The CLI and the synth validate with these models; the functions
read the validated, normalized document into `models.policies` without pydantic."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from batch_terminator.contract import DEFAULT_PROTECT_TAG
from batch_terminator.logic.policy_rules import (
    MAX_PER_RUN_LIMIT,
    check_names,
    check_policy,
    check_protect_tag,
    check_sweep_interval,
    check_trigger,
    check_when,
)
from batch_terminator.models.base import (
    ActiveStatusList,
    ContractModel,
    Duration,
    NonEmptyStr,
    PolicyName,
)

Patterns = Annotated[list[NonEmptyStr], Field(min_length=1)]


class Settings(ContractModel):
    """Global switches that every path obeys."""

    dry_run: StrictBool = Field(
        default=False, description="Decide and log, terminate nothing (every path)."
    )
    protect_tag: NonEmptyStr = Field(
        default=DEFAULT_PROTECT_TAG,
        description="A job carrying this tag key is never touched, by any path.",
    )
    job_queues: Patterns = Field(
        default_factory=lambda: ["*"],
        description=(
            "Queues the system may touch at all: names or ARNs, either may be a glob. A pattern "
            "that starts with arn: matches queue ARNs; any other pattern matches queue names."
        ),
    )
    sweep_interval: Duration = Field(
        default=timedelta(minutes=15), description="How often the sweeper evaluates policies."
    )
    max_runtime_tag: StrictBool = Field(
        default=True,
        description=(
            "Honour each job's own batch-terminator:max-runtime tag: a RUNNING job is terminated "
            "once it has run that long in its current attempt. Reading tags costs one "
            "DescribeJobs call per 100 RUNNING jobs per sweep; false saves those calls."
        ),
    )

    @model_validator(mode="after")
    def _interval_in_range(self) -> Settings:
        check_sweep_interval(self.sweep_interval)
        check_protect_tag(self.protect_tag)
        return self


class Match(ContractModel):
    """Which jobs a policy applies to; every key given must match."""

    job_queues: Patterns | None = Field(
        default=None,
        description="Queue names or ARNs, either may be a glob (arn: patterns match ARNs only).",
    )
    job_definitions: Patterns | None = Field(
        default=None,
        description=(
            "Job definition names (any revision), name:revision or ARNs, any may be a glob "
            "(arn: patterns match ARNs only)."
        ),
    )
    job_names: Patterns | None = Field(default=None, description="Job name globs.")
    tags: dict[NonEmptyStr, NonEmptyStr] | None = Field(
        default=None, description='Exact tag values, or "*" for key present.'
    )


AGE_RULE: Final = (
    "Time in the current status, in the job's current attempt. SUBMITTED and PENDING: since "
    "createdAt. RUNNABLE: since createdAt, or since its last dependency stopped, or, after a "
    "retry, since the previous attempt's stoppedAt. STARTING: the same as RUNNABLE (Batch records "
    "no time for entering STARTING, so STARTING counts the whole wait to run). RUNNING: since "
    "startedAt of the current attempt. A job whose age Batch does not tell is never selected."
)


class When(ContractModel):
    """The state and age at which a matching job is terminated."""

    status: ActiveStatusList = Field(description="One status or a list.")
    older_than: Duration | None = Field(default=None, description=AGE_RULE)
    status_reasons: Patterns | None = Field(
        default=None,
        description=(
            "Globs over the job's whole statusReason text, for example "
            '"MISCONFIGURATION:*" for jobs that a blocked queue holds in RUNNABLE. A job '
            "without a statusReason matches none."
        ),
    )

    @model_validator(mode="after")
    def _starting_is_aged_from_runnable(self) -> When:
        check_when(self.status, self.older_than)
        return self


class Trigger(ContractModel):
    """Run the policy when one of these CloudWatch alarms enters ALARM, or an AWS Budgets alert
    names one of these budgets, instead of on schedule."""

    alarms: Patterns | None = Field(
        default=None,
        description="CloudWatch alarm names; a name may be a glob of `*` only.",
    )
    budgets: list[NonEmptyStr] | None = Field(
        default=None,
        min_length=1,
        description=(
            "AWS Budgets budget names, exact: the brake matches the alert's `Budget Name:` line."
        ),
    )

    @model_validator(mode="after")
    def _names_something(self) -> Trigger:
        check_trigger(self.alarms, self.budgets)
        return self


class Policy(ContractModel):
    name: PolicyName
    description: NonEmptyStr | None = None
    trigger: Trigger | None = None
    match: Match = Field(default_factory=Match)
    when: When
    order: Literal["oldest-first", "newest-first"] = "oldest-first"
    max_per_run: Annotated[StrictInt, Field(ge=1, le=MAX_PER_RUN_LIMIT)] = Field(
        default=100,
        description=(
            "Blast-radius cap per run, in jobs: an array counts as its unfinished children. "
            "Hitting it is logged and alarmed."
        ),
    )
    dry_run: StrictBool = False

    @model_validator(mode="after")
    def _scheduled_policies_need_an_age(self) -> Policy:
        check_policy(self.trigger is None, self.when.older_than, self.max_per_run)
        return self

    @property
    def is_scheduled(self) -> bool:
        return self.trigger is None


class PoliciesFile(ContractModel):
    """Root of policies.yaml."""

    version: Literal[1]
    settings: Settings = Field(default_factory=Settings)
    policies: list[Policy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> PoliciesFile:
        check_names(policy.name for policy in self.policies)
        return self

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)
