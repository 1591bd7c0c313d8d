"""AppSpec files as others write them: what the CodeDeploy agent deploys is accepted, with notes
for what it ignores; what would fail on the agent is refused, saying where in the file.

The fixtures follow the shape of public EC2 bundles (a files section with extra keys, hooks with
quoted timeouts, hooks left empty) without copying any of them.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import validate_bundle
from canaryfleet.logic.bundle.appspec import _Budget, _simple_glob
from canaryfleet.logic.bundle.safe_zip import DEFAULT_LIMITS, opened
from hypothesis import given, settings
from hypothesis import strategies as st

SCRIPTS = {
    "scripts/stop_container.sh": "#!/bin/bash\ndocker stop web || true\n",
    "scripts/start_container.sh": "#!/bin/bash\ndocker run -d --name web web:latest\n",
    "web/index.html": "<h1>hello</h1>\n",
}


def bundle_with(appspec: str, **more: str) -> bytes:
    """A bundle holding ``appspec`` as appspec.yml, the scripts it names, and ``more`` files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if appspec:
            archive.writestr("appspec.yml", appspec)
        for name, text in {**SCRIPTS, **{k.replace("__", "."): v for k, v in more.items()}}.items():
            archive.writestr(name, text)
    return buffer.getvalue()


CONTAINER_APP = """\
version: 0.0
os: linux
files:
  - source: /web
    destination: /usr/share/nginx/html
    overwrite: true
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: scripts/stop_container.sh
      timeout: 300
      runas: root
  ApplicationStart:
    - location: scripts/start_container.sh
      timeout: 300
      runas: root
"""


def test_a_clean_appspec_has_no_notes() -> None:
    # Given an appspec that says only what CodeDeploy reads
    clean = CONTAINER_APP.replace("    overwrite: true\n", "")

    # When it is validated
    report = validate_bundle(bundle_with(clean))

    # Then nothing is noted
    assert report.notes == []


def test_an_unknown_key_under_files_deploys_and_is_noted_with_its_line() -> None:
    # Given a files entry with overwrite: true, a key the agent's parser never reads (file_info.rb)
    # When the bundle is validated
    report = validate_bundle(bundle_with(CONTAINER_APP))

    # Then it is accepted, and the note names the file, the key and its line
    assert report.files == [{"source": "/web", "destination": "/usr/share/nginx/html"}]
    assert report.notes == ["appspec.yml: files[0].overwrite (line 6) is ignored by CodeDeploy on EC2"]


def test_unknown_keys_anywhere_the_agent_ignores_them_are_noted_not_refused() -> None:
    # Given unknown keys at the top, in a hook script and in a permission (sudo is read: not noted)
    appspec = """\
version: 0.0
os: linux
resources: []
permissions:
  - object: /usr/share/nginx/html
    onwer: nginx
hooks:
  ApplicationStart:
    - location: scripts/start_container.sh
      sudo: true
      retries: 3
"""

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then each is one note, in file order of sections
    assert report.notes == [
        "appspec.yml: resources (line 3) is ignored by CodeDeploy on EC2",
        "appspec.yml: permissions[0].onwer (line 6) is ignored by CodeDeploy on EC2",
        "appspec.yml: hooks.ApplicationStart[0].retries (line 11) is ignored by CodeDeploy on EC2",
    ]


def test_an_selinux_context_written_as_the_appspec_reference_shows_it_is_noted_for_its_user() -> None:
    # Given a context laid out as the AppSpec reference's "permissions" section shows it (user,
    # type, range), and a role: the agent reads the SELinux user from name, and no role
    # (context_info.rb:13-16), so semanage runs without the user
    appspec = PERMISSIONS.replace(
        "    mode: {mode}\n",
        "    context:\n      user: unconfined_u\n      role: object_r\n      type: httpd_sys_content_t\n"
        "      range: s0\n",
    )

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then it deploys, and a note says what the agent leaves out and where to write the user
    assert report.notes == [
        "appspec.yml: permissions[0].context.user (line 9) is ignored by CodeDeploy on EC2;"
        " CodeDeploy's agent reads the SELinux user from name",
        "appspec.yml: permissions[0].context.role (line 10) is ignored by CodeDeploy on EC2",
    ]
    # (written as the agent reads it, nothing is noted)
    named = appspec.replace("      user: unconfined_u\n      role: object_r\n", "      name: unconfined_u\n")
    assert validate_bundle(bundle_with(named)).notes == []


