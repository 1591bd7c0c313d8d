"""Bundle validation: which zips may be deployed, and the reason given for each that may not."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import HOOK_EVENTS, BundleLimits, bundle_policy, validate_bundle
from canaryfleet.models.policy import (
    AnalysisSpec,
    Approval,
    Bake,
    OnTimeout,
    PolicyLimits,
    RolloutPolicy,
    SetWeight,
    default_policy,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.hostile_bundles import Entry, zip_of

HELLO_APP = Path(__file__).resolve().parents[2] / "examples" / "hello-app"


BASE_SPEC: dict[str, Any] = {
    "version": 0.0,
    "os": "linux",
    "files": [{"source": "/app", "destination": "/opt/app"}],
    "hooks": {
        "ApplicationStop": [{"location": "scripts/stop.sh"}],
        "ApplicationStart": [{"location": "scripts/start.sh", "timeout": 60, "runas": "root"}],
    },
}


# --- factories ------------------------------------------------------------------------------------
class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(document: object) -> str:
    return yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False)


def spec(**changes: Any) -> str:
    """The base appspec.yml with some top-level keys replaced (None removes one)."""
    document = {**BASE_SPEC, **changes}
    return dump({key: value for key, value in document.items() if value is not None})


def bundle(
    appspec: str | bytes | None = None, *, extra: Iterable[Entry] = (), without: Iterable[str] = ()
) -> bytes:
    """A small valid bundle (appspec.yml, two scripts, an app) with entries added or left out."""
    files: dict[str, bytes | str] = {
        "appspec.yml": spec() if appspec is None else appspec,
        "scripts/start.sh": "#!/bin/sh\nexec python3 /opt/app/server.py\n",
        "scripts/stop.sh": "#!/bin/sh\npkill -f server.py || true\n",
        "app/server.py": "print('hello')\n",
    }
    skip = set(without)
    return zip_of([*((name, data) for name, data in files.items() if name not in skip), *extra])


def compressed_as(name: str, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = method
    return info


@pytest.mark.parametrize(
    "method",
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2],
    ids=["stored", "deflated", "bzip2"],
)
def test_given_entries_compressed_as_the_agents_unzip_reads_when_validated_then_accepted(method: int) -> None:
    # Info-ZIP's unzip 6.0, which the agent runs, unpacks stored, deflated, Deflate64 and BZIP2 entries;
    # canaryfleet decompresses each of the others to check its stated size
    data = bundle(extra=[(compressed_as("app/data.bin", method), b"x" * 100)])

    assert validate_bundle(data).entries == 5


def tar_of_bundle(mode: Literal["w", "w:gz"]) -> bytes:
    """The small valid bundle's files as a tar (``mode`` "w") or a tar.gz ("w:gz"): what CodeDeploy
    calls a tar or tgz bundle, which canaryfleet does not deploy."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle())) as archive, tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name in archive.namelist():
            data = archive.read(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def hello_app_bundle() -> bytes:
    return zip_of(
        (path.relative_to(HELLO_APP).as_posix(), path.read_bytes())
        for path in sorted(HELLO_APP.rglob("*"))
        if path.is_file()
    )


def entry_info(name: str, mode: int = 0, extra: bytes = b"") -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.extra = extra
    return info


# Offset and format of central directory header fields (APPNOTE.TXT 4.3.12).
_DIRECTORY_FIELDS = {"flag_bits": (8, "<H"), "compress_type": (10, "<H"), "file_size": (24, "<I")}


def with_directory_field(data: bytes, name: str, field: str, value: int) -> bytes:
    """The same zip, its central directory claiming another ``field`` value for entry ``name``."""
    offset, fmt = _DIRECTORY_FIELDS[field]
    patched = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (name_length,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + name_length] == name.encode():
            struct.pack_into(fmt, patched, at + offset, value)
            return bytes(patched)
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} is not in the zip")


def with_raw_name(data: bytes, old: bytes, new: bytes) -> bytes:
    """The same zip with an entry's name bytes swapped (local header and directory alike)."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def unicode_path_extra(raw_name: bytes, unicode_name: str) -> bytes:
    payload = struct.pack("<BL", 1, zlib.crc32(raw_name)) + unicode_name.encode()
    return struct.pack("<HH", 0x7075, len(payload)) + payload


def rollout(document: object) -> bytes:
    return bundle(extra=[("rollout.yaml", dump(document))])


def hooks_of(**scripts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ApplicationStart": [{"location": "scripts/start.sh"}], **scripts}


BILLION_LAUGHS = """\
version: 0.0
os: linux
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


# --- accepted bundles -------------------------------------------------------------------------------
def test_given_the_hello_app_sample_when_validated_then_it_is_accepted_with_its_three_hooks() -> None:
    report = validate_bundle(hello_app_bundle())

    assert report.hooks == {
        "ApplicationStop": ["scripts/stop.sh"],
        "ApplicationStart": ["scripts/start.sh"],
        "ValidateService": ["scripts/validate.sh"],
    }
    assert (report.appspec_version, report.os) == ("0.0", "linux")
    assert report.files == [{"source": "/app", "destination": "/opt/hello-app"}]
    assert report.entries == 5
    assert report.has_rollout_yaml is False


def test_given_a_bundle_when_validated_then_the_report_counts_its_bytes() -> None:
    data = bundle()

    report = validate_bundle(data)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    assert report.uncompressed_bytes == sum(info.file_size for info in infos)
    assert report.compressed_bytes == sum(info.compress_size for info in infos)


def test_given_two_permissions_selecting_a_folder_the_bundle_brings_then_a_note_says_install_fails() -> None:
    # Both select public/css: the first (file and directory) everything under /opt/app, the second
    # folders under /opt/app/public. The agent makes public/css on a new instance and refuses it
    # a second permission (install_instruction.rb:99-103); with the folder already there it is not
    # made, so not set: a note, not a refusal.
    permissions = [
        {"object": "/opt/app", "owner": "ec2-user"},
        {"object": "/opt/app/public", "mode": "775", "type": ["directory"]},
    ]
    extra = [("app/public/index.html", "<p>hi</p>"), ("app/public/css/site.css", "p{}")]

    report = validate_bundle(bundle(spec(permissions=permissions), extra=extra))

    assert [note for note in report.notes if "both set permissions on the folder" in note] == [
        "permissions[1] (line 16) and permissions[0] (line 14) both set permissions on the folder"
        " '/opt/app/public/css', which files[0] (line 4) installs: on an instance without it (a new"
        " instance, unless its image has it) CodeDeploy's agent refuses permissions set twice on one"
        " folder and fails the deployment at Install; narrow one of them with pattern, except or type"
    ]


def test_given_permissions_that_select_different_folders_then_no_folder_note() -> None:
    permissions = [
        {"object": "/opt/app", "owner": "ec2-user", "type": ["file"]},
        {"object": "/opt/app/public", "mode": "775", "type": ["directory"]},
    ]
    extra = [("app/public/css/site.css", "p{}")]

    report = validate_bundle(bundle(spec(permissions=permissions), extra=extra))

    assert not any("folder" in note for note in report.notes)


