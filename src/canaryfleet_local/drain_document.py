"""template.yaml's drain document, run off an instance as Run Command runs it on one.

Run Command gives the instance's shell the document's ``aws:runShellScript`` lines, each
``{{ Name }}`` replaced by its parameter's value (AWS Systems Manager User Guide, "Command document
plugin reference", aws:runShellScript; "Data elements and parameters": a parameter is referenced as
``{{ ParameterName }}``). On an instance the document reads /etc/canaryfleet/instance.env, the
logs under /var/log and its state under /var/lib/canaryfleet; ``OffInstance`` puts them in a
folder (the document's ``CANARYFLEET_*`` overrides, there for this only) with its tools in the
folder's bin, first on PATH. Used by the document's unit tests and the bench's figure 10.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PARAMETER = re.compile(r"\{\{ (\w+) \}\}")


def drain_script(template: Mapping[str, Any]) -> str:
    """The drain document's shell script, as a parsed template.yaml holds it."""
    content = template["Resources"]["DrainDocument"]["Properties"]["Content"]
    return "\n".join(content["mainSteps"][0]["inputs"]["runCommand"])


@dataclass
class OffInstance:
    """A folder standing for one instance of ``application``: its instance.env, its logs
    (``logs``), its state, and a bin folder holding a real python3 and the tools added."""

    root: Path
    application: str
    instance_id: str

    def __post_init__(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        # A real interpreter: a version manager's shim (pyenv's) puts its own folder, and any
        # `aws` in it, first on PATH.
        (self.bin / "python3").symlink_to(sys.executable)
        (self.root / "instance.env").write_text(
            f"APPLICATION={self.application}\nROLE=live\nINSTANCE_ID={self.instance_id}\n"
            f"LOG_PREFIX={self.application}/\n"
        )

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def logs(self) -> Path:
        return self.root / "var-log" / self.application

    def tool(self, name: str, text: str) -> None:
        """Put an executable ``name`` in the instance's bin folder."""
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def environment(self, path: str) -> dict[str, str]:
        """The variables that point the document at this folder, with ``path`` after its bin."""
        return {
            "PATH": f"{self.bin}:{path}",
            "CANARYFLEET_ENV_FILE": str(self.root / "instance.env"),
            "CANARYFLEET_LOG_ROOT": str(self.root / "var-log"),
            "CANARYFLEET_STATE_DIR": str(self.root / "state"),
        }


def run_document(
    script: str, parameters: Mapping[str, str], env: Mapping[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with its parameters in place, as Run Command does, in bash."""
    text = _PARAMETER.sub(lambda m: parameters[m.group(1)], script)
    return subprocess.run(  # noqa: S603 - template.yaml's own document, as an instance runs it
        ["bash", "-c", text],  # noqa: S607 - the shell on PATH, as Run Command's
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