def test_hooks_left_empty_deploy_and_are_noted() -> None:
    # Given one hook with an empty list and one with nothing at all (the agent skips both)
    appspec = """\
version: 0.0
os: linux
hooks:
  BeforeInstall: []
  AfterInstall:
  ApplicationStart:
    - location: scripts/start_container.sh
"""

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then both are accepted and noted; the report lists the empty list, not the missing one
    assert report.hooks == {"BeforeInstall": [], "ApplicationStart": ["scripts/start_container.sh"]}
    assert report.notes == [
        "appspec.yml: hooks.BeforeInstall (line 4) lists no scripts; CodeDeploy runs nothing for it",
        "appspec.yml: hooks.AfterInstall (line 5) lists no scripts; CodeDeploy runs nothing for it",
    ]


def test_a_hook_location_is_stripped_of_ascii_spaces_as_the_agent_strips_it() -> None:
    # Given a quoted location with a space before it and a tab after it (application_specification.rb:83
    # strips it with Ruby's String#strip)
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
        '    - location: " scripts/start_container.sh\\t"\n'
    )

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then the script is found, as the agent finds it
    assert report.hooks == {"ApplicationStart": ["scripts/start_container.sh"]}


def test_a_hook_location_ending_in_a_no_break_space_is_refused_as_the_agent_fails_it() -> None:
    # Given a location ending in U+00A0, which Python's str.strip removes but Ruby's String#strip keeps
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
        '    - location: "scripts/start_container.sh\\u00a0"\n'
    )

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(appspec))

    # Then it is refused: the agent looks for the name with the space and fails at ApplicationStart
    assert refused.value.reason == (
        "hook script 'scripts/start_container.sh\\xa0' named in appspec.yml (ApplicationStart) is not in"
        " the bundle"
    )


def test_a_files_source_with_spaces_around_it_is_refused_as_the_agent_takes_it_as_written() -> None:
    # Given a quoted source with a space before it: the agent joins it to the bundle's folder unstripped
    # (application_specification.rb:70, installer.rb:62) and its copy finds no such file at Install
    appspec = CONTAINER_APP.replace("source: /web", 'source: " /web"')

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(appspec))

    # Then it is refused, naming the source as written
    assert refused.value.reason == "files source ' /web' named in appspec.yml is not in the bundle"


def test_an_unknown_hook_left_empty_deploys_and_is_noted() -> None:
    # Given a misspelt event with nothing under it: the agent's parser drops empty hooks
    # (application_specification.rb:78-79) before the unknown-event check (command_executor.rb)
    appspec = """\
version: 0.0
os: linux
hooks:
  ValidateServices:
  ApplicationStart:
    - location: scripts/start_container.sh
"""

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then it is accepted, and the note says CodeDeploy ignores it
    assert report.hooks == {"ApplicationStart": ["scripts/start_container.sh"]}
    assert report.notes == [
        "appspec.yml: hooks.ValidateServices (line 4) is not a lifecycle event that runs scripts, but"
        " lists none; CodeDeploy ignores it"
    ]


def test_a_trailing_document_marker_deploys_with_nothing_to_note() -> None:
    # Given an appspec ending in --- (an empty second YAML document), as some editors and
    # generators write it: the agent's YAML.load reads the first document only (psych.rb, parse)
    appspec = CONTAINER_APP.replace("    overwrite: true\n", "") + "---\n"

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then it is accepted, and nothing is lost to note
    assert report.hooks == {
        "ApplicationStop": ["scripts/stop_container.sh"],
        "ApplicationStart": ["scripts/start_container.sh"],
    }
    assert report.notes == []


@pytest.mark.parametrize(
    ("after", "line"),
    [
        pytest.param("---\nhooks:\n  ValidateService:\n    - location: scripts/nope.sh\n", 17, id="document"),
        pytest.param("--- [not, closed\n", 16, id="not valid yaml"),
        pytest.param("---\nreleased: 2024-05-01\nmore: *alias\n", 17, id="what the first may not hold"),
        pytest.param("...\n}{ anything\n", 17, id="after the document end marker"),
    ],
)
def test_yaml_after_the_first_document_deploys_unread_and_is_noted(after: str, line: int) -> None:
    # Given an appspec followed by more YAML: Psych.parse returns at the first document's end,
    # so the agent neither reads nor parses what follows
    appspec = CONTAINER_APP.replace("    overwrite: true\n", "") + after

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then the first document is what deploys, and the note says the rest is ignored
    assert report.hooks == {
        "ApplicationStop": ["scripts/stop_container.sh"],
        "ApplicationStart": ["scripts/start_container.sh"],
    }
    assert report.notes == [
        f"appspec.yml: what follows the first YAML document (from line {line}) is ignored by CodeDeploy:"
        " its agent reads only the first document"
    ]


