import atexit
import gc
import logging
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

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

# Each worker ends with hundreds of thousands of objects (its clouds' moto state among them), and
# the interpreter's garbage collection at exit walked them all: about 1.6 s per process, paid at
# the end of the run. Exit handlers run once pytest has finished, its own collection for
# unraisable exceptions included; frozen objects are left to the process's end.
atexit.register(gc.freeze)

# moto logs every state failure of an execution at ERROR with its whole parse tree; the
# tests assert on outcomes and reasons instead.
logging.getLogger("moto").setLevel(logging.CRITICAL)

import boto3  # noqa: E402 - after the environment above
import botocore.retryhandler  # noqa: E402 - after the environment above
import pytest  # noqa: E402
from botocore.retries.standard import ExponentialBackoff  # noqa: E402
from canaryfleet.adapters import registry  # noqa: E402
from canaryfleet.adapters.clients import reset_clients  # noqa: E402
from hypothesis import settings  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl  # noqa: E402

from canaryfleet_local.botocore_data import one_botocore_data_loader  # noqa: E402
from tests.suite_order import groups_of, spread, uses_shared_fixture  # noqa: E402

# The suite explores the same examples on every run (a landing must not depend on luck);
# HYPOTHESIS_PROFILE=explore searches afresh, with a new seed each time.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session", autouse=True)
def botocore_data_read_once() -> Iterator[None]:
    """The tests' own boto3 sessions share botocore's parsed models, as each local cloud's do.

    moto's mock makes boto3's default session anew for every test, and each new session read
    botocore's endpoints and the models of the services it made clients for again: about 5% of
    the suite's CPU. The data are botocore's own, read once per worker
    (``canaryfleet_local.botocore_data``).
    """
    with one_botocore_data_loader():
        yield


@pytest.fixture(scope="session", autouse=True)
def retry_jitter_from_a_generator_of_its_own() -> Iterator[None]:
    """Retry jitter drawn from a generator of its own, not from the ``random`` module's.

    moto's Step Functions (the state machines' ``JitterStrategy: FULL``) and botocore's retries
    draw their jitter from the module's generator, sometimes on a thread that outlives the test
    that started it (an execution still retrying after its cloud closed). Hypothesis reports any
    change to that generator while it draws an example as the test's own use of ``random``
    (HypothesisDeprecationWarning), so a property test that shared a worker with such a thread
    failed to be quiet by chance. Each retry still waits a random share of its interval.
    """
    own = random.Random()
    defaults = tuple(
        own.random if value == random.random else value
        for value in ExponentialBackoff.__init__.__defaults__ or ()
    )
    with (
        mock.patch.object(jitter_strategy_decl, "random", own),
        mock.patch.object(botocore.retryhandler, "random", own),
        mock.patch.object(ExponentialBackoff.__init__, "__defaults__", defaults),
    ):
        yield


@pytest.fixture(autouse=True)
def platform_clients_made_in_a_test_end_with_it() -> Iterator[None]:
    """The runtime's boto3 clients, cached for the process (``canaryfleet.adapters.clients``), are
    forgotten when each test ends.

    A Lambda environment makes them once and keeps them, and its region and credentials never
    change. A test's can: a client the runtime made under a test's own region stayed cached for
    every later test of its worker. So ``test_aws_limits_local``'s notifier, made in eu-west-1,
    sent a later test's rejection notice to eu-west-1, where its topic does not exist (a test of
    ``test_start_rollout`` failed when the two shared a worker).

    boto3's default session, which the CLI's own clients use, goes too: it keeps the credentials
    it first found, so a test that connected with example keys left them to a later test of its
    worker that has none (``test_operator_cli``'s test without credentials then reached for AWS).
    """
    yield
    reset_clients()
    # The registry's SSMProvider (made once, with its own ssm client) caches each entry for 60 s:
    # a CLI test's hello-app, read in-process, was what a later test of its worker read instead
    # of its own (test_start_rollout's two uploads were rejected for the scenario's 1-s bake).
    registry._provider.cache_clear()
    boto3.DEFAULT_SESSION = None


_STORIES = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/e2e's stories spread evenly through the run (tests/suite_order.py says why).

    A test using a fixture kept across tests stays next to its module's others.
    """
    groups = groups_of(items, lambda item: item.path if uses_shared_fixture(item) else id(item))
    items[:] = spread(groups, lambda item: item.path.is_relative_to(_STORIES))
