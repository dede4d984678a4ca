"""The cold start benchmark measures the functions as deployed: only Lambda's packages."""

from __future__ import annotations

import re

from bench.import_time import DEPLOYED_DISTRIBUTIONS, deployed_distributions


def _names() -> set[str]:
    return {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in deployed_distributions()}


def test_the_deployed_packages_are_lambdas_and_what_they_require() -> None:
    names = _names()
    # The runtime's boto3 and the layer's Powertools and pydantic, with their requirements.
    assert {"boto3", "botocore", "aws-lambda-powertools", "pydantic", "pydantic-core"} <= names
    for distribution in deployed_distributions():
        for requirement in distribution.requires or []:
            if "extra ==" in requirement or "python_version" in requirement:
                continue
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            assert match is not None
            assert re.sub(r"[-_.]+", "-", match.group(0)).lower() in names, requirement


def test_no_development_package_is_on_the_deployed_path() -> None:
    # Present in the development environment, absent from Lambda: they must not be measured.
    assert not {"moto", "pytest", "aws-cdk-lib", "typer", "rich", "hypothesis"} & _names()
    assert set(DEPLOYED_DISTRIBUTIONS) <= _names()
