import logging
import os
import sys

# pytest keeps each test module's assertion-rewritten bytecode in __pycache__ only when Python may
# write bytecode; where PYTHONDONTWRITEBYTECODE is set (as on this machine), each of `make
# test`'s workers rewrote and compiled every test module again: about 3 s of CPU per worker.
sys.dont_write_bytecode = False

# Powertools metrics print EMF to stdout and warn when a test emits none; tests read
# metrics through fakes where they matter.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "canaryfleet-test")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "canaryfleet-test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# EMF lines on stdout would mix with what CLI tests read; no test reads metrics from stdout.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# moto logs every state failure of an execution at ERROR with its whole parse tree; the
# tests assert on outcomes and reasons instead.
logging.getLogger("moto").setLevel(logging.CRITICAL)

from hypothesis import settings  # noqa: E402 - after the environment above

# The suite explores the same examples on every run (a landing must not depend on luck);
# HYPOTHESIS_PROFILE=explore searches afresh, with a new seed each time.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
