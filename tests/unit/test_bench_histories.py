"""How the bench counts what Step Functions bills: states entered, and every retry of a Task."""

from __future__ import annotations

from bench.histories import Execution, HistoryEvent


def _execution(*events: tuple[str, str | None]) -> Execution:
    return Execution(
        "arn:aws:states:us-east-1:123456789012:execution:rollout:r1",
        "SUCCEEDED",
        None,
        tuple(HistoryEvent(at=float(n), type=kind, state=state) for n, (kind, state) in enumerate(events)),
    )


def test_a_task_retried_twice_is_three_transitions_and_a_state_entered_again_is_two() -> None:
    execution = _execution(
        ("ExecutionStarted", None),
        ("TaskStateEntered", "Wait for healthy capacity"),
        ("TaskScheduled", None),
        ("TaskFailed", None),
        ("TaskScheduled", None),  # its Retry: billed
        ("TaskFailed", None),
        ("TaskScheduled", None),  # and again
        ("TaskSucceeded", None),
        ("TaskStateExited", "Wait for healthy capacity"),
        ("TaskStateEntered", "Shift canary traffic"),
        ("LambdaFunctionScheduled", None),
        ("TaskStateExited", "Shift canary traffic"),
        ("TaskStateEntered", "Shift canary traffic"),  # a loop's second pass: a new state entry
        ("LambdaFunctionScheduled", None),
        ("ExecutionSucceeded", None),
    )

    assert execution.retries == 2
    assert execution.transitions == len(execution.states_entered) + 2 == 5
