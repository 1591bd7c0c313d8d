"""Tabs in appspec.yml, read as the CodeDeploy agent reads them.

The agent loads appspec.yml with Ruby's YAML.load (application_specification.rb:28): Psych, whose
parser is libyaml. libyaml takes a tab as separation between tokens (``runas:<TAB>root``) and
refuses it as indentation. PyYAML's libyaml binding, ``yaml.CSafeLoader``, is that same parser (its
scanner.c is unchanged from 0.2.5, the agent's), so it is the oracle here: canaryfleet must read
what it reads, as it reads it, and refuse what it refuses.
"""

from __future__ import annotations

import pytest
import yaml
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import APPSPEC, validate_bundle
from canaryfleet.logic.bundle.strict_yaml import load_yaml_with_lines
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.hostile_bundles import zip_of

# The shape of AWS's SampleApp_Linux appspec.yml.
SAMPLE_APP_LINUX = """\
version: 0.0
os: linux
files:
  - source: /index.html
    destination: /var/www/html/
hooks:
  BeforeInstall:
    - location: scripts/install_dependencies
      timeout: 300
      runas: root
    - location: scripts/start_server
      timeout: 300
      runas: root
  ApplicationStop:
    - location: scripts/stop_server
      timeout: 300
      runas: root
"""

SCRIPTS = ("scripts/install_dependencies", "scripts/start_server", "scripts/stop_server")


def sample_app_with(appspec: str) -> bytes:
    """A SampleApp_Linux bundle whose appspec.yml is ``appspec``."""
    scripts = [(name, "#!/bin/bash\ntrue\n") for name in SCRIPTS]
    return zip_of([("appspec.yml", appspec), ("index.html", "<h1>hello</h1>\n"), *scripts])


def as_the_agent_reads(appspec: str) -> object:
    """The document canaryfleet's check reads from ``appspec`` (the loader validate_bundle uses)."""
    return load_yaml_with_lines(appspec, APPSPEC, for_the_agent=True)[0]


def libyaml_reads(text: str) -> tuple[bool, object]:
    """The first document of ``text`` as libyaml reads it, read no further.

    Not yaml.load(text, Loader=yaml.CSafeLoader), which reads the whole stream: the agent's
    Psych.parse returns at the first document's end, so what follows it deploys whatever it is,
    and canaryfleet's check reads it so too (strict_yaml._first_node). Blanks can end the first
    document early: " version: 0.0\nos: linux" is {version: 0.0} and then a second document
    that lacks its "---", which yaml.load refuses but the agent never parses.
    """
    loader = yaml.CSafeLoader(text)
    try:
        node = loader.get_node() if loader.check_node() else None
        return True, loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        return False, str(exc)
    finally:
        loader.dispose()


def canaryfleet_reads(text: str) -> tuple[bool, object]:
    try:
        return True, as_the_agent_reads(text)
    except InvalidBundle as exc:
        return False, exc.reason


# --- tabs the agent reads as separation: accepted ---------------------------------------------------
TABBED = {
    "a tab after a key's colon": ("      runas: root", "      runas:\troot"),
    "two tabs after a key's colon": ("      timeout: 300", "      timeout:\t\t300"),
    "a trailing tab": ("os: linux", "os: linux\t"),
    "a tab before a comment": ("os: linux", "os: linux\t# the fleet is Amazon Linux 2023"),
    "a tab in a flow mapping": (
        "  - source: /index.html\n    destination: /var/www/html/",
        "  - {source: /index.html,\tdestination:\t/var/www/html/ }",
    ),
}


@pytest.mark.parametrize("written", list(TABBED.values()), ids=list(TABBED))
def test_a_tab_that_separates_deploys_as_the_agent_reads_it(written: tuple[str, str]) -> None:
    # Given SampleApp_Linux's appspec with tabs where YAML separates tokens
    appspec = SAMPLE_APP_LINUX.replace(*written)
    assert appspec != SAMPLE_APP_LINUX

    # When the bundle is validated
    report = validate_bundle(sample_app_with(appspec))

    # Then it is accepted, with the hooks and files the agent reads
    assert report.os == "linux"
    assert report.hooks == {
        "BeforeInstall": ["scripts/install_dependencies", "scripts/start_server"],
        "ApplicationStop": ["scripts/stop_server"],
    }
    assert report.files == [{"source": "/index.html", "destination": "/var/www/html/"}]
    assert report.notes == []


