"""`canaryfleet app onboard` and `canaryfleet app list`."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError, TokenRetrievalError
from canaryfleet.models.app_config import AppConfig, Approvers, FleetGroup, registry_parameter
from moto import mock_aws
from typer.testing import CliRunner

from canaryfleet_cli.app_commands import (
    FLEET_TEMPLATE,
    Strategy,
    app_commands,
    deploy_command,
    registry_entry_at_most,
)
from canaryfleet_local.fleet import fleet_stack_name
from canaryfleet_local.parsing import parse_template
from tests.helpers import a_load_balancer, without_aws_credentials

ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
LISTENER = f"{ELB}:listener/app/shared/50dc6c495c0c9188/f2f7dc8efc522ab2"
TG = ELB + ":targetgroup/{}/0123456789abcdef"

runner = CliRunner()


@dataclass
class SharedAlb:
    """An Application Load Balancer on moto with one HTTP listener, as a platform team shares it."""

    elbv2: Any
    vpc_id: str
    load_balancer_arn: str
    listener_arn: str

    def target_group(self, name: str, application: str | None = None) -> str:
        tags = [{"Key": "canaryfleet:application", "Value": application}] if application else []
        created = self.elbv2.create_target_group(
            Name=name, Protocol="HTTP", Port=8080, VpcId=self.vpc_id, **({"Tags": tags} if tags else {})
        )
        return str(created["TargetGroups"][0]["TargetGroupArn"])

    def onboarded(self, application: str, priority: int) -> None:
        """What an application's fleet stack puts on the listener: a rule forwarding to its two
        target groups (live 100, canary 0), both tagged with its name."""
        live, canary = (self.target_group(f"{application}-{side}", application) for side in ("l", "c"))
        self.forward(priority, live, canary)

    def forward(self, priority: int, *groups: str) -> None:
        self.elbv2.create_rule(
            ListenerArn=self.listener_arn,
            Priority=priority,
            Conditions=[
                {"Field": "host-header", "HostHeaderConfig": {"Values": [f"p{priority}.example.com"]}}
            ],
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": g, "Weight": 100 - 100 * n} for n, g in enumerate(groups)
                        ]
                    },
                }
            ],
        )


@pytest.fixture
def shared_alb(monkeypatch: pytest.MonkeyPatch) -> Iterator[SharedAlb]:
    """The load balancer `onboard_args()` names (LISTENER is its listener while the test runs)."""
    with mock_aws():
        ec2, elbv2 = (
            boto3.client("ec2", region_name="us-east-1"),
            boto3.client("elbv2", region_name="us-east-1"),
        )
        vpc, balancer, listener = a_load_balancer(
            ec2, elbv2, {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
        )
        monkeypatch.setattr(sys.modules[__name__], "LISTENER", listener)
        yield SharedAlb(elbv2, vpc, balancer, listener)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_alb: SharedAlb) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def template_parameters() -> dict[str, Any]:
    parameters: dict[str, Any] = parse_template(FLEET_TEMPLATE.read_text())["Parameters"]
    return parameters


def onboard_args(name: str = "orders-api", **options: str | list[str] | None) -> list[str]:
    """A complete `onboard` command line; an option set to None is left out."""
    values: dict[str, str | list[str] | None] = {
        "--repo": "https://git.example.com/platform/baseline.git",
        "--branch": "release-7",
        "--listener-arn": LISTENER,
        "--priority": "40",
        "--host-header": "orders.example.com",
        "--vpc-id": "vpc-0abc12",
        "--subnets": "subnet-0a1,subnet-0b2",
        "--alb-security-group": "sg-0a1b",
        "--artifact-bucket": "canaryfleet-artifacts-1",
        "--log-bucket": "canaryfleet-logs-1",
    }
    values.update({f"--{key.replace('_', '-')}": value for key, value in options.items()})
    args = ["onboard", name]
    for option, value in values.items():
        for item in [value] if isinstance(value, str) else value or []:
            args += [option, item]
    return args


def plain(output: str) -> str:
    """The output without rich's error box, on one line."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def written(path: Path) -> dict[str, str]:
    document = json.loads(path.read_text())
    return {item["ParameterKey"]: item["ParameterValue"] for item in document}