@pytest.mark.parametrize("behaviour", [None, "OVERWRITE", "DISALLOW"])
def test_given_a_file_installed_where_a_folder_goes_then_a_note_or_with_disallow_a_refusal(
    behaviour: str | None,
) -> None:
    files = [{"source": "build/app", "destination": "/opt"}, {"source": "/app", "destination": "/opt/app"}]
    made = bundle(spec(files=files, file_exists_behavior=behaviour), extra=[("build/app", "binary")])
    clash = (
        "files[0] (line 4) installs the file 'build/app' at '/opt/app',"
        " where files[1] (line 6) installs a folder"
    )

    if behaviour == "DISALLOW":
        with pytest.raises(InvalidBundle, match="CodeDeploy's agent refuses a file and a folder at one path"):
            validate_bundle(made)
    else:
        assert [note for note in validate_bundle(made).notes if note.startswith(clash)] != []


def test_given_a_runas_with_spaces_around_it_when_validated_then_it_is_accepted() -> None:
    # "su  root  -c PATH": the agent's command line only has wider gaps between its words.
    hooks = {"ApplicationStart": [{"location": "scripts/start.sh", "runas": " root "}]}

    assert validate_bundle(bundle(spec(hooks=hooks))).hooks == {"ApplicationStart": ["scripts/start.sh"]}


def test_given_a_stream_rather_than_bytes_when_validated_then_it_is_accepted_alike() -> None:
    assert validate_bundle(io.BytesIO(bundle())) == validate_bundle(bundle())


def test_given_a_rollout_yaml_when_validated_then_the_report_says_so() -> None:
    assert validate_bundle(rollout({"deployment_timeout_seconds": 900})).has_rollout_yaml is True


@pytest.mark.parametrize(
    ("appspec", "extra"),
    [
        pytest.param(spec(files=[{"source": "/", "destination": "/opt/app"}]), [], id="whole bundle source"),
        pytest.param(spec(files=[{"source": "app/", "destination": "/opt/app"}]), [], id="folder source"),
        pytest.param(spec(files=[{"source": "app/server.py", "destination": "/opt"}]), [], id="file source"),
        pytest.param(spec(files=None, hooks=None), [], id="only version and os"),
        pytest.param(spec(version=0), [], id="version written as 0"),
        pytest.param(
            spec(hooks={"ApplicationStart": [{"location": "./scripts/start.sh"}]}), [], id="location with ./"
        ),
        pytest.param(
            spec(hooks={"ApplicationStart": [{"location": "/scripts/start.sh"}]}), [], id="location with /"
        ),
        pytest.param(
            spec(hooks={"ApplicationStart": [{"location": "scripts/start.sh", "timeout": 3600}]}),
            [],
            id="longest timeout",
        ),
        pytest.param(spec(file_exists_behavior="OVERWRITE"), [], id="file_exists_behavior"),
        pytest.param(
            spec(permissions=[{"object": "/opt/app", "owner": "app", "mode": 755, "type": ["file"]}]),
            [],
            id="linux permissions",
        ),
        pytest.param(
            spec(
                hooks={"ApplicationStart": [{"location": "scripts/start.sh", "runas": "app", "sudo": True}]}
            ),
            [],
            id="sudo, which the agent reads",
        ),
        pytest.param(spec(), [("notes/README", b"\0" * 100_000)], id="small compressible file"),
        pytest.param(spec(), [("app/static/", b"")], id="folder entry"),
        pytest.param(spec(), [("app/caf\u00e9.txt", b"utf-8 name")], id="utf-8 name"),
        pytest.param(
            spec(
                permissions=[
                    {
                        "object": "/opt/app",
                        "type": ["directory"],
                        "acls": ["u:app:rwx", "group:web:r-x", "m::rx", "d:u:app:7", "default:g:web:5"],
                        "context": {
                            "name": "system_u",
                            "type": "httpd_sys_content_t",
                            "range": "s0-s1:c0.c5,c7",
                        },
                    }
                ]
            ),
            [],
            id="acls and an selinux context the agent reads",
        ),
        pytest.param(
            spec(permissions=[{"object": "/opt/app", "context": {"type": "httpd_t", "range": "s0:c1,"}}]),
            [],
            id="selinux range with a trailing comma, which Ruby's split drops",
        ),
        pytest.param(
            spec(files=[*BASE_SPEC["files"], {"source": "app/server.py", "destination": "/opt/backup"}]),
            [],
            id="one file to two destinations",
        ),
        pytest.param(
            spec(
                files=[*BASE_SPEC["files"], {"source": "app/server.py", "destination": "/opt/app"}],
                file_exists_behavior="RETAIN",
            ),
            [],
            id="one destination twice, kept if the instance has it (RETAIN)",
        ),
        pytest.param(
            spec(files=[*BASE_SPEC["files"], {"source": "app/server.py", "destination": "//opt/app"}]),
            [],
            id="one destination twice, once with //, which Ruby's expand_path keeps",
        ),
        pytest.param(
            spec(
                permissions=[
                    {"object": "/opt/app", "pattern": "*.py", "mode": 644},
                    {"object": "/opt/app", "except": ["*.py"], "acls": ["d:u:app:rx"], "type": ["directory"]},
                    {"object": "/opt/app/server.py", "pattern": "*.py", "type": ["directory"]},
                    {"object": "/opt", "pattern": "*.py", "acls": ["d:u:app:rx"]},
                    {"object": "opt/app", "owner": "app"},
                ]
            ),
            [],
            id="permissions the agent applies to each installed file once",
        ),
        pytest.param(spec() + "released: '2024-05-01'\n", [], id="quoted date"),
        pytest.param(spec() + "released: 2024-13-45\n", [], id="not a date to the agent's YAML"),
        pytest.param(spec() + "logo: !!binary aGVsbG8=\n", [], id="binary, text to the agent's YAML"),
        pytest.param(spec() + "order: !!omap [{a: 1}, {b: 2}]\n", [], id="omap, a mapping to the agent's"),
        pytest.param(spec() + "pairs: !!pairs [{a: 1}, {a: 2}]\n", [], id="pairs, a list to the agent's"),
    ],
)
def test_given_a_valid_variant_when_validated_then_it_is_accepted(appspec: str, extra: list[Entry]) -> None:
    validate_bundle(bundle(appspec, extra=extra))


