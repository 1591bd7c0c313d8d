"""`make lint`'s Amazon States Language schema check (.ci/check_asl.py, cfn-lint's rule E3601)."""

import json
from pathlib import Path

import pytest

from tests.helpers import STATE_MACHINES, ci_script

CHECK_ASL = ci_script("check_asl")


@pytest.mark.parametrize("definition", sorted(p.name for p in STATE_MACHINES.glob("*.asl.json")))
def test_each_state_machine_definition_passes_the_asl_schema(definition: str) -> None:
    # Given a definition file of statemachines/
    # When cfn-lint's ASL schema is applied to it
    errors = CHECK_ASL.asl_errors(STATE_MACHINES / definition)

    # Then it has no error
    assert errors == []


def test_a_definition_the_schema_refuses_is_reported_with_why(tmp_path: Path) -> None:
    # Given a definition whose first state carries a field ASL does not have and a bad timeout
    definition = json.loads((STATE_MACHINES / "approval_expiry.asl.json").read_text())
    definition["States"][definition["StartAt"]]["Retries"] = 3
    definition["TimeoutSeconds"] = "one hour"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(definition))

    # When the check runs on it
    errors = CHECK_ASL.asl_errors(path)
    exit_code = CHECK_ASL.main([str(path)])

    # Then both errors are named and the check fails
    assert any("'Retries' was unexpected" in e for e in errors)
    assert any("'one hour' is not of type 'integer'" in e for e in errors)
    assert exit_code == 1