def test_onboard_writes_a_parameter_file_the_fleet_template_accepts(
    in_tmp: Path, template_parameters: dict[str, Any]
) -> None:
    result = runner.invoke(app_commands, [*onboard_args(), "--output", "orders.json"])

    assert result.exit_code == 0, result.output
    parameters = written(in_tmp / "orders.json")
    assert set(parameters) <= set(template_parameters)
    assert {name for name, spec in template_parameters.items() if "Default" not in spec} <= set(parameters)
    for name, value in parameters.items():
        spec = template_parameters[name]
        if "AllowedPattern" in spec and spec["Type"] == "String":
            assert re.match(spec["AllowedPattern"], value), (name, value)
        if "AllowedValues" in spec:
            assert value in spec["AllowedValues"], (name, value)
    assert parameters["Application"] == "orders-api"
    assert parameters["AnsibleRepositoryUrl"] == "https://git.example.com/platform/baseline.git"
    assert parameters["AnsibleBranch"] == "release-7"
    assert parameters["SubnetIds"] == "subnet-0a1,subnet-0b2"
    assert (parameters["HostHeaders"], parameters["PathPatterns"]) == ("orders.example.com", "")
    assert parameters["ListenerRulePriority"] == "40"


def test_onboard_prints_the_deploy_command(in_tmp: Path) -> None:
    result = runner.invoke(app_commands, [*onboard_args(), "--output", "orders.json"])

    command = result.stdout
    assert command.startswith("aws cloudformation deploy")
    assert "--stack-name canaryfleet-app-orders-api" in command
    assert "--parameter-overrides file://orders.json" in command
    assert "--capabilities CAPABILITY_IAM" in command
    assert "template.yaml" in command
    # Through the artifact bucket: CreateStack takes 51,200 bytes in the request, 1 MB from S3
    assert "--s3-bucket canaryfleet-artifacts-1 \\\n  --s3-prefix _fleet-templates/orders-api" in command


def test_onboard_tells_how_to_protect_approvers_email_subscriptions_only_when_there_are_approvers(
    in_tmp: Path,
) -> None:
    without = runner.invoke(app_commands, onboard_args())
    with_emails = runner.invoke(app_commands, [*onboard_args(), "--approver-email", "ana@example.com"])

    assert "approvers confirm" not in without.stderr
    assert "canaryfleet approvers confirm" in " ".join(with_emails.stderr.split())
    assert with_emails.stdout.startswith("aws cloudformation deploy")  # stdout stays the command


def test_onboard_writes_next_to_the_caller_by_default(in_tmp: Path) -> None:
    result = runner.invoke(app_commands, onboard_args())

    assert result.exit_code == 0, result.output
    assert written(in_tmp / "orders-api-fleet-parameters.json")["Application"] == "orders-api"


def test_repeated_and_comma_separated_values_are_the_same(in_tmp: Path) -> None:
    result = runner.invoke(
        app_commands,
        [
            *onboard_args(subnets=["subnet-0a1", "subnet-0b2,subnet-0c3"], host_header=None),
            "--path-pattern",
            "/orders/*",
            "--path-pattern",
            "/orders",
            "--approver-email",
            "ana@example.com,bo@example.com",
            "--approver-slack-id",
            "U012AB3CD",
            "--slack-channel",
            "C0123ABCD",
            "--drain-on-rebalance",
            "--strategy",
            "blue_green",
            "--instance-types",
            "c6i.xlarge,c6a.xlarge",
        ],
    )

    assert result.exit_code == 0, result.output
    parameters = written(in_tmp / "orders-api-fleet-parameters.json")
    assert parameters["SubnetIds"] == "subnet-0a1,subnet-0b2,subnet-0c3"
    assert (parameters["HostHeaders"], parameters["PathPatterns"]) == ("", "/orders/*,/orders")
    assert parameters["ApproverEmails"] == "ana@example.com,bo@example.com"
    assert parameters["ApproverSlackUserIds"] == "U012AB3CD"
    assert parameters["SlackChannel"] == "C0123ABCD"
    assert parameters["DrainOnRebalance"] == "true"
    assert parameters["Strategy"] == "blue_green"
    assert parameters["InstanceTypes"] == "c6i.xlarge,c6a.xlarge"