# --- rejected bundles ----------------------------------------------------------------------------------
REJECTIONS = [
    # the zip itself
    pytest.param(lambda: b"", None, "the bundle is empty (0 bytes)", id="empty"),
    pytest.param(lambda: b"not a zip at all", None, "not a zip file", id="not a zip"),
    pytest.param(
        lambda: bundle(extra=[(compressed_as("app/data.bin", zipfile.ZIP_LZMA), b"x" * 100)]),
        None,
        "entry 'app/data.bin' is compressed with LZMA (zip method 14), which CodeDeploy's agent cannot"
        " unpack; zip it with Deflate, the usual zip compression",
        id="lzma entry",
    ),
    pytest.param(
        lambda: tar_of_bundle("w:gz"),
        None,
        "the bundle is not a zip file: it is a gzip file (a .tar.gz or .tgz?);"
        " canaryfleet deploys zip bundles",
        id="tar.gz",
    ),
    pytest.param(
        lambda: tar_of_bundle("w"),
        None,
        "the bundle is not a zip file: it is a tar archive; canaryfleet deploys zip bundles",
        id="tar",
    ),
    pytest.param(lambda: bundle()[: len(bundle()) // 2], None, "not a zip file", id="truncated"),
    pytest.param(lambda: bundle()[:-3], None, "not a zip file", id="truncated end record"),
    pytest.param(
        lambda: bundle().replace(b"PK\x01\x02", b"PK\x01\x09"),
        None,
        "truncated or corrupt (Bad magic number for central directory)",
        id="corrupt directory",
    ),
    pytest.param(
        bundle,
        BundleLimits(max_entries=3),
        "the bundle has 4 entries; at most 3",
        id="too many entries",
    ),
    pytest.param(
        bundle,
        BundleLimits(max_central_directory_bytes=100),
        "the zip's central directory claims",
        id="directory too large",
    ),
    # entry names
    pytest.param(lambda: bundle(extra=[("/etc/cron.d/x", b"")]), None, "is an absolute path", id="abs /"),
    pytest.param(lambda: bundle(extra=[("C:\\Windows\\x", b"")]), None, "is an absolute path", id="abs C:"),
    pytest.param(lambda: bundle(extra=[("\\\\server\\x", b"")]), None, "is an absolute path", id="abs UNC"),
    pytest.param(lambda: bundle(extra=[("../x", b"")]), None, "contains '..'", id="dotdot"),
    pytest.param(lambda: bundle(extra=[("app/../../x", b"")]), None, "contains '..'", id="nested dotdot"),
    pytest.param(
        lambda: bundle(extra=[("app\\..\\..\\x", b"")]), None, "contains '..'", id="backslash dotdot"
    ),
    pytest.param(
        lambda: with_raw_name(bundle(extra=[("caf\u00e9.txt", b"")]), b"caf\xc3\xa9", b"caf\xff\xfe"),
        None,
        "an entry name is marked UTF-8 in the zip but is not valid UTF-8",
        id="invalid utf-8 name",
    ),
    pytest.param(
        lambda: with_raw_name(bundle(extra=[("cafX.txt", b"")]), b"cafX.txt", b"caf\x82.txt"),
        None,
        "entry name b'caf\\x82.txt' is not ASCII and the zip does not mark it as UTF-8",
        id="unflagged non-ascii name",
    ),
    pytest.param(
        lambda: bundle(extra=[("app/\x1b[2Jx", b"")]), None, "contains a control character", id="control char"
    ),
    pytest.param(
        lambda: bundle(
            extra=[(entry_info("safe.txt", extra=unicode_path_extra(b"safe.txt", "../evil")), b"")]
        ),
        None,
        "entry 'safe.txt' carries a different name ('../evil') in its extra field",
        id="unicode path extra",
    ),
    pytest.param(lambda: bundle(extra=[(".", b"")]), None, "entry name '.' does not name a file", id="dot"),
    pytest.param(
        lambda: bundle(extra=[("app/server.py", b"again")]),
        None,
        "entry 'app/server.py' appears more than once",
        id="duplicate",
    ),
    pytest.param(
        lambda: bundle(extra=[("./app//server.py", b"again")]),
        None,
        "entries 'app/server.py' and './app//server.py' are the same path",
        id="duplicate spelled differently",
    ),
    pytest.param(
        lambda: bundle(extra=[("app", b"file")]),
        None,
        "'app' is a file, but other entries use it as a folder",
        id="file and folder",
    ),
    # entry kinds
    pytest.param(
        lambda: bundle(extra=[(entry_info("app/link", stat.S_IFLNK | 0o777), "/etc/shadow")]),
        None,
        "symbolic link 'app/link' points to '/etc/shadow', an absolute path",
        id="symlink",
    ),
    pytest.param(
        lambda: bundle(extra=[(entry_info("app/fifo", stat.S_IFIFO | 0o644), b"")]),
        None,
        "entry 'app/fifo' is a special file",
        id="fifo",
    ),
    pytest.param(
        lambda: with_directory_field(bundle(extra=[("app/secret", b"x")]), "app/secret", "flag_bits", 0x1),
        None,
        "entry 'app/secret' is encrypted",
        id="encrypted",
    ),
    # sizes
    pytest.param(
        lambda: with_directory_field(bundle(), "app/server.py", "file_size", 3 * 1024**3),
        None,
        "entry 'app/server.py' would uncompress to 3.0 GiB; the limit is 2.0 GiB",
        id="entry too large",
    ),
    pytest.param(
        lambda: bundle(extra=[("bomb.bin", b"\0" * 5_000_000)]),
        None,
        "entry 'bomb.bin' would uncompress 1,0",  # about a thousand times
        id="zip bomb entry",
    ),
    pytest.param(
        lambda: bundle(extra=[("big.bin", b"x" * 5000), ("bigger.bin", b"y" * 5000)]),
        BundleLimits(max_uncompressed_bytes=8000),
        "the bundle would uncompress to 10.1 KiB; the limit is 7.8 KiB",
        id="bundle too large",
    ),
    pytest.param(
        lambda: bundle(extra=[(f"zeros{i}.bin", b"\0" * 600_000) for i in range(3)]),
        None,
        "the bundle would uncompress ",
        id="zip bomb overall",
    ),
    # finding appspec.yml
    pytest.param(
        lambda: bundle(without=["appspec.yml"]), None, "the bundle has no appspec.yml at its root", id="none"
    ),
    pytest.param(
        lambda: bundle(without=["appspec.yml"], extra=[("appspec.yaml", spec())]),
        None,
        "it has appspec.yaml, which CodeDeploy on EC2 does not use for lifecycle hooks",
        id="appspec.yaml",
    ),
    pytest.param(
        lambda: bundle(without=["appspec.yml"], extra=[("myapp/appspec.yml", spec())]),
        None,
        "found myapp/appspec.yml; zip the folder's contents, not the folder",
        id="nested appspec",
    ),
    pytest.param(
        lambda: bundle(spec() + "#" * 70_000),
        None,
        "appspec.yml is 68.6 KiB; at most 64.0 KiB is allowed",
        id="appspec too large",
    ),
    pytest.param(
        lambda: with_directory_field(bundle(), "appspec.yml", "file_size", 100 * 1024),
        None,
        "appspec.yml is 100.0 KiB; at most 64.0 KiB",
        id="appspec size lie, large",
    ),
    pytest.param(
        lambda: with_directory_field(bundle(), "appspec.yml", "file_size", 10),
        None,
        "appspec.yml cannot be read from the zip (Bad CRC-32",
        id="appspec size lie, small",
    ),
    # reading appspec.yml
    pytest.param(lambda: bundle("os: linux\n\xff".encode("latin-1")), None, "not UTF-8 text", id="latin-1"),
    pytest.param(
        lambda: bundle(spec().encode("utf-16")),
        None,
        "appspec.yml is UTF-16 text (it starts with a UTF-16 byte order mark, as Windows PowerShell 5.1's"
        " Out-File and '>' write files); CodeDeploy reads it as UTF-8: save it as UTF-8",
        id="utf-16 from powershell",
    ),
    pytest.param(
        lambda: bundle("\ufeff" + spec()),
        None,
        "appspec.yml starts with a UTF-8 byte order mark (BOM), as Windows PowerShell 5.1's Out-File"
        " -Encoding utf8 writes files; CodeDeploy's agent then reads only its first key and fails the"
        ' deployment ("unsupported operating system"): save it as UTF-8 without a BOM',
        id="appspec with a utf-8 bom",
    ),
    pytest.param(lambda: bundle("version: [0.0\n"), None, "appspec.yml is not valid YAML: ", id="bad yaml"),
    pytest.param(lambda: bundle(BILLION_LAUGHS), None, "appspec.yml uses a YAML alias (alias *a", id="alias"),
    pytest.param(
        lambda: bundle(spec() + "released: 2024-05-01\n"),
        None,
        "appspec.yml has the date '2024-05-01' at line 13, column 11, which CodeDeploy's agent cannot load:"
        " it reads the file with Ruby's YAML.load, which loads no dates, times or sets"
        " (Psych::DisallowedClass), so the deployment would fail; quote it ('2024-05-01') to keep it as text",
        id="date",
    ),
    pytest.param(
        lambda: bundle(spec() + "released: 2024-5-1\n"),
        None,
        "appspec.yml has the date '2024-5-1' at line 13",
        id="date Ruby reads and PyYAML does not",
    ),
    pytest.param(
        lambda: bundle(spec() + "built: 2024-05-01 10:00:00 +0530\n"),
        None,
        "appspec.yml has the time '2024-05-01 10:00:00 +0530' at line 13, column 8, which CodeDeploy's"
        " agent cannot load",
        id="time",
    ),
    pytest.param(
        lambda: bundle(spec() + "2024-05-01: release\n"),
        None,
        "appspec.yml has the date '2024-05-01' at line 13, column 1",
        id="date as a key",
    ),
    pytest.param(
        lambda: bundle(spec() + 'released: !!timestamp "2024-05-01"\n'),
        None,
        "(Psych::DisallowedClass), so the deployment would fail; drop its tag !!timestamp and quote it"
        " ('2024-05-01') to keep it as text",
        id="tagged date",
    ),
    pytest.param(
        lambda: bundle(spec() + "tags: !!set {web, canary}\n"),
        None,
        "appspec.yml has a set (!!set) at line 13, column 7, which CodeDeploy's agent cannot load: it reads"
        " the file with Ruby's YAML.load, which loads no dates, times or sets (Psych::DisallowedClass), so"
        " the deployment would fail; write a list instead",
        id="set",
    ),
    pytest.param(
        lambda: bundle(spec() + "hooks: {}\n"),
        None,
        "not valid YAML: duplicate key 'hooks' (the CodeDeploy agent would silently keep only the last)",
        id="dup key",
    ),
    pytest.param(
        lambda: bundle("x: " + "[" * 100 + "]" * 100),
        None,
        "not valid YAML: nesting deeper than 64 levels",
        id="deep nesting",
    ),
    pytest.param(lambda: bundle("- version\n- os\n"), None, "must be a YAML mapping", id="a list"),
    pytest.param(
        lambda: bundle(""),
        None,
        "must be a YAML mapping (version, os, files, hooks); it is empty",
        id="empty",
    ),
    # appspec.yml's shape
    pytest.param(
        lambda: bundle(spec(version=1.0)), None, "version (line 1) must be 0.0 (got 1.0)", id="version 1.0"
    ),
    pytest.param(
        lambda: bundle(spec(version="0.0")),
        None,
        "version (line 1) must be the number 0.0, unquoted",
        id="version '0.0'",
    ),
    pytest.param(lambda: bundle(spec(version=None)), None, "version is required", id="no version"),
    pytest.param(
        lambda: bundle(spec(os="ubuntu")),
        None,
        "os (line 2) must be linux (got 'ubuntu')",
        id="os",
    ),
    pytest.param(lambda: bundle(spec(os=None)), None, "os is required", id="no os"),
    pytest.param(
        lambda: bundle(spec(files=[{"source": "/app"}])),
        None,
        "files[0].destination (line 4) is required",
        id="files without destination",
    ),
    pytest.param(
        lambda: bundle(spec(files=[{"source": 7, "destination": "/opt"}])),
        None,
        "files[0].source (line 4) must be text (got 7)",
        id="files source not a string",
    ),
    pytest.param(
        lambda: bundle(spec(files={"source": "/"})),
        None,
        "files (line 3) must be a list (got {'source': '/'})",
        id="files",
    ),
    pytest.param(
        lambda: bundle(spec(files=[{"source": "/app", "destination": "opt/app"}])),
        None,
        "files[0].destination (line 5) must be an absolute path on a linux instance (got 'opt/app')",
        id="relative destination",
    ),
    pytest.param(
        lambda: bundle(spec(hooks=hooks_of(AplicationStop=[{"location": "scripts/stop.sh"}]))),
        None,
        "hooks.AplicationStop (line 9): 'AplicationStop' is not a lifecycle event that runs scripts",
        id="unknown event",
    ),
    pytest.param(
        lambda: bundle(spec(hooks=hooks_of(Install=[{"location": "scripts/stop.sh"}]))),
        None,
        "'Install' is not a lifecycle event that runs scripts",
        id="event without scripts",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ApplicationStart": [{"timeout": 60}]})),
        None,
        "hooks.ApplicationStart[0].location (line 8) is required",
        id="hook without location",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ApplicationStart": "scripts/start.sh"})),
        None,
        "hooks.ApplicationStart (line 7) must be a list (got 'scripts/start.sh')",
        id="hook scripts not a list",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ApplicationStart": [{"location": "scripts/start.sh", "timeout": 0}]})),
        None,
        "hooks.ApplicationStart[0].timeout (line 9) must be at least 1 (got 0)",
        id="timeout 0",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ApplicationStart": [{"location": "scripts/start.sh", "timeout": 3601}]})),
        None,
        "hooks.ApplicationStart[0].timeout (line 9) must be at most 3600 (got 3601)",
        id="timeout 3601",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ApplicationStart": [{"location": "scripts/start.sh", "timeout": "5m"}]})),
        None,
        "hooks.ApplicationStart[0].timeout (line 9) must be a number of seconds, unquoted (got '5m')",
        id="timeout in words",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ApplicationStart": [{"location": "scripts/start.sh", "timeout": 1.5}]})),
        None,
        "hooks.ApplicationStart[0].timeout (line 9) must be whole seconds"
        " (got 1.5; CodeDeploy would cut it to 1)",
        id="timeout with a fraction",
    ),
    pytest.param(
        lambda: bundle(
            spec(
                hooks={
                    "ApplicationStart": [
                        {"location": "scripts/start.sh", "timeout": 2000},
                        {"location": "scripts/stop.sh", "timeout": 2000},
                    ]
                }
            )
        ),
        None,
        "the timeouts of ApplicationStart's scripts add up to 4000 s",
        id="event over an hour",
    ),
    pytest.param(
        lambda: bundle(spec(os="windows", files=[{"source": "/", "destination": "C:\\app"}])),
        None,
        "os (line 2) is windows, but canaryfleet's fleet runs Linux only",
        id="windows",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"owner": "app"}])),
        None,
        "permissions[0].object (line 14) is required",
        id="permission without object",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": "/opt/app", "owner": ["app"]}])),
        None,
        "permissions[0].owner (line 15) must be text (got ['app'])",
        id="permission owner a list",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": "/opt/app", "acls": ["u:app:rwx", "u::rwx"]}])),
        None,
        "permissions[0].acls[1] (line 17) must name a user or group (got 'u::rwx'): CodeDeploy refuses the"
        " base ACL entries (u::, g::, o::); set those with mode",
        id="acl base entry",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": "/opt/app", "acls": ["u:bob:rwz"]}])),
        None,
        "permissions[0].acls[0] (line 16) must give its permissions as r, w, x and -, or as one digit 0-7"
        " (got 'u:bob:rwz', with 'z'); CodeDeploy refuses any other character",
        id="acl permission character",
    ),
    *(
        pytest.param(
            lambda entry=entry: bundle(spec(permissions=[{"object": "/opt/app", "acls": [entry]}])),
            None,
            f"permissions[0].acls[0] (line 16) must be an ACL entry as setfacl writes it,"
            f" [d:]u|g|m|o:name:rwx (got '{entry}'); CodeDeploy refuses it (\"Invalid acl entry\")",
            id=f"acl {entry}",
        )
        for entry in ("x:bob:rw", "d:d:u:bob:rw", "o:bob:r", "rwx", "a:b:c:d:e", "m:bob:r")
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": "/opt/app", "context": {"name": "unconfined_u"}}])),
        None,
        "permissions[0].context (line 15) must have a type, the SELinux type to set (got {'name':"
        " 'unconfined_u'}); CodeDeploy refuses a context without one",
        id="selinux context without type",
    ),
    *(
        pytest.param(
            lambda context=context: bundle(spec(permissions=[{"object": "/opt/app", "context": context}])),
            None,
            f"permissions[0].context (line 15) must have a range, the SELinux range to set, as s0 (got"
            f" {context!r}); CodeDeploy's agent fails the deployment at Install when a context without one"
            " applies to any file or folder",
            id=f"selinux context without range ({', '.join(context)})",
        )
        # The agent writes its plan with ChangeContextCommand#to_h, which reads the range unchecked
        # (install_instruction.rb:376-378).
        for context in (
            {"type": "httpd_sys_content_t"},
            {"name": "system_u", "type": "httpd_sys_content_t"},
            {"type": "httpd_sys_content_t", "range": None},
        )
    ),
    *(
        pytest.param(
            lambda written=written: bundle(
                spec(permissions=[{"object": "/opt/app", "context": {"type": "httpd_t", "range": written}}])
            ),
            None,
            f"permissions[0].context (line 15): range '{written}' is not an SELinux range CodeDeploy reads"
            f" ({why}); write s#[-s#][:c#[.c#],...], as s0-s0:c0.c1023",
            id=f"selinux range {written}",
        )
        for written, why in [
            ("s1-s0", "its high sensitivity is below its low one"),
            ("s0:c0.c1024", "category c1024 is above c1023"),
            ("s0:c5.c1", "category range c5.c1 runs backwards"),
            ("s0:c0.c3,c2", "it lists a category more than once"),
            ("s0-", "'s0-' has an empty part"),
            ("0", "'0' is not a sensitivity (s and a number)"),
            ("s0:c1,,c2", "'' is not a category (c and a number)"),
        ]
    ),
    pytest.param(
        lambda: bundle(
            spec(permissions=[{"object": "/opt/app", "context": {"type": "httpd_t", "range": 0}}])
        ),
        None,
        "permissions[0].context (line 15): range must be text, as s0-s0:c0.c1023 (got 0)",
        id="selinux range not text",
    ),
    # appspec.yml against the bundle
    pytest.param(
        lambda: bundle(without=["scripts/start.sh"]),
        None,
        "hook script scripts/start.sh named in appspec.yml (ApplicationStart) is not in the bundle",
        id="missing hook script",
    ),
    pytest.param(
        lambda: bundle(spec(hooks={"ValidateService": [{"location": "scripts"}]})),
        None,
        "hook script scripts named in appspec.yml (ValidateService) is not in the bundle",
        id="hook script is a folder",
    ),
    pytest.param(
        lambda: bundle(
            spec(hooks={"ApplicationStart": [{"location": "scripts/start server.sh"}]}),
            extra=[("scripts/start server.sh", "#!/bin/sh\n")],
        ),
        None,
        "hook script scripts/start server.sh (ApplicationStart) has ' ' in its location: CodeDeploy's"
        " agent runs the script as one unquoted command line",
        id="space in a hook script's name",
    ),
    pytest.param(
        lambda: bundle(
            spec(hooks={"ApplicationStart": [{"location": "scripts/start.sh", "runas": "app;id"}]})
        ),
        None,
        "hook script scripts/start.sh (ApplicationStart) has ';' in its runas",
        id="shell character in runas",
    ),
    pytest.param(
        lambda: bundle(spec(files=[{"source": "/web", "destination": "/var/www"}])),
        None,
        "files source /web named in appspec.yml is not in the bundle",
        id="missing files source",
    ),
    # the Install step the agent plans from appspec.yml and the bundle (installer.rb, generate_instructions)
    pytest.param(
        lambda: bundle(
            spec(files=[*BASE_SPEC["files"], {"source": "app/server.py", "destination": "/opt/app"}])
        ),
        None,
        "files[1] (line 6) installs 'app/server.py' at '/opt/app/server.py', where files[0] (line 4)"
        " already installs 'app/server.py': CodeDeploy's agent refuses two source files for the same"
        " destination and fails the deployment at Install; map only one of them there",
        id="a file where its folder's mapping puts it",
    ),
    pytest.param(
        lambda: bundle(
            spec(
                files=[
                    {"source": "/", "destination": "/opt/app"},
                    {"source": "app", "destination": "/opt/app/app/"},
                ]
            )
        ),
        None,
        "files[1] (line 6) installs 'app/server.py' at '/opt/app/app/server.py', where files[0] (line 4)"
        " already installs 'app/server.py'",
        id="a folder where the whole bundle's mapping puts it",
    ),
    pytest.param(
        lambda: bundle(
            spec(
                files=[
                    {"source": "/app", "destination": "/opt/app"},
                    {"source": "scripts", "destination": "/opt/./web/../app/"},
                ],
                hooks=None,
            ),
            extra=[("scripts/server.py", "print('other')\n")],
        ),
        None,
        "files[1] (line 6) installs 'scripts/server.py' at '/opt/app/server.py', where files[0] (line 4)"
        " already installs 'app/server.py'",
        id="one destination written two ways",
    ),
    pytest.param(
        lambda: bundle(
            spec(
                permissions=[
                    {"object": "/opt/app", "owner": "app"},
                    {"object": "/opt/app/server.py", "mode": 644},
                ]
            )
        ),
        None,
        "permissions[1] (line 16) sets permissions on '/opt/app/server.py', which permissions[0] (line 14)"
        " already sets: CodeDeploy's agent refuses permissions set twice on one file and fails the"
        " deployment at Install; narrow one of them with pattern, except or type",
        id="permissions twice on one file",
    ),
    pytest.param(
        lambda: bundle(
            spec(
                permissions=[
                    {"object": "/opt/app", "pattern": "*.py", "owner": "app"},
                    {"object": "/opt/", "except": ["*.py"], "mode": 644},
                ]
            )
        ),
        None,
        "permissions[1] (line 17) sets permissions on '/opt/app/server.py', which permissions[0] (line 14)",
        id="permissions twice on one file, except matching names in its folder only",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": "/opt/app/server.py", "pattern": "*.py", "mode": 644}])),
        None,
        "permissions[0].pattern (line 15) is '*.py', but the object '/opt/app/server.py' is a file the"
        " bundle installs: CodeDeploy's agent refuses a pattern on a file and fails the deployment at"
        " Install; drop pattern, or make object the folder",
        id="pattern on a file",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": " /opt/app//server.py", "except": ["*.sh"]}])),
        None,
        "permissions[0].except (line 15) is set, but the object ' /opt/app//server.py' is a file the bundle"
        " installs ('/opt/app/server.py'): CodeDeploy's agent refuses except on a file and fails the"
        " deployment at Install; drop except, or make object the folder",
        id="except on a file",
    ),
    pytest.param(
        lambda: bundle(spec(permissions=[{"object": "/opt/app", "acls": ["u:app:rwx", "d:u:app:rx"]}])),
        None,
        "permissions[0].acls[1] (line 17) is a default ACL entry ('d:u:app:rx'), and the permission on"
        " '/opt/app' sets the file '/opt/app/server.py' the bundle installs: CodeDeploy's agent sets default"
        " ACLs on folders only and fails the deployment at Install; give this permission type: [directory],"
        " and set the files' ACLs in another permission",
        id="default acl reaching a file",
    ),
    pytest.param(
        lambda: bundle(
            spec(
                permissions=[{"object": "/opt/app/server.py", "type": ["file"], "acls": ["default:g:web:r"]}]
            )
        ),
        None,
        "permissions[0].acls[0] (line 18) is a default ACL entry ('default:g:web:r'), and the permission on"
        " '/opt/app/server.py' sets the file '/opt/app/server.py'",
        id="default acl on a file",
    ),
    pytest.param(
        lambda: bundle(extra=[("rollout.yml", "steps: []\n")]),
        None,
        "the bundle has rollout.yml; canaryfleet reads only rollout.yaml",
        id="rollout.yml",
    ),
]