def test_an_appspec_whose_first_document_is_empty_is_refused() -> None:
    # Given --- then --- and the appspec: the agent reads the first, empty, document and fails
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with("---\n---\n" + CONTAINER_APP))

    # Then it is refused
    assert refused.value.reason.startswith("appspec.yml must be a YAML mapping")


def test_a_quoted_whole_number_timeout_deploys_and_is_noted() -> None:
    # Given timeout: "300" (the agent reads it with to_i: 300 seconds)
    appspec = CONTAINER_APP.replace("    overwrite: true\n", "").replace(
        "timeout: 300\n      runas: root\n  ApplicationStart",
        'timeout: "300"\n      runas: root\n  ApplicationStart',
    )

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then it is accepted, and the note says how CodeDeploy reads it
    assert report.notes == [
        "appspec.yml: hooks.ApplicationStop[0].timeout (line 10) is quoted ('300');"
        " CodeDeploy reads it as 300 seconds"
    ]


def test_appspec_yaml_beside_appspec_yml_is_noted_as_ignored() -> None:
    # Given both spellings (the agent reads appspec.yml first, for the install and every hook)
    data = bundle_with(CONTAINER_APP, appspec__yaml="version: 1\nos: windows\n")

    # When the bundle is validated
    report = validate_bundle(data)

    # Then appspec.yml is the one checked, and appspec.yaml is said to be ignored
    assert report.notes[-1] == "appspec.yaml is ignored: CodeDeploy reads appspec.yml when a bundle has both"


def test_appspec_yaml_alone_is_refused_saying_where_the_deployment_would_fail() -> None:
    # Given only appspec.yaml: the agent installs from it, but its hooks read appspec.yml
    data = bundle_with("", appspec__yaml=CONTAINER_APP)

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(data)

    # Then the reason says what would happen and how to fix it
    assert refused.value.reason == (
        "the bundle has no appspec.yml at its root: it has appspec.yaml, which CodeDeploy on EC2 does not"
        " use for lifecycle hooks (its AppSpec reference requires appspec.yml; the agent would install from"
        " appspec.yaml and then fail at BeforeInstall); rename it to appspec.yml"
    )


@pytest.mark.parametrize(
    ("appspec", "reason"),
    [
        pytest.param(
            "version: 0.0\nos: windows\nhooks:\n  ApplicationStart:\n    - location: scripts\\start.ps1\n",
            "os (line 2) is windows, but canaryfleet's fleet runs Linux only (Amazon Linux 2023 instances,"
            " whose CodeDeploy agent deploys only os: linux); build the bundle for linux",
            id="windows",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
            "    - location: scripts/start_container.sh\n      timeout: ten\n",
            "hooks.ApplicationStart[0].timeout (line 6) must be a number of seconds, unquoted (got 'ten')",
            id="timeout in words",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
            '    - location: scripts/start_container.sh\n      timeout: "\uff13\uff10\uff10"\n',
            "hooks.ApplicationStart[0].timeout (line 6) must be a number of seconds in the digits 0-9"
            " (got '\uff13\uff10\uff10', which CodeDeploy reads as 0 seconds)",
            id="timeout in fullwidth digits",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
            '    - location: scripts/start_container.sh\n      timeout: "3\uff10\uff10"\n',
            "hooks.ApplicationStart[0].timeout (line 6) must be a number of seconds in the digits 0-9"
            " (got '3\uff10\uff10', which CodeDeploy reads as 3 seconds)",
            id="timeout partly in fullwidth digits",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
            '    - location: scripts/start_container.sh\n      timeout: "\u00b3"\n',
            "hooks.ApplicationStart[0].timeout (line 6) must be a number of seconds, unquoted (got '\u00b3')",
            id="timeout a superscript",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
            '    - location: scripts/start_container.sh\n      timeout: "\u3000300"\n',
            "hooks.ApplicationStart[0].timeout (line 6) must be a number of seconds, unquoted"
            " (got '\\u3000300')",
            id="timeout after an ideographic space",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ValidateServices: []\n",
            "hooks.ValidateServices (line 4): 'ValidateServices' is not a lifecycle event that runs scripts"
            " (one of ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService,"
            " BeforeBlockTraffic, AfterBlockTraffic, BeforeAllowTraffic, AfterAllowTraffic)",
            id="unknown event with an empty list, which the agent keeps",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - runas: root\n",
            "hooks.ApplicationStart[0].location (line 5) is required",
            id="script without location",
        ),
        pytest.param(
            "version: 0.0\nos: linux\nfiles:\n  - source: /web\n    destination: ''\n",
            "files[0].destination (line 5) must not be empty",
            id="empty destination",
        ),
    ],
)
def test_what_would_fail_on_the_agent_is_refused_in_the_appspecs_terms(appspec: str, reason: str) -> None:
    # Given an appspec the agent would fail on
    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(appspec))

    # Then the reason names the section, the key and the line, in words, not pydantic's
    assert refused.value.reason == f"appspec.yml is not a valid EC2/on-premises AppSpec: {reason}"
    assert "Input should be" not in refused.value.reason
    assert "invalid literal" not in refused.value.reason


