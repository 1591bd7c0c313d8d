import pytest
from canaryfleet.models.policy import Approval, Bake, OnTimeout, RolloutPolicy, SetWeight, default_policy
from canaryfleet.models.rollout import RolloutPlan
from pydantic import ValidationError


def test_the_default_policy_is_five_percent_a_bake_with_analysis_and_an_approval() -> None:
    policy = default_policy()

    assert [type(s) for s in policy.steps] == [SetWeight, Bake, Approval]
    assert policy.max_weight == 5
    bake = policy.steps[1]
    assert isinstance(bake, Bake) and bake.analysis is not None
    approval = policy.steps[2]
    assert isinstance(approval, Approval) and approval.on_timeout is OnTimeout.ROLLBACK


def test_steps_are_a_one_of_chosen_by_kind() -> None:
    policy = RolloutPolicy.model_validate(
        {"steps": [{"kind": "set_weight", "weight": 20}, {"kind": "bake", "duration_seconds": 60}]}
    )

    assert isinstance(policy.steps[0], SetWeight) and isinstance(policy.steps[1], Bake)


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([{"kind": "bake", "duration_seconds": 60}], "a bake needs a set_weight above 0"),
        ([{"kind": "set_weight", "weight": 101}], "less than or equal to 100"),
        ([{"kind": "pause"}], "does not match any of the expected tags"),
        ([{"kind": "approval", "timeout_seconds": 0}], "greater than or equal to 1"),
        ([], "at least 1 item"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(steps: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        RolloutPolicy.model_validate({"steps": steps})


def test_the_plan_tells_each_bake_whether_a_person_will_see_its_verdict() -> None:
    policy = RolloutPolicy.model_validate(
        {
            "steps": [
                {"kind": "set_weight", "weight": 5},
                {"kind": "bake", "duration_seconds": 60},
                {"kind": "approval"},
                {"kind": "set_weight", "weight": 50},
                {"kind": "bake", "duration_seconds": 60},
            ]
        }
    )

    plan = RolloutPlan.of(policy)

    bakes = [s for s in plan.steps if s.kind == "bake"]
    assert [b.approval_follows for b in bakes] == [True, False]
    assert [s.index for s in plan.steps] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("interval", "alb_metrics", "period", "finer"),
    [
        (60, ("5xx_rate", "latency"), 60, False),
        (120, ("5xx_rate",), 60, False),
        (30, ("latency",), 60, True),
        (30, ("5xx_rate", "latency"), 20, True),
        (10, (), 60, False),  # only the application's own (high-resolution) metrics
        (1, ("5xx_rate", "latency"), 1, False),  # the local cloud's per-second metrics
    ],
)
def test_a_bake_may_not_sample_the_load_balancer_more_often_than_it_publishes(
    interval: int, alb_metrics: tuple[str, ...], period: int, finer: bool
) -> None:
    own = {"metric": {"namespace": "Pay", "metric_name": "Succeeded", "stat": "Sum"}}
    metrics = [] if alb_metrics else [{"name": "payments", "direction": "decrease", "value": own}]
    analysis = {"interval_seconds": interval, "alb_metrics": alb_metrics, "metrics": metrics}
    policy = RolloutPolicy.model_validate(
        {
            "steps": [
                {"kind": "set_weight", "weight": 5},
                {"kind": "bake", "duration_seconds": 600, "analysis": analysis},
                {"kind": "approval"},
            ]
        }
    )

    problems = policy.intervals_finer_than(period)

    assert bool(problems) is finer
    assert all(p.startswith("steps[1] samples the load balancer's metrics") for p in problems)


def _one_bake(duration: int, interval: int) -> RolloutPolicy:
    own = {"metric": {"namespace": "Pay", "metric_name": "Succeeded", "stat": "Sum"}}
    analysis = {
        "interval_seconds": interval,
        "alb_metrics": [],
        "metrics": [{"name": "payments", "direction": "decrease", "value": own}],
    }
    return RolloutPolicy.model_validate(
        {
            "steps": [
                {"kind": "set_weight", "weight": 5},
                {"kind": "bake", "duration_seconds": duration, "analysis": analysis},
                {"kind": "approval"},
            ]
        }
    )


@pytest.mark.parametrize(
    ("duration", "interval", "problem"),
    [
        (600, 60, None),
        (86_400, 60, None),  # a day of minutes: the most one analysis judges
        (10_500, 30, None),  # under a minute: CloudWatch's 3 hours, less 5 minutes for the analysis
        (10_501, 30, "bake at most 10500 s, or make interval_seconds 60 or more"),
        (4 * 3_600, 10, "CloudWatch keeps data of a period under 60 s for 3 hours"),
        (1_440, 1, None),
        (
            1_441,
            1,
            "more than the 1440 intervals one analysis judges: bake at most 1440 s, "
            "or make interval_seconds 5",
        ),
        (86_400, 120, None),
    ],
)
def test_a_bake_is_no_longer_than_its_analysis_can_read(
    duration: int, interval: int, problem: str | None
) -> None:
    problems = _one_bake(duration, interval).bakes_beyond_their_analysis()

    if problem is None:
        assert problems == []
    else:
        [said] = problems
        assert said.startswith(f"steps[1] bakes {duration} s sampled every {interval} s")
        assert problem in said


def test_the_default_policy_is_read_whole_by_its_analysis() -> None:
    assert default_policy().bakes_beyond_their_analysis() == []