def _unflagged_utf8_script(create_system: int) -> bytes:
    """A bundle whose hook script is named café.sh the way Info-ZIP's zip 3.0 writes it on Linux:
    its UTF-8 bytes, without the UTF-8 flag; made on ``create_system`` (3 Unix, 0 DOS/Windows)."""
    info = entry_info("scripts/cafXX.sh")
    info.create_system = create_system
    appspec = spec(hooks={"ApplicationStart": [{"location": "scripts/caf\u00e9.sh"}]})
    data = bundle(appspec, extra=[(info, "#!/bin/sh\nexec true\n")])
    return with_raw_name(data, b"scripts/cafXX.sh", b"scripts/caf\xc3\xa9.sh")


def test_given_a_linux_zip_r_name_in_utf8_without_the_flag_when_validated_then_it_is_that_name() -> None:
    # The agent's unzip writes a Unix-made entry's name bytes as they are: on the instance the
    # script is scripts/café.sh, the file the appspec names.
    report = validate_bundle(_unflagged_utf8_script(create_system=3))

    assert report.hooks == {"ApplicationStart": ["scripts/caf\u00e9.sh"]}


def test_given_a_windows_made_name_without_the_flag_when_validated_then_it_is_ambiguous() -> None:
    # A DOS/Windows-made entry's name is in a code page unzip converts: which file it names depends
    # on the unzip, so it is refused.
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(_unflagged_utf8_script(create_system=0))

    assert "is not ASCII and the zip does not mark it as UTF-8" in refused.value.reason


