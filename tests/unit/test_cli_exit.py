"""`canaryfleet` leaves what a command made to the process's end.

A command that ran a local cloud ends with hundreds of thousands of objects, and the
interpreter's garbage collection at exit walked them all (1.3 to 1.7 s of `make demo`). The
command freezes them when it exits instead. Nothing here is timed.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

# An exit handler registered before the command runs runs after the command's own (last in, first out).
_COMMAND_THEN_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
sys.argv = ["canaryfleet", "--version"]
from canaryfleet_cli.main import main
main()
"""


def test_a_command_leaves_its_objects_frozen_when_the_process_exits() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND_THEN_EXIT], check=False, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip().splitlines()
    assert printed[0].startswith("canaryfleet "), "the command ran"
    assert printed[-1] == "frozen at exit: True"


def test_the_installed_command_is_the_one_that_freezes() -> None:
    [script] = entry_points(group="console_scripts", name="canaryfleet")

    assert script.value == "canaryfleet_cli.main:main"
