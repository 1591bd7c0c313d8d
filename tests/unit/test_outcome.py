import json

import pytest
from canaryfleet.logic.outcome import explain


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        (
            "CanaryAlarm",
            "canary alarm hello-app-canary-5xx went to ALARM: Threshold Crossed",
            ("rolled_back", "canary alarm hello-app-canary-5xx went to ALARM: Threshold Crossed"),
        ),
        (
            "AnalysisFailed",
            json.dumps({"errorType": "AnalysisFailed", "errorMessage": "analysis failed: canary latency 3x"}),
            ("rolled_back", "analysis failed: canary latency 3x"),
        ),
        (
            "DeploymentFailed",
            "deployment d-1 failed",
            ("rolled_back", "deployment failed: deployment d-1 failed"),
        ),
        (
            "Rejected",
            json.dumps({"by": "alice@example.com", "reason": "not during the sale"}),
            ("rejected", "rejected by alice@example.com: not during the sale"),
        ),
        ("Aborted", "aborted by bob: pager storm", ("rolled_back", "aborted by bob: pager storm")),
        (
            "ApprovalTimedOut",
            "nobody approved before the approval timeout",
            ("rolled_back", "nobody approved before the approval timeout"),
        ),
        ("States.TaskFailed", None, ("rolled_back", "failed (States.TaskFailed)")),
    ],
)
def test_every_way_a_rollout_ends_badly_reads_as_a_sentence(
    error: str, cause: str | None, expected: tuple[str, str]
) -> None:
    outcome, _, reason = explain(error, cause)

    assert (outcome, reason) == expected
