"""Each statemachines/*.asl.json against the Amazon States Language schema cfn-lint applies.

`sam validate --lint` never reads the definition files (DefinitionUri), so their structure is
checked nowhere else before Step Functions' own CreateStateMachine. cfn-lint's rule E3601 holds
the ASL schema (cfnlint/data/schemas/other/step_functions/statemachine.json, plus checks a plain
JSON Schema cannot say, such as StartAt naming a state); this script hands it each file as an
inline Definition, which is where cfn-lint applies it. It does not check that every Next names a
state: Step Functions' CreateStateMachine does (and the local cloud runs the definitions).

Usage: python .ci/check_asl.py [FILE ...]  (default: statemachines/*.asl.json). Exits 1 on any error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cfnlint.api import ManualArgs, lint

ASL_SCHEMA_RULE = "E3601"
REPO = Path(__file__).resolve().parents[1]


def asl_errors(path: Path) -> list[str]:
    """The schema errors of one definition file, each with its path in the definition."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "StateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "Definition": json.loads(path.read_text()),
                    "RoleArn": "arn:aws:iam::123456789012:role/asl-schema-check",
                },
            }
        },
    }
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    return [m.message for m in matches if m.rule.id == ASL_SCHEMA_RULE]


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((REPO / "statemachines").glob("*.asl.json"))
    failed = False
    for path in paths:
        errors = asl_errors(path)
        for error in errors:
            print(f"{path}: {error}")
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