@pytest.mark.parametrize(("make", "limits", "reason"), REJECTIONS)
def test_given_a_bundle_breaking_a_rule_when_validated_then_the_reason_names_the_rule(
    make: Callable[[], bytes], limits: BundleLimits | None, reason: str
) -> None:
    with pytest.raises(InvalidBundle) as raised:
        validate_bundle(make(), limits or BundleLimits())

    assert reason in raised.value.reason


# --- rollout.yaml ---------------------------------------------------------------------------------------
def test_given_no_rollout_yaml_when_the_policy_is_read_then_it_is_the_base_policy() -> None:
    base = default_policy()

    assert bundle_policy(bundle(), base, PolicyLimits()) is base


def test_given_rollout_yaml_steps_when_the_policy_is_read_then_they_replace_the_base_steps() -> None:
    document = {
        "steps": [
            {"kind": "set_weight", "weight": 10},
            {"kind": "bake", "duration_seconds": 900},
            {"kind": "set_weight", "weight": 25},
            {"kind": "bake", "duration_seconds": 900},
            {"kind": "approval"},
        ]
    }

    policy = bundle_policy(rollout(document), default_policy(), PolicyLimits())

    assert policy.steps == (
        SetWeight(weight=10),
        Bake(duration_seconds=900),
        SetWeight(weight=25),
        Bake(duration_seconds=900),
        Approval(),
    )
    assert policy.deployment_timeout_seconds == default_policy().deployment_timeout_seconds