def test_tabbed_values_are_the_values_the_agent_reads() -> None:
    # Given every tab above in one appspec
    appspec = SAMPLE_APP_LINUX
    for written in TABBED.values():
        appspec = appspec.replace(*written)

    # When canaryfleet's check reads it
    document = as_the_agent_reads(appspec)

    # Then the values are the agent's (libyaml's): no tab left in them
    assert (True, document) == libyaml_reads(appspec)
    assert isinstance(document, dict)
    assert document["version"] == 0.0
    assert document["os"] == "linux"
    first = document["hooks"]["BeforeInstall"][0]
    assert first == {"location": "scripts/install_dependencies", "timeout": 300, "runas": "root"}


def test_an_appspec_in_one_flow_mapping_with_a_tab_deploys() -> None:
    # Given the whole appspec as one flow mapping, a tab after its comma
    appspec = "{version: 0.0,\tos: linux}\n"

    # When the bundle is validated
    report = validate_bundle(zip_of([("appspec.yml", appspec), ("index.html", "<h1>hello</h1>\n")]))

    # Then it is accepted, as the agent reads it
    assert (report.appspec_version, report.os, report.hooks) == ("0.0", "linux", {})
    assert as_the_agent_reads(appspec) == {"version": 0.0, "os": "linux"}


def test_a_tab_between_the_words_of_a_plain_scalar_is_kept_as_the_agent_keeps_it() -> None:
    # Given an unquoted value with a tab between its words
    appspec = SAMPLE_APP_LINUX.replace("os: linux", "os: linux\ndescription: web\tserver\t")

    # When canaryfleet's check reads it
    document = as_the_agent_reads(appspec)

    # Then the tab inside is kept and the one after dropped, as libyaml does
    assert isinstance(document, dict)
    assert document["description"] == "web\tserver"


# --- tabs the agent reads as indentation: refused ----------------------------------------------------
INDENTED = {
    "a key indented by a tab": ("      runas: root", "\trunas: root"),
    "a tab after the spaces of a line": ("      runas: root", "    \t  runas: root"),
    "a list item indented by a tab": (
        "    - location: scripts/stop_server",
        "\t- location: scripts/stop_server",
    ),
    "a line holding only a tab": ("hooks:", "\t\nhooks:"),
    "a comment indented by a tab": ("hooks:", "\t# the scripts\nhooks:"),
}


@pytest.mark.parametrize("written", list(INDENTED.values()), ids=list(INDENTED))
def test_a_tab_that_indents_is_refused_saying_where(written: tuple[str, str]) -> None:
    # Given SampleApp_Linux's appspec with a tab where YAML reads indentation
    appspec = SAMPLE_APP_LINUX.replace(*written)
    line, text = next((number, text) for number, text in enumerate(appspec.splitlines(), 1) if "\t" in text)
    assert not libyaml_reads(appspec)[0]  # the agent's parser refuses it too

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(sample_app_with(appspec))

    # Then the reason says a tab indents, and where the first one is
    assert refused.value.reason == (
        "appspec.yml is not valid YAML: a tab in the indentation (YAML indents with spaces only)"
        f" at line {line}, column {text.index(chr(9)) + 1}"
    )


def test_a_tab_after_a_list_dash_is_refused_as_indentation() -> None:
    # Given a tab between "-" and its item, which libyaml reads as the item's indentation
    appspec = SAMPLE_APP_LINUX.replace("  - source: /index.html", "  -\tsource: /index.html")

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(sample_app_with(appspec))

    # Then it is refused, saying why
    assert refused.value.reason == (
        "appspec.yml is not valid YAML: a tab after '-' (YAML allows only spaces there: they indent"
        " what follows) at line 4, column 4"
    )


def test_tabs_in_a_yaml_directive_and_a_block_scalar_header_are_read_as_libyaml_reads_them() -> None:
    # Given a %YAML directive and a block scalar header, each with tabs where libyaml reads blanks
    appspec = "%YAML\t1.1\t# YAML 1.1\n---\n" + SAMPLE_APP_LINUX + "notes: |-\t# why\n  built by Jenkins\n"

    # When canaryfleet's check reads it
    document = as_the_agent_reads(appspec)

    # Then it reads what libyaml reads
    assert (True, document) == libyaml_reads(appspec)
    assert isinstance(document, dict)
    assert document["notes"] == "built by Jenkins"