# AppSpecs of the other compute platforms, in the CodeDeploy User Guide's shapes: an ECS service
# (Resources with a TargetService, Hooks naming Lambda functions) and a Lambda alias (the Lambda
# example's lowercase keys).
ECS_SERVICE = """\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "arn:aws:ecs:eu-west-1:111122223333:task-definition/orders:7"
        LoadBalancerInfo:
          ContainerName: "orders"
          ContainerPort: 8080
Hooks:
  - AfterAllowTestTraffic: "CheckOrdersOnTestListener"
"""
LAMBDA_ALIAS = """\
version: 0.0
resources:
  - ordersFunction:
      type: AWS::Lambda::Function
      properties:
        name: orders-handler
        alias: live
        currentversion: 4
        targetversion: 5
hooks:
  - BeforeAllowTraffic: "WarmOrdersHandler"
"""
OTHER_PLATFORM = (
    "appspec.yml is an Amazon ECS or AWS Lambda AppSpec: it has {key} (line {line}), a section only ECS"
    " and Lambda deployments read, and no os; canaryfleet deploys EC2/on-premises bundles, whose"
    " appspec.yml has version: 0.0, os: linux, and files and hooks sections"
)


@pytest.mark.parametrize(
    ("appspec", "key", "line"),
    [
        pytest.param(ECS_SERVICE, "Resources", 2, id="ecs"),
        pytest.param(ECS_SERVICE.replace("version: 0.0", "version: 1"), "Resources", 2, id="ecs-version-1"),
        pytest.param("---\n# orders service\n" + ECS_SERVICE, "Resources", 4, id="ecs-after-comments"),
        pytest.param(LAMBDA_ALIAS, "resources", 2, id="lambda"),
        pytest.param(
            '{"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service"}}]}',
            "Resources",
            1,
            id="ecs-as-json",
        ),
    ],
)
def test_an_ecs_or_lambda_appspec_is_refused_saying_which_platform_it_is_for(
    appspec: str, key: str, line: int
) -> None:
    # Given the AppSpec of an Amazon ECS or AWS Lambda deployment: a resources section, no os
    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(appspec))

    # Then the reason says what the file is and what canaryfleet deploys, not that os is missing
    assert refused.value.reason == OTHER_PLATFORM.format(key=key, line=line)


def test_an_ec2_appspec_with_a_resources_key_is_checked_as_an_ec2_one() -> None:
    # Given an EC2/on-premises appspec (os: linux) that also carries a Resources key
    appspec = CONTAINER_APP.replace("    overwrite: true\n", "") + "Resources: []\n"

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then it deploys, the key noted as one the agent ignores
    assert report.notes == ["appspec.yml: Resources (line 16) is ignored by CodeDeploy on EC2"]


PERMISSIONS = """\
version: 0.0
os: linux
files:
  - source: /web
    destination: /usr/share/nginx/html
permissions:
  - object: /usr/share/nginx/html
    mode: {mode}
hooks:
  ApplicationStart:
    - location: scripts/start_container.sh
"""


@pytest.mark.parametrize("mode", ['"0644"', "644", "4755", '"0755"', "7", "'0750'"])
def test_a_mode_written_as_the_permissions_reference_shows_deploys(mode: str) -> None:
    # Given a mode quoted with its leading zero, or written without one
    # When the bundle is validated
    report = validate_bundle(bundle_with(PERMISSIONS.format(mode=mode)))

    # Then it deploys, with nothing to note
    assert report.notes == []


@pytest.mark.parametrize(("mode", "number"), [("0755", 493), ("0644", 420), ("04755", 2541)])
def test_a_mode_with_a_leading_zero_and_no_quotes_is_refused_saying_how_yaml_reads_it(
    mode: str, number: int
) -> None:
    # Given `mode: 0755`, which YAML reads as an octal number (493: the agent refuses it; 0644 is
    # 420, which the agent would apply: a mode nobody wrote)
    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(PERMISSIONS.format(mode=mode)))

    # Then the reason says what YAML made of it and both ways the reference allows
    assert refused.value.reason == (
        f"appspec.yml is not a valid EC2/on-premises AppSpec: permissions[0].mode (line 8) is {mode}"
        f" without quotes, which YAML (CodeDeploy's too) reads as the number {number}, not the mode"
        f' {mode}; write "{mode}" in double quotes, or {mode.lstrip("0")}'
    )


