"""Without --stack, the CLI looks for the stack `sam deploy` deployed, where it deployed it.

`sam deploy --guided` writes the stack name and region under ``[default.deploy.parameters]``;
the CLI read only ``[default.global.parameters]``, so it looked for a stack named "canaryfleet"
in the AWS configuration's region and said it did not exist.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from canaryfleet_cli.platform import PlatformError, connect_platform

# What `sam deploy --guided` writes (the repro's samconfig.toml).
GUIDED = """version = 0.1
[default.deploy.parameters]
stack_name = "canaryfleet-payments"
region = "eu-west-1"
capabilities = "CAPABILITY_IAM"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The operator's working directory: where samconfig.toml is read from."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def connected(*args: str | None) -> tuple[str, str | None]:
    """The stack and region ``connect_platform(stack, region, profile)`` connects to."""
    with mock.patch("canaryfleet_cli.platform.Platform.connect") as connect:
        connect_platform(*args)  # type: ignore[arg-type]
    stack, region, _profile = connect.call_args.args
    return stack, region


def test_the_stack_and_region_sam_deploy_guided_wrote_are_the_defaults(project: Path) -> None:
    (project / "samconfig.toml").write_text(GUIDED)

    assert connected(None, None, None) == ("canaryfleet-payments", "eu-west-1")


def test_region_on_the_command_line_wins_over_samconfigs(project: Path) -> None:
    (project / "samconfig.toml").write_text(GUIDED)

    assert connected(None, "us-east-1", None) == ("canaryfleet-payments", "us-east-1")


def test_a_stack_named_on_the_command_line_is_looked_for_in_the_aws_configurations_region(
    project: Path,
) -> None:
    (project / "samconfig.toml").write_text(GUIDED)

    assert connected("other-platform", None, None) == ("other-platform", None)


@pytest.mark.parametrize(
    ("samconfig", "expected"),
    [
        # The deploy command's entries over the global ones ("Configuration precedence").
        (
            '[default.global.parameters]\nstack_name = "common"\nregion = "us-east-1"\n'
            '[default.deploy.parameters]\nstack_name = "deployed"\n',
            ("deployed", "us-east-1"),
        ),
        ('[default.global.parameters]\nstack_name = "common"\n', ("common", None)),
        ('[prod.deploy.parameters]\nstack_name = "prod-only"\n', ("canaryfleet", None)),
        (None, ("canaryfleet", None)),
    ],
    ids=["deploy-over-global", "global-only", "another-environment-only", "no-samconfig"],
)
def test_samconfigs_default_environment_is_read_as_sam_deploy_reads_it(
    project: Path, samconfig: str | None, expected: tuple[str, str | None]
) -> None:
    if samconfig is not None:
        (project / "samconfig.toml").write_text(samconfig)

    assert connected(None, None, None) == expected


def test_a_samconfig_that_is_not_toml_is_said_in_one_line(project: Path) -> None:
    (project / "samconfig.toml").write_text("[default.deploy.parameters\n")

    with pytest.raises(PlatformError, match=r"samconfig\.toml is not TOML .*: pass --stack and --region"):
        connected(None, None, None)
