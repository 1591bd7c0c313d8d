"""Retries draw their jitter from a generator of their own in the suite (tests/conftest.py), so a
thread still retrying when its test has ended never changes the ``random`` module's generator
while a Hypothesis test draws an example."""

import random
import threading
from types import SimpleNamespace
from typing import Any

import botocore.retryhandler
from botocore.retries.standard import ExponentialBackoff
from moto.stepfunctions.parser.asl.component.common.retry.jitter_strategy_decl import (
    JitterStrategy,
    JitterStrategyDecl,
)


def _on_a_thread(draw: Any) -> list[float]:
    drawn: list[float] = []
    thread = threading.Thread(target=lambda: drawn.extend(draw() for _ in range(50)))
    thread.start()
    thread.join()
    return drawn


def _full_jitter(interval: float) -> float:
    env = SimpleNamespace(stack=[interval])
    JitterStrategyDecl(JitterStrategy.FULL)._eval_body(env)  # type: ignore[arg-type]
    return float(env.stack.pop())


def test_retry_jitter_leaves_the_random_modules_generator_alone_and_is_still_random() -> None:
    state = random.getstate()
    context = SimpleNamespace(attempt_number=3, http_response=None, operation_model=None)
    backoff: Any = ExponentialBackoff()  # (botocore's stubs lag behind its private methods)
    backoff._get_base_scale = lambda _context: 1.0  # a throttling error's
    backoff._get_retry_after_delay = lambda _context: None
    delay_function: Any = botocore.retryhandler.create_exponential_delay_function
    legacy = delay_function(base="rand", growth_factor=2)

    standard = _on_a_thread(lambda: backoff.delay_amount(context))
    step_functions = _on_a_thread(lambda: _full_jitter(4.0))
    old_mode = _on_a_thread(lambda: legacy(attempts=1))

    assert random.getstate() == state
    for drawn, most in ((standard, 4.0), (step_functions, 4.0), (old_mode, 1.0)):
        assert all(0 <= value <= most for value in drawn)
        assert len(set(drawn)) > 40, "each retry waits a random share of its interval"