HOOK_WITH_TIMEOUT = """\
version: 0.0
os: linux
hooks:
  ApplicationStart:
    - location: scripts/start_container.sh
      timeout: {timeout}
"""


@pytest.mark.parametrize(
    ("timeout", "agent"), [("5:00", 18_000), ("1:30", 5_400), ("1:30:00", 5_400), ("0:59", 3_540)]
)
def test_a_timeout_written_like_a_clock_is_refused_saying_what_codedeploy_makes_of_it(
    timeout: str, agent: int
) -> None:
    # Given `timeout: 5:00`, which YAML reads as a base-60 number: PyYAML 300, the agent's Psych
    # 18,000 (scalar_scanner.rb multiplies each part by 60 ** (e - 2).abs), five hours
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(HOOK_WITH_TIMEOUT.format(timeout=timeout)))

    assert refused.value.reason == (
        "appspec.yml is not a valid EC2/on-premises AppSpec: hooks.ApplicationStart[0].timeout (line 6)"
        f" is {timeout}, which CodeDeploy's agent reads as {agent} seconds (YAML takes it for a"
        " base-60 number); write the timeout in whole seconds"
    )


def test_a_timeout_with_a_thousands_comma_is_refused_saying_how_to_write_it() -> None:
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(HOOK_WITH_TIMEOUT.format(timeout="1,200")))

    assert "must be whole seconds without commas (got 1,200: write 1200)" in refused.value.reason


@pytest.mark.parametrize("key", ["!!set notes", "!!seq notes", "!!omap notes"])
def test_a_key_with_a_collection_tag_is_a_refused_bundle_not_a_crash(key: str) -> None:
    # PyYAML makes such a key an empty set or list, which no mapping can hold (a TypeError before)
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(f"version: 0.0\nos: linux\n{key}: built by jenkins\n"))

    assert "the key 'notes' has the tag" in refused.value.reason and "drop the tag" in refused.value.reason


@pytest.mark.parametrize("mode", ["689", "12345", "u+x", "'0o755'", '"rwxr-xr-x"'])
def test_a_mode_the_agent_cannot_read_as_chmod_digits_is_refused(mode: str) -> None:
    # Given a mode the agent's mode_info.rb refuses (more than four characters, or not 0 to 7)
    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(PERMISSIONS.format(mode=mode)))

    # Then the reason names the key, its line and the rule
    assert "permissions[0].mode (line 8) must be one to four octal digits, as chmod takes them" in (
        refused.value.reason
    )


# The permission of PERMISSIONS with an owner and a group in place of its mode.
OWNERS = PERMISSIONS.replace("    mode: {mode}\n", "    owner: {owner}\n    group: {group}\n")


@pytest.mark.parametrize(
    ("owner", "group", "refused_key"),
    [
        ("1000", "nginx", "owner"),
        ("'1000'", "nginx", "owner"),
        ("nginx", "48", "group"),
        ("nginx", '"48"', "group"),
    ],
    ids=["uid", "quoted uid", "gid", "quoted gid"],
)
def test_a_numeric_owner_or_group_is_refused_as_the_agent_looks_them_up_by_name(
    owner: str, group: str, refused_key: str
) -> None:
    # Given a uid or gid where the permissions section takes names (the agent: Etc.getpwnam fails,
    # "no implicit conversion of Integer into String" or "can't find user for 1000")
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(OWNERS.format(owner=owner, group=group)))

    # Then the reason names the key, its line, and what to write instead
    line = 8 if refused_key == "owner" else 9
    kind = "user" if refused_key == "owner" else "group"
    assert f"permissions[0].{refused_key} (line {line}) must be a {kind} name" in refused.value.reason
    assert "write the name" in refused.value.reason


def test_an_owner_and_group_given_by_name_deploy() -> None:
    report = validate_bundle(bundle_with(OWNERS.format(owner="ec2-user", group="nginx")))

    assert report.notes == []


@pytest.mark.parametrize("written", ["60.0", "300.0"])
def test_a_timeout_written_with_a_zero_fraction_deploys_as_those_seconds(written: str) -> None:
    # Given timeout: 60.0 (the agent reads it with to_i: 60 seconds)
    appspec = CONTAINER_APP.replace("    overwrite: true\n", "").replace(
        "timeout: 300", f"timeout: {written}"
    )

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then it is accepted as written
    assert report.hooks == {
        "ApplicationStop": ["scripts/stop_container.sh"],
        "ApplicationStart": ["scripts/start_container.sh"],
    }
    assert report.notes == []