def test_given_only_a_deployment_timeout_when_the_policy_is_read_then_the_base_steps_stay() -> None:
    policy = bundle_policy(rollout({"deployment_timeout_seconds": 900}), default_policy(), PolicyLimits())

    assert policy == default_policy().model_copy(update={"deployment_timeout_seconds": 900})


def test_given_a_rollout_yaml_with_a_utf8_bom_when_the_policy_is_read_then_it_is_read_alike() -> None:
    # Only canaryfleet reads rollout.yaml, and its YAML skips the BOM that fails the agent on appspec.yml.
    data = bundle(extra=[("rollout.yaml", "\ufeff" + dump({"deployment_timeout_seconds": 900}))])

    policy = bundle_policy(data, default_policy(), PolicyLimits())

    assert policy.deployment_timeout_seconds == 900
    assert validate_bundle(data).has_rollout_yaml is True


def test_given_base_steps_beyond_the_limits_when_the_bundle_leaves_them_then_they_are_not_judged() -> None:
    base = RolloutPolicy(steps=(SetWeight(weight=80), Bake(duration_seconds=60)))

    policy = bundle_policy(rollout({"deployment_timeout_seconds": 900}), base, PolicyLimits())

    assert policy.steps == base.steps


def test_given_permissive_limits_when_promoting_on_timeout_without_approval_then_it_is_accepted() -> None:
    limits = PolicyLimits(require_approval=False, allow_promote_on_timeout=True)
    document = {"steps": [{"kind": "set_weight", "weight": 5}, {"kind": "approval", "on_timeout": "promote"}]}

    policy = bundle_policy(rollout(document), default_policy(), limits)

    assert policy.steps[1] == Approval(on_timeout=OnTimeout.PROMOTE)