def onboard_with_a_bake_of(seconds: int, folder: Path) -> Any:
    """`app onboard` given a policy file of one canary step: 10%, a bake of ``seconds``, an approval."""
    (folder / "rollout.yaml").write_text(
        "steps:\n"
        "  - {kind: set_weight, weight: 10}\n"
        f"  - {{kind: bake, duration_seconds: {seconds}}}\n"
        "  - {kind: approval}\n"
    )
    return runner.invoke(app_commands, [*onboard_args(), "--policy", "rollout.yaml"])


def test_a_rollout_policy_file_is_validated_and_passed_as_compact_json(
    in_tmp: Path, template_parameters: dict[str, Any]
) -> None:
    result = onboard_with_a_bake_of(900, in_tmp)

    assert result.exit_code == 0, result.output
    policy = written(in_tmp / "orders-api-fleet-parameters.json")["RolloutPolicy"]
    assert "\n" not in policy and re.match(template_parameters["RolloutPolicy"]["AllowedPattern"], policy)
    assert json.loads(policy)["steps"][0] == {"kind": "set_weight", "weight": 10}
    assert "note:" not in plain(result.stderr)  # 900 s judges latency at once


def test_a_policy_whose_bake_is_too_short_to_judge_latency_is_written_with_a_note(in_tmp: Path) -> None:
    result = onboard_with_a_bake_of(300, in_tmp)

    # The policy is valid (its bakes get extended), so the file is written; the note says why
    # the short bake costs every rollout an extension, and the bake that would not
    assert result.exit_code == 0, result.output
    policy = json.loads(written(in_tmp / "orders-api-fleet-parameters.json")["RolloutPolicy"])
    assert policy["steps"][1]["duration_seconds"] == 300
    shown = " ".join(plain(result.stderr).split())
    assert "note: steps[1] bakes 300 s, so its analysis may have only 3 intervals of 60 s a side" in shown
    assert "Bake at least 360 s to judge it at once." in shown


def a_policy_of_bakes(bakes: int) -> str:
    """A valid policy of ``bakes`` weight steps, each baked with analysis (about 330 bytes a bake)."""
    steps = [{"kind": "set_weight", "weight": 5 + n} for n in range(bakes)]
    steps = [step for weight in steps for step in (weight, {"kind": "bake", "duration_seconds": 300})]
    return json.dumps({"steps": [*steps, {"kind": "approval"}]})


def test_a_policy_the_registry_entry_cannot_hold_is_refused_and_nothing_is_written(in_tmp: Path) -> None:
    # Given a valid policy long enough that the fleet stack's registry entry would pass 4 KB
    (in_tmp / "long.json").write_text(a_policy_of_bakes(9))

    # When the application is onboarded with it
    result = runner.invoke(app_commands, [*onboard_args(), "--policy", "long.json"])

    # Then onboarding stops with the sizes, before the stack could fail at its last resource
    assert result.exit_code == 2
    assert re.search(r"registry entry could be \d+ bytes, over the 4096 bytes", plain(result.output))
    assert "the rollout policy is" in plain(result.output)
    assert not (in_tmp / "orders-api-fleet-parameters.json").exists()


def test_approvers_count_against_the_registry_entry_too(in_tmp: Path) -> None:
    (in_tmp / "policy.json").write_text(a_policy_of_bakes(6))
    emails = ",".join(f"approver-number-{n:02d}@payments.example.com" for n in range(40))

    fits = runner.invoke(app_commands, [*onboard_args(), "--policy", "policy.json"])
    too_many = runner.invoke(
        app_commands,
        [*onboard_args(name="billing-api"), "--policy", "policy.json", "--approver-email", emails],
    )

    assert fits.exit_code == 0, fits.output
    assert too_many.exit_code == 2
    assert "list fewer approvers" in plain(too_many.output)