def test_an_unknown_directive_is_refused_as_libyaml_refuses_it() -> None:
    # Given a directive other than %YAML or %TAG (PyYAML ignores it; libyaml fails the load)
    appspec = "%DEPLOY now\n---\n" + SAMPLE_APP_LINUX
    assert not libyaml_reads(appspec)[0]

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(sample_app_with(appspec))

    # Then it is refused, naming the directive
    assert refused.value.reason == (
        "appspec.yml is not valid YAML: an unknown directive %DEPLOY (only %YAML and %TAG are read)"
        " at line 1, column 1"
    )


# --- any blanks anywhere: canaryfleet reads what libyaml reads ---------------------------------------
# Realistic appspecs, free of what canaryfleet refuses on purpose where libyaml loads it (aliases,
# duplicate keys, dates and times, sets): inserting blanks cannot bring one in.
DOCUMENTS = (
    SAMPLE_APP_LINUX,
    """\
%YAML 1.1
---
# built by Jenkins
version: 0.0   # must be the number 0.0
os: linux
files:
  - source: /
    destination: /opt/app
file_exists_behavior: OVERWRITE
permissions:
  - object: /opt/app
    pattern: "**"
    owner: ec2-user
    mode: 755
    type: [ file, directory ]
hooks:
  AfterInstall:
    - location: scripts/after_install.sh
      timeout: "120"
      runas: 'ec2-user'
""",
    """\
version: 0.0
os: linux
hooks: {ApplicationStart: [{location: scripts/start.sh, timeout: 60, runas: root}],
  ApplicationStop: [ {location: scripts/stop.sh} ] }
""",
    """\
version: 0.0
os: linux
description: the web tier, restarted
  on every deployment
notes: |
  Built by Jenkins
    for the web tier
summary: >-
  one two
  three
owner: !!str platform team
hooks:
  ValidateService:
    - location: scripts/check.sh
      timeout: 30
""",
)


def blank_slots(text: str) -> list[int]:
    """Where blanks may go: each line's start and end, and beside a space or a flow indicator."""
    return [
        at
        for at in range(len(text) + 1)
        if at == 0 or text[at - 1] in "\n ,[]{}" or at == len(text) or text[at] in "\n ,[]{}"
    ]


@st.composite
def with_blanks(draw: st.DrawFn) -> str:
    """One of DOCUMENTS with runs of tabs and spaces inserted at a few of its blank slots."""
    text = draw(st.sampled_from(DOCUMENTS))
    slots = blank_slots(text)
    blanks = st.text(alphabet=" \t", min_size=1, max_size=3)
    inserts = draw(st.lists(st.tuples(st.sampled_from(slots), blanks), min_size=1, max_size=5))
    for at, inserted in sorted(inserts, reverse=True):
        text = text[:at] + inserted + text[at:]
    return text


@settings(max_examples=200, deadline=None)
@given(text=with_blanks())
@example(text=SAMPLE_APP_LINUX.replace("runas: root", "runas:\troot"))
@example(text=SAMPLE_APP_LINUX.replace("      runas: root", "\trunas: root"))
@example(text=DOCUMENTS[3].replace("  Built by", "  \tBuilt by"))
@example(text=DOCUMENTS[3].replace("  on every", " \ton every"))
@example(text=" " + SAMPLE_APP_LINUX)  # the first document ends at "os:"; see libyaml_reads
def test_canaryfleet_reads_blanks_as_the_agents_libyaml_reads_them(text: str) -> None:
    # Given a realistic appspec with tabs and spaces inserted between, before and after its tokens
    # When both canaryfleet's check and libyaml (the agent's parser) read it
    agent_loads, agent_document = libyaml_reads(text)
    loads, document = canaryfleet_reads(text)

    # Then canaryfleet loads it exactly when the agent does, and to the same document
    if agent_loads:
        assert (loads, document) == (True, agent_document)
    else:
        assert not loads, f"canaryfleet loads what the agent refuses ({agent_document})"