POLICY_REJECTIONS = [
    pytest.param(
        # Only appspec.yml is read as the agent reads it (its first document); rollout.yaml is read whole.
        lambda: bundle(extra=[("rollout.yaml", "deployment_timeout_seconds: 900\n---\n")]),
        "rollout.yaml is not valid YAML: but found another document at line 2, column 1",
        id="two documents",
    ),
    pytest.param(
        lambda: bundle(extra=[("rollout.yaml", "deployment_timeout_seconds: 2024-13-45\n")]),
        "rollout.yaml is not valid YAML: '2024-13-45' is not a valid date or time at line 1, column 29",
        id="impossible date",
    ),
    pytest.param(
        lambda: rollout({"steps": [{"kind": "set_weight", "weight": 80}, {"kind": "approval"}]}),
        "steps[0] sets weight 80%, above the maximum canary weight 50%",
        id="weight",
    ),
    pytest.param(
        lambda: rollout(
            {
                "steps": [
                    {"kind": "set_weight", "weight": 5},
                    {"kind": "bake", "duration_seconds": 60},
                    {"kind": "approval"},
                ]
            }
        ),
        "steps[1] bakes for 60 s, less than the minimum 300 s",
        id="short bake",
    ),
    pytest.param(
        lambda: rollout(
            {"steps": [{"kind": "set_weight", "weight": 5}, {"kind": "bake", "duration_seconds": 600}]}
        ),
        "there is no approval step, and the platform requires one",
        id="no approval",
    ),
    pytest.param(
        lambda: rollout(
            {"steps": [{"kind": "set_weight", "weight": 5}, {"kind": "approval", "on_timeout": "promote"}]}
        ),
        "steps[1] promotes on timeout, which the platform does not allow",
        id="promote on timeout",
    ),
    pytest.param(
        lambda: rollout(
            {"steps": [{"kind": "set_weight", "weight": 90}, {"kind": "bake", "duration_seconds": 5}]}
        ),
        "goes beyond the platform's limits: steps[0] sets weight 90%, above the maximum canary weight 50%;"
        " steps[1] bakes for 5 s, less than the minimum 300 s; there is no approval step",
        id="every problem listed",
    ),
    pytest.param(
        lambda: rollout({"steps": [{"kind": "pause"}]}),
        "rollout.yaml is not a valid rollout policy: steps[0]: Input tag 'pause' found using 'kind'",
        id="unknown step kind",
    ),
    pytest.param(
        lambda: rollout({"steps": [{"kind": "set_weight", "weight": 150}]}),
        "steps[0].set_weight.weight: Input should be less than or equal to 100 (got 150)",
        id="weight above 100",
    ),
    pytest.param(
        lambda: rollout({"steps": [{"kind": "bake", "duration_seconds": 600}, {"kind": "approval"}]}),
        "a bake needs a set_weight above 0 before it",
        id="bake before weight",
    ),
    pytest.param(lambda: rollout({"steps": []}), "steps: Tuple should have at least 1 item", id="no steps"),
    pytest.param(
        lambda: rollout({"deployment_timeout_seconds": 0}),
        "deployment_timeout_seconds: Input should be greater than or equal to 1 (got 0)",
        id="timeout",
    ),
    pytest.param(
        lambda: rollout({"inconclusive_extensions": 3}),
        "rollout.yaml has unknown keys inconclusive_extensions; it may set only steps and",
        id="unknown key",
    ),
    pytest.param(
        lambda: rollout({"steps": [{"kind": "set_weight", "weight": 5, "extra": 1}]}),
        "steps[0].set_weight.extra: unknown key",
        id="unknown step key",
    ),
    pytest.param(lambda: rollout(["set_weight"]), "rollout.yaml must be a YAML mapping", id="a list"),
    pytest.param(
        lambda: bundle(extra=[("rollout.yaml", "s: &s {kind: approval}\nsteps: [*s]\n")]),
        "rollout.yaml uses a YAML alias (alias *s at line 2",
        id="alias",
    ),
    pytest.param(
        lambda: bundle(extra=[("rollout.yaml", "#" * 17_000)]),
        "rollout.yaml is 16.6 KiB; at most 16.0 KiB is allowed",
        id="too large",
    ),
]


@pytest.mark.parametrize(("make", "reason"), POLICY_REJECTIONS)
def test_given_a_rollout_yaml_breaking_a_rule_when_the_policy_is_read_then_the_reason_names_it(
    make: Callable[[], bytes], reason: str
) -> None:
    with pytest.raises(InvalidBundle) as raised:
        bundle_policy(make(), default_policy(), PolicyLimits())

    assert reason in raised.value.reason


def _bake_with(analysis: dict[str, Any] | None) -> bytes:
    bake: dict[str, Any] = {"kind": "bake", "duration_seconds": 600, "analysis": analysis}
    return rollout({"steps": [{"kind": "set_weight", "weight": 5}, bake, {"kind": "approval"}]})


PAYMENTS = {
    "name": "payment success",
    "direction": "decrease",
    "critical": True,
    "value": {
        "metric": {
            "namespace": "Pay",
            "metric_name": "Ok",
            "dimensions": {"Group": "{auto_scaling_group}"},
            "stat": "Sum",
        }
    },
    "requests": {
        "metric": {
            "namespace": "Pay",
            "metric_name": "All",
            "dimensions": {"Group": "{auto_scaling_group}"},
            "stat": "Sum",
        }
    },
}


@pytest.mark.parametrize(
    ("analysis", "reason"),
    [
        (None, "steps[1] bakes without analysis"),
        (
            {"alpha": 0.0001},
            "lowers the analysis's false-failure rate alpha to 0.0001, below the application's 0.05",
        ),
        ({"pass_score": 0}, "lowers the analysis's pass score to 0, below the application's 100"),
        ({"min_requests": 1}, "lowers the analysis's minimum requests to 1"),
        ({"alb_metrics": ["latency"]}, "leaves out the application's metrics 5xx_rate"),
        ({"metrics": []}, "leaves out the application's metrics payment success"),
    ],
    ids=["no analysis", "tiny alpha", "pass score 0", "few requests", "no 5xx rate", "own metric dropped"],
)
def test_a_rollout_yaml_cannot_make_the_canary_analysis_looser_than_the_applications(
    analysis: dict[str, Any] | None, reason: str
) -> None:
    # Given an application whose policy judges a payments metric beside the load balancer's
    base = default_policy()
    strict = AnalysisSpec.model_validate({"metrics": [PAYMENTS]})
    base = base.model_copy(
        update={
            "steps": tuple(
                s.model_copy(update={"analysis": strict}) if isinstance(s, Bake) else s for s in base.steps
            )
        }
    )
    if analysis is not None and "metrics" not in analysis:
        analysis = {**analysis, "metrics": [PAYMENTS]}

    with pytest.raises(InvalidBundle) as raised:
        bundle_policy(_bake_with(analysis), base, PolicyLimits())

    assert reason in raised.value.reason


def test_a_rollout_yaml_may_make_the_canary_analysis_stricter() -> None:
    policy = bundle_policy(_bake_with({"alpha": 0.1, "min_requests": 500}), default_policy(), PolicyLimits())

    [bake] = [s for s in policy.steps if isinstance(s, Bake)]
    assert bake.analysis is not None and bake.analysis.min_requests == 500


def test_given_a_bundle_that_is_not_a_zip_when_the_policy_is_read_then_it_is_rejected() -> None:
    with pytest.raises(InvalidBundle, match="not a zip file"):
        bundle_policy(b"PK\x03\x04 and then nothing", default_policy(), PolicyLimits())