@pytest.mark.parametrize(("written", "cut"), [("90.5", 90), ("0.5", 0)])
def test_a_timeout_with_a_fraction_is_refused_saying_what_codedeploy_would_cut_it_to(
    written: str, cut: int
) -> None:
    # Given a fraction of a second, which the agent's to_i cuts (0.5 to 0, a failed deployment)
    appspec = CONTAINER_APP.replace(
        "timeout: 300\n      runas: root\n  ApplicationStart",
        f"timeout: {written}\n      runas: root\n  ApplicationStart",
    )

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(appspec))

    # Then the reason names the line and what the agent would read
    assert refused.value.reason == (
        "appspec.yml is not a valid EC2/on-premises AppSpec: hooks.ApplicationStop[0].timeout (line 11)"
        f" must be whole seconds (got {written}; CodeDeploy would cut it to {cut})"
    )


# --- zips made on Windows with backslashes --------------------------------------------------------
# Info-ZIP's "version made by" hosts (APPNOTE.TXT 4.4.2.2).
FAT, NTFS, UNIX = 0, 11, 3

FLAT_APP = {
    "appspec.yml": CONTAINER_APP.replace("    overwrite: true\n", ""),
    "scripts\\stop_container.sh": SCRIPTS["scripts/stop_container.sh"],
    "scripts\\start_container.sh": SCRIPTS["scripts/start_container.sh"],
    "web\\": "",
    "web\\index.html": SCRIPTS["web/index.html"],
}


