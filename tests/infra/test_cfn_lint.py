"""cfn-lint on the synthesized templates: no errors and no warnings."""

from __future__ import annotations

import pytest
from cfnlint.api import lint_file

from tests.infra.support import Synthesized


@pytest.mark.parametrize("configuration", ["synth", "overridden", "braking"])
def test_template_is_lint_clean(configuration: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    matches = lint_file(synthesized.template_path)
    assert [str(match) for match in matches] == []
