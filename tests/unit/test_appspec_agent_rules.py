"""AppSpec files as others write them: what the CodeDeploy agent deploys is accepted, with notes
for what it ignores; what would fail on the agent is refused, saying where in the file.

The fixtures follow the shape of public EC2 bundles (a files section with extra keys, hooks with
quoted timeouts, hooks left empty) without copying any of them.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import validate_bundle

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