def zip_made_on(host: int, files: dict[str, str], prefix: str = "") -> bytes:
    """A zip as Windows PowerShell 5.1's Compress-Archive writes it when ``host`` is FAT: names as
    given (backslashes kept), no Unix modes, the host in each entry's "version made by"."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(prefix + name)
            info.create_system = host
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


def test_a_windows_zip_with_backslashes_deploys_as_unzip_unpacks_it_with_a_note() -> None:
    # Given `Compress-Archive -Path app\* -DestinationPath app.zip` on Windows PowerShell 5.1:
    # folders separated by backslashes, on a FAT host. The agent's unzip makes them folders
    # (unzip 6.0 extract.c), warns, and the agent's rubyzip fallback then writes each at the
    # root under its literal name too (command_executor.rb, unpack_bundle).
    data = zip_made_on(FAT, FLAT_APP)

    # When the bundle is validated
    report = validate_bundle(data)

    # Then the hooks and the files section find their paths, and the note says what else happens
    assert report.hooks == {
        "ApplicationStop": ["scripts/stop_container.sh"],
        "ApplicationStart": ["scripts/start_container.sh"],
    }
    assert report.notes == [
        "4 entries, e.g. 'scripts\\stop_container.sh', separate their folders with backslashes, as"
        " Windows PowerShell 5.1's Compress-Archive writes them: CodeDeploy's agent unpacks them into"
        " folders, then, because its unzip warns about them, unpacks the zip again with its fallback,"
        " which also writes each of them at the root under its literal name; a zip with forward slashes"
        " (PowerShell 7, 7-Zip, zip) avoids both"
    ]


def test_a_windows_zip_of_the_folder_itself_with_backslashes_is_refused() -> None:
    # Given `Compress-Archive -Path app`: everything under app\. The literal names the agent's
    # fallback writes sit beside app/ at the root, so the agent does not strip the folder.
    data = zip_made_on(FAT, FLAT_APP, prefix="app\\")

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(data)

    # Then the reason says why this folder is not unpacked from inside, and what to do
    assert refused.value.reason == (
        "the bundle has no appspec.yml at its root: found app/appspec.yml, in a zip whose names use"
        " backslashes, which CodeDeploy's agent does not unpack from inside its folder; zip the"
        " folder's contents, not the folder"
    )


@pytest.mark.parametrize(
    ("host", "name"),
    [
        (NTFS, "scripts\\start_container.sh"),
        (UNIX, "scripts\\start_container.sh"),
        (FAT, "scripts\\x/start_container.sh"),
    ],
    ids=["ntfs host", "unix host", "fat host with a slash too"],
)
def test_backslashes_unzip_keeps_leave_the_file_at_its_literal_name(host: int, name: str) -> None:
    # Given a backslash unzip does not convert: another host, or a name that also has a '/'
    files = {"appspec.yml": CONTAINER_APP, name: SCRIPTS["scripts/start_container.sh"]}
    files["scripts/stop_container.sh"] = SCRIPTS["scripts/stop_container.sh"]

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(zip_made_on(host, files))

    # Then the hook's script is missing, as on the instance
    assert refused.value.reason == (
        "hook script scripts/start_container.sh named in appspec.yml (ApplicationStart) is not in the bundle"
    )


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP's unzip is not installed here")
@pytest.mark.parametrize("host", [FAT, NTFS, UNIX])
def test_the_paths_judged_are_the_ones_info_zips_unzip_writes(host: int, tmp_path: Path) -> None:
    # Given a zip with backslash names, and Info-ZIP's unzip, which the agent runs (linux_util.rb)
    files = {**FLAT_APP, "docs\\a/b.txt": "mixed"}
    data = zip_made_on(host, files)
    (tmp_path / "bundle.zip").write_bytes(data)
    out = tmp_path / "out"

    # When unzip unpacks it as the agent does (`unzip -qo`), and canaryfleet opens it
    done = subprocess.run(
        ["unzip", "-qo", str(tmp_path / "bundle.zip"), "-d", str(out)], capture_output=True, check=False
    )
    with opened(data, DEFAULT_LIMITS) as bundle:
        judged = set(bundle.files)

    # Then the files canaryfleet judges are the files unzip wrote, and unzip warns only on FAT names
    written = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    assert judged == written
    assert done.returncode == (1 if host == FAT else 0)


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP's unzip is not installed here")
@pytest.mark.parametrize(
    "name",
    ["app/" + "x" * 255, "app/" + "x" * 256, "app/" + "é" * 128, "a/" * 2047 + "ff"],
    ids=["part of 255 bytes", "part of 256", "part of 256 in utf-8", "path of 4,096"],
)
def test_a_name_refused_for_its_length_is_one_info_zips_unzip_cannot_write(name: str, tmp_path: Path) -> None:
    # Given a bundle with a long name, and Info-ZIP's unzip, which the agent runs
    files = {"appspec.yml": CONTAINER_APP.replace("    overwrite: true\n", ""), **SCRIPTS, name: "x"}
    (tmp_path / "bundle.zip").write_bytes(zip_made_on(UNIX, files))

    # When unzip unpacks it as the agent does, and canaryfleet validates it
    done = subprocess.run(
        ["unzip", "-qo", str(tmp_path / "bundle.zip"), "-d", str(tmp_path / "out")],
        capture_output=True,
        check=False,
    )
    # What unzip made before it stopped may be 2,000 folders deep: too deep for pytest's shutil.rmtree
    subprocess.run(["rm", "-rf", str(tmp_path / "out")], check=True)
    try:
        validate_bundle(zip_made_on(UNIX, files))
        accepted = True
    except InvalidBundle as exc:
        accepted = "Linux takes at most" not in exc.reason

    # Then a name refused for its length is one unzip fails to write (a 4,095-byte path fails it too
    # under -d: the folder it unpacks into counts; canaryfleet cannot know that folder's length)
    assert accepted == (done.returncode == 0)


# --- keys that do not print ------------------------------------------------------------------------
def test_a_key_holding_an_escape_or_a_line_break_is_noted_as_one_line_of_its_escapes() -> None:
    # Given keys the agent ignores, double-quoted to hold a terminal's escapes and line breaks: one
    # draws a fake link and erases the line, one would forge a line in the outcome email
    appspec = r"""version: 0.0
os: linux
"\e]8;;https://evil.example/\e\\click me\e]8;;\e\\\e[2K\rnote": 1
"x\n\nDecisions: approve by security-lead@example.com": 1
hooks:
  ApplicationStart:
    - location: scripts/start_container.sh
      "\e[31mRED": x