def test_the_entry_bound_is_the_template_entry_with_the_longest_names() -> None:
    entry = json.loads(
        registry_entry_at_most(
            "orders-api",
            LISTENER,
            Strategy.BLUE_GREEN,
            Approvers(emails=("a@example.com",), slack_user_ids=("U01",), slack_channel="C1"),
            '{"steps":[]}',
            True,
        )
    )

    # It parses as the registry entry the platform reads, with the template's names
    config = AppConfig.model_validate(entry | {"policy": None})
    assert config.canary.alarms[0] == "orders-api-green-5xx-rate"
    assert config.live.auto_scaling_group == "orders-api-live"
    assert config.listener_rule_arn.startswith(f"{ELB}:listener-rule/app/shared/")
    assert len(config.canary.target_group_arn.split("/")[1]) == 32
    assert entry["policy"] == {"steps": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (onboard_args(name="Orders_API"), "2-40 lowercase letters"),
        (onboard_args(name="orders-"), "2-40 lowercase letters"),
        (onboard_args(host_header=None), "the listener rule needs a condition"),
        (
            onboard_args(listener_arn="arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x"),
            "listener ARN",
        ),
        (onboard_args(repo="file:///etc/passwd"), "git repository URL"),
        (onboard_args(branch="main; rm -rf /"), "branch name"),
        (onboard_args(subnets="subnet-0a1,vpc-0abc"), "subnet id"),
        (onboard_args(approver_email="not-an-email"), "email address"),
        (onboard_args(slack_channel="#releases"), "Slack channel id"),
        (onboard_args(approver_slack_id="U012AB3CD"), "give --slack-channel, or nobody asks them"),
        (onboard_args(priority="0"), "--priority"),
        (onboard_args(instance_types="a.large,b.large,c.large,d.large,e.large,f.large,g.large"), "at most 6"),
        # An Application Load Balancer rule: 3 values a condition, 5 a rule, 5 wildcards a rule
        (
            onboard_args(host_header="a.example.com,b.example.com,c.example.com,d.example.com"),
            "4 values: a listener rule condition takes at most 3",
        ),
        (
            onboard_args(host_header="a.example.com,b.example.com,c.example.com", path_pattern="/a,/b,/c"),
            "6 hosts and paths: a listener rule takes at most 5",
        ),
        (
            onboard_args(host_header="*.a.example.com,*.b.example.com", path_pattern="/a/*,/b/*,/c/??"),
            "6 wildcards (* or ?): a listener rule takes at most 5",
        ),
        # A host name the load balancer refuses: no domain, or more than letters after the last "."
        *(
            (onboard_args(host_header=host), f"'{host}' is not a host name the load balancer can match")
            for host in ("orders", "orders.internal1", "10.0.0.12", "orders.example.*")
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(in_tmp: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app_commands, args)

    assert result.exit_code == 2
    assert message in plain(result.output)
    assert "Traceback" not in result.output
    assert list(in_tmp.iterdir()) == []


def test_a_policy_that_bakes_before_any_traffic_is_refused(in_tmp: Path) -> None:
    (in_tmp / "rollout.json").write_text('{"steps": [{"kind": "bake", "duration_seconds": 600}]}')

    result = runner.invoke(app_commands, [*onboard_args(), "--policy", "rollout.json"])

    assert result.exit_code == 2
    assert "a bake needs a set_weight above 0" in plain(result.output)
    assert "Value error" not in plain(result.output)
    assert "Traceback" not in result.output


def test_the_most_hosts_paths_and_wildcards_a_listener_rule_takes_are_written(in_tmp: Path) -> None:
    hosts, paths = "*.a.example.com,b.example.com,c.example.com", "/orders/*,/v?/*"

    result = runner.invoke(app_commands, onboard_args(host_header=hosts, path_pattern=paths))

    assert result.exit_code == 0, result.output
    parameters = written(in_tmp / "orders-api-fleet-parameters.json")
    assert (parameters["HostHeaders"], parameters["PathPatterns"]) == (hosts, paths)


def test_a_policy_whose_bake_its_analysis_cannot_read_is_refused(in_tmp: Path) -> None:
    (in_tmp / "rollout.yaml").write_text(
        "steps:\n"
        "  - {kind: set_weight, weight: 5}\n"
        "  - {kind: bake, duration_seconds: 1800, analysis: {interval_seconds: 1}}\n"
        "  - {kind: approval}\n"
    )

    result = runner.invoke(app_commands, [*onboard_args(), "--policy", "rollout.yaml"])

    assert result.exit_code == 2
    assert "more than the 1440 intervals one analysis judges" in plain(result.output)
    assert list(in_tmp.iterdir()) == [in_tmp / "rollout.yaml"]


def test_a_missing_policy_file_is_a_clear_error(in_tmp: Path) -> None:
    result = runner.invoke(app_commands, [*onboard_args(), "--policy", "nowhere.yaml"])

    assert result.exit_code == 2
    assert "cannot read nowhere.yaml" in plain(result.output)


# --- room on the load balancer ------------------------------------------------------
# An Application Load Balancer uses at most 100 unique target groups across all its listeners
# ("Target Groups per Application Load Balancer: 100", not adjustable; botocore elbv2
# TooManyUniqueTargetGroupsPerLoadBalancerException), and each fleet stack adds two.


def test_onboarding_an_application_the_load_balancer_has_no_target_groups_left_for_is_refused(
    in_tmp: Path, shared_alb: SharedAlb
) -> None:
    # Given a listener whose default action forwards to a target group, and 49 applications on it
    shared_alb.elbv2.modify_listener(
        ListenerArn=shared_alb.listener_arn,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": shared_alb.target_group("fallback")}],
    )
    for n in range(49):
        shared_alb.onboarded(f"app-{n:02d}", priority=100 + n)

    # When a 50th application is onboarded on it
    result = runner.invoke(app_commands, onboard_args())

    # Then it is refused with the count, before any parameter file or deploy command
    assert result.exit_code == 2
    said = plain(result.output)
    assert "already uses 99 of the 100 target groups" in said
    assert "orders-api's fleet stack adds 2" in said
    assert "another Application Load Balancer" in said
    assert "aws cloudformation deploy" not in result.stdout
    assert list(in_tmp.iterdir()) == []


def test_fifty_applications_fill_a_load_balancer_and_one_onboarded_again_still_fits(
    in_tmp: Path, shared_alb: SharedAlb
) -> None:
    # Given 49 applications on a listener whose default action forwards to no target group
    for n in range(49):
        shared_alb.onboarded(f"app-{n:02d}", priority=100 + n)

    # When a 50th is onboarded, and its stack created
    fiftieth = runner.invoke(app_commands, onboard_args())
    shared_alb.onboarded("orders-api", priority=40)

    # Then it takes the last two target groups: a 51st is refused, the 50th onboarded again is not
    assert fiftieth.exit_code == 0, fiftieth.output
    assert "100 of its 100 target groups in use with orders-api's, room for 0 more" in plain(fiftieth.stderr)
    fifty_first = runner.invoke(app_commands, onboard_args(name="billing-api", priority="41"))
    assert fifty_first.exit_code == 2
    assert "already uses 100 of the 100 target groups" in plain(fifty_first.output)
    again = runner.invoke(app_commands, [*onboard_args(), "--output", "again.json"])
    assert again.exit_code == 0, again.output
    assert (in_tmp / "again.json").exists()


def test_every_listener_and_every_page_of_rules_is_counted(in_tmp: Path, shared_alb: SharedAlb) -> None:
    # Given, on the load balancer: a target group three rules forward to (counted once), another
    # listener forwarding to a group of its own, 48 applications and, past the first page of
    # DescribeRules (52 rules and the default), one more rule: 99 target groups in all
    legacy = shared_alb.target_group("legacy")
    for priority in (1, 2, 3):
        shared_alb.forward(priority, legacy)
    shared_alb.elbv2.create_listener(
        LoadBalancerArn=shared_alb.load_balancer_arn,
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": shared_alb.target_group("admin")}],
    )
    for n in range(48):
        shared_alb.onboarded(f"app-{n:02d}", priority=100 + n)
    shared_alb.forward(500, shared_alb.target_group("last"))

    # When one more application is onboarded
    result = runner.invoke(app_commands, onboard_args())

    # Then all 99 are counted, and it is refused
    assert result.exit_code == 2
    assert "already uses 99 of the 100 target groups" in plain(result.output)


# Two rules of a listener cannot share a priority: CreateRule answers PriorityInUse (botocore elbv2
# model) and the fleet stack rolls back. With fifty teams choosing numbers, onboarding checks it.


def test_a_priority_another_applications_rule_has_is_refused_and_a_free_one_named(
    in_tmp: Path, shared_alb: SharedAlb
) -> None:
    shared_alb.onboarded("billing-api", priority=40)
    shared_alb.onboarded("ledger-api", priority=41)

    result = runner.invoke(app_commands, onboard_args(priority="40"))

    assert result.exit_code == 2
    said = plain(result.output)
    assert "priority 40 is taken on this listener by billing-api's rule" in said
    assert "PriorityInUse" in said and "42 is free" in said
    assert list(in_tmp.iterdir()) == []


def test_a_priority_a_rule_of_someone_elses_has_is_refused(in_tmp: Path, shared_alb: SharedAlb) -> None:
    shared_alb.forward(40, shared_alb.target_group("legacy"))

    result = runner.invoke(app_commands, onboard_args(priority="40"))

    assert result.exit_code == 2
    assert "taken on this listener by a rule canaryfleet did not make" in plain(result.output)


def test_an_application_onboarded_again_keeps_its_own_rules_priority(
    in_tmp: Path, shared_alb: SharedAlb
) -> None:
    shared_alb.onboarded("orders-api", priority=40)

    result = runner.invoke(app_commands, onboard_args(priority="40"))

    assert result.exit_code == 0, result.output


def test_onboarding_without_permission_to_read_the_load_balancer_is_refused_and_says_what_it_needs(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a caller whose role may not describe the load balancer's rules
    def denied(elbv2: Any, listener_arn: str) -> None:
        error = {
            "Code": "AccessDenied",
            "Message": "not authorized to perform: elasticloadbalancing:DescribeRules",
        }
        raise ClientError({"Error": error}, "DescribeRules")

    monkeypatch.setattr("canaryfleet_cli.app_commands.load_balancer_use", denied)

    # When an application is onboarded
    result = runner.invoke(app_commands, onboard_args())

    # Then nothing says the stack would fit: refused, with the read-only grants it needs
    assert result.exit_code == 2
    said = plain(result.output)
    assert "cannot count the target groups on the load balancer of" in said
    assert "onboarding needs elasticloadbalancing:DescribeListeners, DescribeRules and DescribeTags" in said
    assert "AccessDenied" in said
    assert "Traceback" not in result.output
    assert list(in_tmp.iterdir()) == []


def test_a_listener_that_is_not_there_is_a_clear_error(in_tmp: Path) -> None:
    result = runner.invoke(app_commands, onboard_args(listener_arn=f"{ELB}:listener/app/gone/0123/4567"))

    assert result.exit_code == 2
    assert "ListenerNotFound" in plain(result.output)
    assert list(in_tmp.iterdir()) == []


def test_onboarding_without_credentials_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_aws_credentials(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app_commands, onboard_args())

    assert result.exit_code == 2
    assert "no AWS credentials found" in result.output
    assert not (tmp_path / "orders-api-fleet-parameters.json").exists()


def test_the_stack_name_is_the_one_the_local_cloud_uses() -> None:
    command = deploy_command("orders-api", Path("orders-api-fleet-parameters.json"), "artifacts")
    assert f"--stack-name {fleet_stack_name('orders-api')}" in command


# --- list ---------------------------------------------------------------------------


def _entry(application: str) -> AppConfig:
    return AppConfig(
        application=application,
        codedeploy_application=application,
        listener_rule_arn=LISTENER.replace(":listener/", ":listener-rule/") + "/9683b2d02a6cabee",
        canary=FleetGroup(
            deployment_group=f"{application}-canary",
            target_group_arn=TG.format(f"{application}-c"),
            auto_scaling_group=f"{application}-canary",
        ),
        live=FleetGroup(
            deployment_group=f"{application}-live",
            target_group_arn=TG.format(f"{application}-l"),
            auto_scaling_group=f"{application}-live",
        ),
    )


@pytest.fixture
def registry() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def test_list_shows_every_registered_application(registry: Any) -> None:
    for name in ("payments", "orders-api"):
        registry.put_parameter(
            Name=registry_parameter(name), Type="String", Value=_entry(name).model_dump_json()
        )

    result = runner.invoke(app_commands, ["list", "--json", "--region", "us-east-1"])

    assert result.exit_code == 0, result.output
    listed = [AppConfig.model_validate(item) for item in json.loads(result.stdout)]
    assert [config.application for config in listed] == ["orders-api", "payments"]


def test_list_skips_a_malformed_entry_with_a_warning(registry: Any) -> None:
    registry.put_parameter(
        Name=registry_parameter("orders-api"), Type="String", Value=_entry("orders-api").model_dump_json()
    )
    registry.put_parameter(
        Name=registry_parameter("broken"), Type="String", Value='{"application": "broken"}'
    )

    result = runner.invoke(app_commands, ["list", "--region", "us-east-1"])

    assert result.exit_code == 0, result.output
    assert "orders-api" in result.stdout
    said = " ".join(result.stderr.split())  # rich wraps long lines
    assert "skipped /canaryfleet/apps/broken: codedeploy_application: required;" in said
    assert "is malformed" not in said  # the reason alone, once


def test_list_without_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_aws_credentials(monkeypatch, tmp_path)

    result = runner.invoke(app_commands, ["list", "--region", "us-east-1"])

    assert result.exit_code == 2
    assert "no AWS credentials found" in result.output
    assert "Traceback" not in result.output


def test_list_with_an_expired_sso_login_says_to_log_in_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a profile whose IAM Identity Center login has expired: botocore cannot refresh it
    expired = TokenRetrievalError(provider="sso", error_msg="Token has expired and refresh failed")
    monkeypatch.setattr("canaryfleet_cli.app_commands._registered", mock.Mock(side_effect=expired))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the client is made; its call is refused
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    result = runner.invoke(app_commands, ["list", "--region", "us-east-1"])

    assert result.exit_code == 2
    assert "the AWS SSO login has expired (or was never made): run `aws sso login`" in " ".join(
        result.output.split()
    )
    assert "cannot read the registry" not in result.output


@pytest.mark.parametrize(
    "repo", ["git@github.com:org/baseline.git", "ssh://git@git.example.com/baseline.git"]
)
def test_an_ssh_repository_is_written_with_a_note_on_what_the_image_must_carry(
    in_tmp: Path, repo: str
) -> None:
    result = runner.invoke(app_commands, onboard_args(repo=repo))

    assert result.exit_code == 0, result.output
    said = plain(result.stderr)
    assert "note: an ssh repository is cloned at boot with SSH's batch mode" in said
    assert "/root/.ssh/known_hosts" in said


def test_an_https_repository_needs_no_such_note(in_tmp: Path) -> None:
    result = runner.invoke(app_commands, onboard_args())

    assert result.exit_code == 0, result.output
    assert "ssh repository" not in result.stderr