# --- properties ------------------------------------------------------------------------------------------
SAMPLE = rollout({"steps": [{"kind": "set_weight", "weight": 5}, {"kind": "approval"}]})


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten, some cut out, and maybe the end cut off."""
    damaged_data = bytearray(data)
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(damaged_data) - 1))
        damaged_data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(damaged_data) - 1))
        del damaged_data[start : start + draw(st.integers(1, 64))]
    return bytes(
        damaged_data[: draw(st.integers(0, len(damaged_data)))] if draw(st.booleans()) else damaged_data
    )


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.binary(max_size=512), damaged(SAMPLE)))
def test_any_bytes_are_either_accepted_or_rejected_with_invalid_bundle(data: bytes) -> None:
    for check in (
        lambda: validate_bundle(data),
        lambda: bundle_policy(data, default_policy(), PolicyLimits()),
    ):
        try:
            check()
        except InvalidBundle as exc:
            assert exc.reason


SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=6)
SCRIPT_PATH = st.builds(
    lambda folders, name: "/".join([*folders, f"{name}.sh"]), st.lists(SEGMENT, max_size=2), SEGMENT
)


@st.composite
def valid_appspecs(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """An EC2 appspec and the bundle paths of the scripts it names."""
    script = st.fixed_dictionaries(
        {"location": st.builds(str.__add__, st.sampled_from(["", "./", "/"]), SCRIPT_PATH)},
        optional={"timeout": st.integers(1, 1200), "runas": st.sampled_from(["root", "app"])},
    )
    hooks = draw(
        st.dictionaries(st.sampled_from(HOOK_EVENTS), st.lists(script, min_size=1, max_size=3), min_size=1)
    )
    paths = sorted({str(s["location"]).lstrip("./") for scripts in hooks.values() for s in scripts})
    folders = sorted({path.rsplit("/", 1)[0] for path in paths if "/" in path})
    sources = draw(st.lists(st.sampled_from(["/", *paths, *folders]), max_size=2))
    document = {
        "version": 0.0,
        "os": "linux",
        # One destination each: two mappings may not install one file (the agent's install_instruction.rb:85).
        "files": [
            {"source": source, "destination": f"/opt/app{index}"} for index, source in enumerate(sources)
        ],
        "hooks": hooks,
    }
    return document, paths


def zip_with_scripts(document: Mapping[str, Any], paths: Iterable[str]) -> bytes:
    return zip_of([("appspec.yml", dump(document)), *((path, "#!/bin/sh\n") for path in paths)])


@settings(max_examples=50, deadline=None)
@given(case=valid_appspecs())
def test_any_valid_appspec_with_its_scripts_present_is_accepted(
    case: tuple[dict[str, Any], list[str]],
) -> None:
    document, paths = case

    report = validate_bundle(zip_with_scripts(document, paths))

    assert set(report.hooks) == set(document["hooks"])
    assert {path for scripts in report.hooks.values() for path in scripts} == set(paths)


@settings(max_examples=50, deadline=None)
@given(case=valid_appspecs(), pick=st.integers(min_value=0))
def test_any_valid_appspec_missing_one_script_is_rejected_naming_it(
    case: tuple[dict[str, Any], list[str]], pick: int
) -> None:
    document, paths = case
    missing = paths[pick % len(paths)]

    with pytest.raises(InvalidBundle) as raised:
        validate_bundle(zip_with_scripts(document, [path for path in paths if path != missing]))

    assert raised.value.reason.startswith("hook script ")
    assert f"{missing} named in appspec.yml" in raised.value.reason


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("p99\n\nApprove or reject it here:\nhttps://evil.example/a/x", "U+000A"),
        ("p99\x1b[2K\x1b[1A\x1b[2K", "U+001B"),
        ("p99\u202espoof", "U+202E"),
    ],
    ids=["fake email lines", "terminal escape", "right-to-left override"],
)
def test_a_rollout_yaml_metric_name_is_one_printable_line(name: str, found: str) -> None:
    # Given a metric the uploader names with line breaks or characters that do not print: the
    # name is shown inside the platform's own lines (the approval email's verdict above the signed
    # link, `canaryfleet status` in a terminal), where it could pass for one of them
    extra = {**PAYMENTS, "name": name, "critical": False}

    # When the bundle's policy is read
    with pytest.raises(InvalidBundle) as raised:
        bundle_policy(_bake_with({"metrics": [extra]}), default_policy(), PolicyLimits())

    # Then it is refused, naming the characters
    assert raised.value.reason.startswith(
        "rollout.yaml is not a valid rollout policy: steps[1].bake.analysis.metrics[0].name: must be one"
        f" line of printable characters and spaces; found {found}"
    )


def test_a_rollout_yaml_metric_name_in_any_script_is_fine() -> None:
    extra = {**PAYMENTS, "name": "p99 latence (ms) — caisse", "critical": False}

    policy = bundle_policy(_bake_with({"metrics": [extra]}), default_policy(), PolicyLimits())

    [bake] = [s for s in policy.steps if isinstance(s, Bake)]
    assert bake.analysis is not None and bake.analysis.metrics[0].name == "p99 latence (ms) — caisse"


def _in_one_folder(folder: str, *more: Entry) -> bytes:
    """The bundle as `zip -r app.zip app/` makes it: the folder's entry, then everything inside."""
    files: dict[str, bytes | str] = {
        "appspec.yml": spec(),
        "scripts/start.sh": "#!/bin/sh\nexec python3 /opt/app/server.py\n",
        "scripts/stop.sh": "#!/bin/sh\npkill -f server.py || true\n",
        "app/server.py": "print('hello')\n",
        "rollout.yaml": dump({"steps": [{"kind": "set_weight", "weight": 20}, {"kind": "approval"}]}),
    }
    entries: list[Entry] = [(f"{folder}/", b"")]
    entries += [(f"{folder}/{name}", data) for name, data in files.items()]
    return zip_of([*entries, *more])


def test_given_bsdtars_entry_for_the_root_before_the_folder_when_validated_then_it_deploys_from_inside() -> (
    None
):
    # `bsdtar --format zip -cf app.zip -C parent .` writes "./" first; unzip makes nothing for it, so
    # the root holds the one folder and the agent strips it
    folder = zipfile.ZipFile(io.BytesIO(_in_one_folder("hello-app")))
    data = zip_of([("./", b""), *((info.filename, folder.read(info)) for info in folder.infolist())])

    report = validate_bundle(data)

    assert report.hooks == {"ApplicationStart": ["scripts/start.sh"], "ApplicationStop": ["scripts/stop.sh"]}
    assert report.notes[0].startswith("the bundle's files are inside one folder, hello-app/")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            "appspec.yml",
            "appspec.yml is compressed with Deflate64, which canaryfleet cannot read to check it; zip it"
            " with Deflate, the usual zip compression (7-Zip: -mm=Deflate)",
        ),
        (
            "app/server.py",
            "entry 'app/server.py' is compressed with Deflate64, which canaryfleet cannot decompress to"
            " check that it unpacks to the size it states; zip it with Deflate, the usual zip compression"
            " (7-Zip: -mm=Deflate)",
        ),
    ],
)
def test_given_a_deflate64_entry_when_validated_then_it_is_refused_as_unverifiable(
    entry: str, reason: str
) -> None:
    # The agent's unzip 6.0 reads Deflate64 (7-Zip's -mm=Deflate64); Python cannot decompress it, so
    # neither the appspec nor whether an entry unpacks to the size it states could be checked. The
    # entry's data is left as deflate: only the directory's method field matters to the check.
    data = with_directory_field(bundle(), entry, "compress_type", 9)

    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(data)

    assert refused.value.reason == reason


def test_given_a_zip_of_the_folder_itself_when_validated_then_it_deploys_from_inside_it_with_a_note() -> None:
    # The agent unpacks a zip whose only root entry is a folder holding an appspec from inside
    # that folder (command_executor.rb: "If the top level of the archive is a directory that
    # contains an appspec, strip that")
    data = _in_one_folder("hello-app")

    report = validate_bundle(data)
    policy = bundle_policy(data, default_policy(), PolicyLimits())

    assert report.hooks == {"ApplicationStart": ["scripts/start.sh"], "ApplicationStop": ["scripts/stop.sh"]}
    assert report.has_rollout_yaml
    assert report.notes[0] == (
        "the bundle's files are inside one folder, hello-app/: CodeDeploy's agent deploys from inside it,"
        " as if the zip were made from within the folder"
    )
    assert [step.kind for step in policy.steps] == ["set_weight", "approval"]


@pytest.mark.parametrize(
    "more",
    [[("__MACOSX/hello-app/._appspec.yml", b"")], [("README.md", b"# hello")]],
    ids=["macos resource folder beside it", "a file beside it"],
)
def test_given_a_folder_with_something_beside_it_when_validated_then_the_appspec_is_not_at_the_root(
    more: list[Entry],
) -> None:
    # The agent strips the folder only when it is the archive's one root entry
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(_in_one_folder("hello-app", *more))

    assert refused.value.reason.startswith("the bundle has no appspec.yml at its root")