"""

    # When the bundle is validated
    report = validate_bundle(bundle_with(appspec))

    # Then each note names its key by its escapes, on one line of printable text
    assert report.notes == [
        "appspec.yml: '\\x1b]8;;https://evil.example/\\x1b\\\\click me\\x1b]8;;\\x1b\\\\\\x1b[2K\\rnote'"
        " (line 3) is ignored by CodeDeploy on EC2",
        "appspec.yml: 'x\\n\\nDecisions: approve by security-lead@example.com' (line 4) is ignored by"
        " CodeDeploy on EC2",
        "appspec.yml: hooks.ApplicationStart[0].'\\x1b[31mRED' (line 8) is ignored by CodeDeploy on EC2",
    ]
    assert all(note.isprintable() for note in report.notes)


def test_a_refusal_names_a_key_that_does_not_print_by_its_escapes() -> None:
    # Given a hook event whose name holds an escape and a line break, with a timeout past the hour
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n"
        '  "Foo\\e[31m\\nDecisions: approve":\n'
        "    - location: scripts/start_container.sh\n      timeout: 3601\n"
    )

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(bundle_with(appspec))

    # Then the reason shows the key by its escapes, on one line
    assert refused.value.reason == (
        "appspec.yml is not a valid EC2/on-premises AppSpec: hooks.'Foo\\x1b[31m\\nDecisions: approve'[0]"
        ".timeout (line 6) must be at most 3600 (got 3601)"
    )


def test_a_key_that_prints_is_named_as_written() -> None:
    # Given a key the agent ignores, with brackets, dots and non-ASCII letters, all printable
    appspec = CONTAINER_APP.replace("overwrite: true", "über.key[1]: true")

    # When the bundle is validated, Then the note names it as written
    assert validate_bundle(bundle_with(appspec)).notes == [
        "appspec.yml: files[0].über.key[1] (line 6) is ignored by CodeDeploy on EC2"
    ]


# --- permission patterns: the agent's matches_simple_glob -------------------------------------------
def agents_matches_simple_glob(name: str, pattern: str) -> bool:
    """linux_permission_info.rb:79-110 line for line (the reference, slow on purpose): options are
    what is left of the pattern, as lists of characters, in a list never de-duplicated."""
    if "/" in name:
        return False
    options = agents_expand(list(pattern))
    for char in name:
        new_options: list[list[str]] = []
        for option in options:
            if option[:1] == ["*"]:
                new_options.extend(agents_expand(option))
            elif option[:1] == [char]:
                option.pop(0)  # option.shift
                new_options.extend(agents_expand(option))
        options = new_options
        if ["*"] in options:
            return True
    return [] in options


def agents_expand(option: list[str]) -> list[list[str]]:
    """linux_permission_info.rb:112-120, expand, which shifts ``option`` in place as Ruby does."""
    previous_option = None
    while option[:1] == ["*"]:
        previous_option = list(option)
        option.pop(0)
    return [option] if previous_option is None else [previous_option, option]


GLOB_NAMES = st.text(alphabet="ab.*/é", max_size=12)
GLOB_PATTERNS = st.text(alphabet="ab.*é", max_size=9)


@settings(max_examples=3_000, deadline=None)
@given(name=GLOB_NAMES, pattern=GLOB_PATTERNS)
def test_a_pattern_selects_a_name_exactly_when_the_agents_matcher_does(name: str, pattern: str) -> None:
    # Given a name and a pattern (stars, letters, dots; names with '/' and '*' too)
    budget = _Budget()

    # When canaryfleet matches them
    matched = _simple_glob(name, pattern, budget)

    # Then it answers as the agent's own algorithm, in at most a step per rest per character
    assert matched == agents_matches_simple_glob(name, pattern)
    assert _Budget().glob_steps - budget.glob_steps <= (len(name) + 1) * (len(pattern) + 1)


@pytest.mark.parametrize(
    ("name", "pattern", "selected"),
    [
        ("server.py", "*.py", True),
        ("server.pyc", "*.py", False),
        ("a" * 18, "*a" * 10 + "b", False),
        ("a" * 18 + "b", "*a" * 10 + "b", True),
        ("a" * 255, "*" * 30_000 + "a", True),
        ("", "***", True),
        ("x", "", False),
    ],
    ids=["star-dot", "longer", "stars, no b", "stars, b", "long run of stars", "empty", "no pattern"],
)
def test_patterns_that_double_the_agents_list_at_every_star_match_in_few_steps(
    name: str, pattern: str, selected: bool
) -> None:
    # Given a name and a pattern whose stars double the agent's list of options at every character
    budget = _Budget()

    # When they are matched
    matched = _simple_glob(name, pattern, budget)

    # Then the answer is the agent's, in at most one step per rest of the pattern per character
    assert matched is selected
    assert _Budget().glob_steps - budget.glob_steps <= (len(name) + 1) * (len(pattern) + 1)


def test_past_its_budget_of_matching_steps_the_install_check_stops_without_refusing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two permissions that both select web/index.html, which the agent refuses at Install
    appspec = CONTAINER_APP.replace("    overwrite: true\n", "") + (
        "permissions:\n"
        '  - object: /usr/share/nginx/html\n    pattern: "*.html"\n    mode: 644\n'
        '  - object: /usr/share/nginx/html\n    pattern: "index*"\n    mode: 600\n'
    )
    with pytest.raises(InvalidBundle, match="CodeDeploy's agent refuses permissions set twice on one file"):
        validate_bundle(bundle_with(appspec))

    # When matching may take fewer steps than these patterns take
    monkeypatch.setattr("canaryfleet.logic.bundle.appspec._GLOB_STEP_BUDGET", 10)

    # Then the check stops there: what it could not finish is not refused (nor noted)
    assert validate_bundle(bundle_with(appspec)).notes == []
