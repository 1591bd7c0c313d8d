"""The state machines' YAML sources and the JSON rendered from them (.ci/render_asl.py, `make asl`)."""

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import STATE_MACHINES, ci_script

RENDER_ASL = ci_script("render_asl")
SOURCES = sorted(STATE_MACHINES.glob("*.asl.yaml"))


@pytest.fixture
def copied_state_machines(tmp_path: Path) -> Path:
    """A copy of statemachines/ that a test may break."""
    folder = tmp_path / "statemachines"
    shutil.copytree(STATE_MACHINES, folder)
    return folder


def test_every_committed_definition_is_the_rendering_of_its_yaml_source() -> None:
    # Given the committed statemachines/ folder
    # When the check `make lint` runs looks at it
    problems = RENDER_ASL.stale()

    # Then every *.asl.json has a YAML source and is exactly what that source renders to
    assert SOURCES
    assert problems == []


def test_a_json_edited_by_hand_is_reported_as_drifted(copied_state_machines: Path) -> None:
    # Given a rendered definition edited by hand instead of through its YAML source
    target = copied_state_machines / "approval_expiry.asl.json"
    definition = json.loads(target.read_text())
    definition["Comment"] = "edited by hand"
    target.write_text(json.dumps(definition, indent=2) + "\n")

    # When the drift check runs
    problems = RENDER_ASL.stale(copied_state_machines)

    # Then it names the file and says what to do
    assert problems == [
        "approval_expiry.asl.json is not the rendering of approval_expiry.asl.yaml: "
        "edit the YAML, run `make asl`"
    ]


def test_a_json_without_source_and_a_source_without_json_are_reported(copied_state_machines: Path) -> None:
    # Given one definition whose YAML source is gone and one source never rendered
    (copied_state_machines / "approval_expiry.asl.yaml").unlink()
    (copied_state_machines / "rollout.asl.json").unlink()

    # When the drift check runs
    problems = RENDER_ASL.stale(copied_state_machines)

    # Then both are named
    assert problems == [
        "rollout.asl.json is missing: run `make asl`",
        "approval_expiry.asl.json has no approval_expiry.asl.yaml source",
    ]


def test_rendering_expands_aliases_and_drops_the_source_only_keys(tmp_path: Path) -> None:
    # Given a source sharing one retrier between two states through an anchor
    source = tmp_path / "tiny.asl.yaml"
    source.write_text(
        "Comment: tiny\n"
        "x-retry-policies:\n"
        "  again: &again {ErrorEquals: [States.ALL], MaxAttempts: 2}\n"
        "StartAt: First step\n"
        "States:\n"
        "  First step: {Type: Task, Resource: arn, Retry: [*again], Next: Last step}\n"
        "  Last step: {Type: Task, Resource: arn, Retry: [*again], End: true}\n"
    )

    # When it is rendered
    rendered = RENDER_ASL.render(source)

    # Then the JSON has the retrier written out in both states, no `x-` key, keys in source order
    definition = json.loads(rendered)
    assert list(definition) == ["Comment", "StartAt", "States"]
    retriers = [state["Retry"] for state in definition["States"].values()]
    assert retriers == [[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}]] * 2
    assert rendered == json.dumps(definition, indent=2) + "\n"


def test_a_state_named_twice_is_refused(tmp_path: Path) -> None:
    # Given a source where a second state took the name of the first (YAML would keep only the last)
    source = tmp_path / "twice.asl.yaml"
    source.write_text(
        "StartAt: Only step\nStates:\n  Only step: {Type: Pass, End: true}\n  Only step: {Type: Succeed}\n"
    )

    # When it is rendered
    # Then it is refused, naming the key
    with pytest.raises(RENDER_ASL.DuplicateKeyError, match="'Only step' given twice"):
        RENDER_ASL.render(source)


def test_the_rollouts_lambda_retry_policy_is_written_once() -> None:
    # Given the rollout's YAML source, its comments left out
    lines = (STATE_MACHINES / "rollout.asl.yaml").read_text().splitlines()
    source = "\n".join(line for line in lines if not line.lstrip().startswith("#"))

    # Then the Lambda retry policy's errors are spelt once, and every Lambda task names it, or
    # the longer one for the steps that must complete (the same errors, by alias), by alias
    assert source.count("Lambda.ServiceException") == 1
    assert source.count("ErrorEquals: *lambda-errors") == 1
    named = source.count("*lambda-transient") + source.count("[*lambda-must-complete")
    assert named == source.count("Resource: arn:aws:states:::lambda:invoke")
