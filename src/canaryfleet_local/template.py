"""template.yaml, read and transformed the way `sam deploy` would, for the local cloud.

The SAM template is the only description of the platform: the local cloud packages the
code folders it names, transforms it with aws-sam-translator, and hands the result to
moto's CloudFormation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canaryfleet.logic.bundle.archive import zip_folder
from samtranslator.translator.transform import transform

from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.lambda_ import FunctionCode

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
_SUBSTITUTION_OUTPUT = "LocalCloudSubstitution"


class _NoManagedPolicies:
    """aws-sam-translator asks IAM for managed policy ARNs; the template names none by bare name."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass
class StateMachineSource:
    """A state machine as the template declares it: its ASL file and substitution outputs."""

    logical_id: str
    definition: str
    substitution_outputs: dict[str, str] = field(default_factory=dict)  # key -> output name
    role_output: str = ""


@dataclass
class PreparedTemplate:
    """The transformed template, the code packages to upload, and what moto needs help with."""

    cloudformation: dict[str, Any]
    packages: dict[str, bytes]  # S3 key -> zip bytes
    functions: dict[str, FunctionCode]  # logical id -> handler location
    state_machines: list[StateMachineSource]


# Speed-ups, one for the process (every test builds a local cloud from the same folders and
# template): a folder's zip is kept while none of its files changed (names, sizes, modes and
# modification times), and aws-sam-translator's output per SAM document and parameters. Each
# caller gets its own copy of a kept transform.
_KEPT = 8
_zips: dict[tuple[Path, tuple[tuple[str, int, int, int], ...]], bytes] = {}
_transforms: dict[str, dict[str, Any]] = {}
_kept_lock = threading.Lock()


def _zip_folder_once(folder: Path) -> bytes:
    files = []
    for path in folder.rglob("*"):
        if path.is_file():
            status = path.stat()
            files.append(
                (path.relative_to(folder).as_posix(), status.st_size, status.st_mtime_ns, status.st_mode)
            )
    key = (folder, tuple(sorted(files)))
    with _kept_lock:
        zipped = _zips.get(key)
    if zipped is None:
        zipped = zip_folder(folder)
        with _kept_lock:
            if len(_zips) >= 4 * _KEPT:
                _zips.clear()
            _zips[key] = zipped
    return zipped


def _transform_once(sam: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    # The translator reads the region (AWS::Region, partitions, ARNs) from boto3's environment.
    region = [os.environ.get(name) for name in ("AWS_REGION", "AWS_DEFAULT_REGION")]
    key = hashlib.sha256(json.dumps([sam, parameters, region], sort_keys=True).encode()).hexdigest()
    with _kept_lock:
        transformed = _transforms.get(key)
    if transformed is None:
        transformed = transform(sam, parameters, _NoManagedPolicies())
        with _kept_lock:
            if len(_transforms) >= _KEPT:
                _transforms.clear()
            _transforms[key] = transformed
    return copy.deepcopy(transformed)


def load_sam(template_path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """template.yaml parsed (a fresh copy: callers may change it; parsed once per content)."""
    parsed: dict[str, Any] = parse_template(template_path.read_text())
    return parsed


def prepare(
    template_path: Path, code_bucket: str, parameters: dict[str, str] | None = None
) -> PreparedTemplate:
    """Package local code to ``code_bucket`` keys and transform SAM into CloudFormation."""
    base = template_path.parent
    sam = load_sam(template_path)
    packages: dict[str, bytes] = {}
    functions: dict[str, FunctionCode] = {}
    state_machines: list[StateMachineSource] = []
    outputs = sam.setdefault("Outputs", {})

    for logical_id, resource in sam["Resources"].items():
        props = resource.setdefault("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function":
            code_dir = (base / props["CodeUri"]).resolve()
            key = f"functions/{logical_id}.zip"
            packages[key] = _zip_folder_once(code_dir)
            props["CodeUri"] = f"s3://{code_bucket}/{key}"
            functions[logical_id] = FunctionCode(logical_id, code_dir, props["Handler"])
        elif kind == "AWS::Serverless::LayerVersion":
            key = f"layers/{logical_id}.zip"
            packages[key] = _zip_folder_once((base / props["ContentUri"]).resolve())
            props["ContentUri"] = f"s3://{code_bucket}/{key}"
        elif kind == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            definition = (base / props.pop("DefinitionUri")).read_text()
            props["Definition"] = json.loads(definition)
            source = StateMachineSource(logical_id=logical_id, definition=definition)
            # moto resolves Outputs; they carry each substitution's value back to us.
            for index, (name, value) in enumerate(props.get("DefinitionSubstitutions", {}).items()):
                output = f"{_SUBSTITUTION_OUTPUT}{logical_id}{index}"
                outputs[output] = {"Value": value}
                source.substitution_outputs[name] = output
            role = props.get("Role") or {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
            source.role_output = f"{_SUBSTITUTION_OUTPUT}{logical_id}Role"
            outputs[source.role_output] = {"Value": role}
            state_machines.append(source)

    cloudformation = _transform_once(sam, parameters or {})
    return PreparedTemplate(cloudformation, packages, functions, state_machines)
