"""A critical metric's fail-fast alarm: its names, its expression, its threshold, and who deletes it."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import pytest
from botocore.exceptions import ClientError
from canaryfleet.errors import CanaryAlarm, CriticalMetricFailed, TransientAwsError
from canaryfleet.logic.analysis.failfast import (
    MIN_PERIOD_EVENTS,
    MIN_PERIOD_REQUESTS,
    Z_THRESHOLD,
    alarm_names,
    alarm_period,
    critical_alarms,
)
from canaryfleet.logic.approval import ApprovalChannels, request_approval
from canaryfleet.logic.canary import analyse, begin_bake, check_alarms, on_alarm
from canaryfleet.logic.outcome import explain, finalize, roll_back
from canaryfleet.models.analysis import MetricDefinition, MetricQuery, MetricStatQuery
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.fail_fast import CriticalAlarm, metric_of
from canaryfleet.models.policy import AnalysisSpec
from canaryfleet.models.rollout import Revision, RolloutRef, Stage
from canaryfleet.models.rollout_record import Wait, WaitKind, WindowWait
from canaryfleet.models.tasks import (
    AlarmCheckTask,
    AnalyseTask,
    ApprovalTask,
    BakeTask,
    RollbackTask,
)
from canaryfleet.ports.clock import FixedClock

from canaryfleet_local.standins.cloudwatch_metric_math import (
    check_evaluable,
    check_put_metric_alarm,
    evaluate,
    parse_expression,
    referenced_ids,
)
from tests.unit.fakes import (
    T0,
    AppsRegistry,
    FakeAlarms,
    FakeDeployments,
    InMemoryRolloutStore,
    RecordingCallbacks,
    RecordingEndedApprovals,
    RecordingNotifier,
    a_rollout,
    an_app,
    hold_lock,
)

APP = "payments-api"
ROLLOUT_ID = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d"
REF = RolloutRef(application=APP, rollout_id=ROLLOUT_ID, version="2.7.0")
ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012"


def _app(application: str = APP) -> AppConfig:
    return an_app(application)


def _stat(name: str) -> MetricQuery:
    return MetricQuery(
        metric=MetricStatQuery(
            namespace="PaymentsApi",
            metric_name=name,
            dimensions={"AutoScalingGroupName": "{auto_scaling_group}"},
            stat="Sum",
        )
    )


def _payments(
    tolerance: float = 0.0, critical: bool = True, name: str = "payment success"
) -> MetricDefinition:
    return MetricDefinition(
        name=name,
        value=_stat("PaymentsSucceeded"),
        requests=_stat("Requests"),
        direction="decrease",
        critical=critical,
        tolerance=tolerance,
    )


def _spec(*metrics: MetricDefinition, interval: int = 60, alb: tuple[Any, ...] = ()) -> AnalysisSpec:
    return AnalysisSpec(interval_seconds=interval, alb_metrics=alb, metrics=metrics)


def _value(alarm: CriticalAlarm, inputs: dict[str, float | None]) -> float | None:
    """The value the alarm watches for one period, evaluated as the local cloud's CloudWatch does."""
    by_id = {q["Id"]: q for q in alarm.metrics}

    def of(qid: str) -> float | None:
        query = by_id[qid]
        if "MetricStat" in query:
            return inputs.get(qid)
        node = parse_expression(query["Expression"])
        return evaluate(node, {i: of(i) for i in referenced_ids(node)})

    returned = next(q for q in alarm.metrics if q["ReturnData"])
    return of(returned["Id"])


def _z(canary_rare: float, canary_n: float, live_rare: float, live_n: float, k: float = 1.0) -> float:
    pooled = (canary_rare + live_rare) / (canary_n + live_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / canary_n + 1 / live_n))
    return (canary_rare / canary_n - k * live_rare / live_n) / se


# -- names -----------------------------------------------------------------------------


def test_only_critical_metrics_get_an_alarm_named_after_the_application_and_the_metric() -> None:
    alarms, skipped = critical_alarms(_app(), _spec(_payments(), _payments(critical=False, name="refunds")))

    assert [a.name for a in alarms] == ["canaryfleet-payments-api.payment-success"]
    assert alarms[0].metric == "payment success" and skipped == []


def test_two_metrics_whose_names_read_alike_get_distinct_alarms() -> None:
    names = alarm_names([_payments(name="Payment success"), _payments(name="payment-success")], APP)

    assert names == {
        "Payment success": "canaryfleet-payments-api.payment-success",
        "payment-success": "canaryfleet-payments-api.payment-success-2",
    }


@pytest.mark.parametrize(
    ("alarm", "application", "metric"),
    [
        ("canaryfleet-payments-api.payment-success", "payments-api", "payment-success"),
        ("canaryfleet-payments-api.payment-success", "payments", None),  # another application's
        ("payments-api-canary-5xx-rate", "payments-api", None),  # the fleet's own alarm
        ("canaryfleet-payments-api.", "payments-api", None),
    ],
)
def test_a_fail_fast_alarm_is_known_by_its_application_and_no_other(
    alarm: str, application: str, metric: str | None
) -> None:
    assert metric_of(alarm, application) == metric


@pytest.mark.parametrize(("interval", "period"), [(1, 10), (10, 10), (15, 20), (30, 30), (60, 60), (90, 120)])
def test_an_alarm_looks_at_the_shortest_period_cloudwatch_takes_for_it(interval: int, period: int) -> None:
    assert alarm_period(interval) == period


# -- the ratio alarm -----------------------------------------------------------------


def test_a_ratio_alarm_watches_the_two_proportion_z_score_of_the_misses() -> None:
    [alarm], _ = critical_alarms(_app(), _spec(_payments()))

    # canary: 4500 of 5000 payments succeed (500 misses); live: 43650 of 45000 (1350 misses)
    value = _value(alarm, {"ce": 4500, "cr": 5000, "le": 43650, "lr": 45000})

    assert value == pytest.approx(_z(500, 5000, 1350, 45000))
    assert value is not None and value > Z_THRESHOLD


def test_a_ratio_alarm_on_errors_counts_a_period_without_an_error_datapoint_as_none() -> None:
    errors = MetricDefinition(name="errors", value=_stat("Errors"), requests=_stat("Requests"), critical=True)
    [alarm], _ = critical_alarms(_app(), _spec(errors))

    value = _value(alarm, {"ce": 30, "cr": 1000, "le": None, "lr": 9000})

    assert value == pytest.approx(_z(30, 1000, 0, 9000))


@pytest.mark.parametrize(
    "counts",
    [
        {"ce": 40, "cr": MIN_PERIOD_REQUESTS - 1, "le": 43650, "lr": 45000},  # too few canary requests
        {"ce": 5000, "cr": 5000, "le": 45000, "lr": 45000},  # no miss on either side
        {"ce": 4500, "cr": 5000, "le": 43650, "lr": None},  # live has no datapoint
    ],
)
def test_a_ratio_alarm_does_not_breach_on_a_period_it_cannot_judge(counts: dict[str, float | None]) -> None:
    [alarm], _ = critical_alarms(_app(), _spec(_payments()))

    value = _value(alarm, counts)

    assert value is None or value == 0


@pytest.mark.parametrize(("canary", "live"), [(300, 5700), (1000, 19000), (6000, 114000)])
def test_a_stray_canary_error_in_a_minute_live_had_none_never_scores(canary: int, live: int) -> None:
    # One 5xx at a 5% canary scored sqrt(live / canary) = 4.36 at any traffic: an exact test gives
    # that minute p = 0.05, and good canaries were rolled back in long bakes
    [alarm], _ = critical_alarms(_app(), _spec(_payments()))
    errors = MetricDefinition(name="errors", value=_stat("Errors"), requests=_stat("Requests"), critical=True)
    [on_errors], _ = critical_alarms(_app(), _spec(errors))

    assert _z(1, canary, 0, live) > Z_THRESHOLD  # what one stray error scored without the guard
    for stray in range(1, MIN_PERIOD_EVENTS):
        assert _value(on_errors, {"ce": stray, "cr": canary, "le": None, "lr": live}) == 0
    assert _value(alarm, {"ce": canary - 1, "cr": canary, "le": live, "lr": live}) == 0  # one miss
    # five, against live's none, is a canary plainly worse: it still scores
    assert (
        _value(on_errors, {"ce": MIN_PERIOD_EVENTS, "cr": canary, "le": None, "lr": live}) or 0
    ) > Z_THRESHOLD


def test_a_tolerance_makes_the_ratio_alarm_more_conservative() -> None:
    counts: dict[str, float | None] = {"ce": 4500, "cr": 5000, "le": 43650, "lr": 45000}
    [strict], _ = critical_alarms(_app(), _spec(_payments()))
    [tolerant], _ = critical_alarms(_app(), _spec(_payments(tolerance=0.5)))

    strict_z, tolerant_z = _value(strict, counts), _value(tolerant, counts)

    assert strict_z is not None and tolerant_z is not None
    assert tolerant_z == pytest.approx(_z(500, 5000, 1350, 45000, k=1.5)) and tolerant_z < strict_z


def test_looking_every_minute_for_an_hour_at_z_4_adds_well_under_one_percent_of_false_failures() -> None:
    one_look = 1 - NormalDist().cdf(Z_THRESHOLD)

    assert 60 * one_look < 0.01 / 4


# -- the continuous alarm ------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "canary", "live", "expected"),
    [("increase", 0.32, 0.08, 4.0), ("decrease", 0.08, 0.32, 4.0), ("either", 0.02, 0.08, 4.0)],
)
def test_a_continuous_alarm_watches_how_many_times_worse_the_canary_is(
    direction: Any, canary: float, live: float, expected: float
) -> None:
    latency = MetricDefinition(name="p50", value=_stat("Latency"), direction=direction, critical=True)
    [alarm], _ = critical_alarms(_app(), _spec(latency))

    assert _value(alarm, {"cv": canary, "lv": live}) == pytest.approx(expected)
    assert alarm.threshold == 2.0 and alarm.evaluation_periods == alarm.datapoints_to_alarm == 5


def test_the_load_balancers_metrics_get_alarms_too_as_the_critical_metrics_they_are() -> None:
    alarms, _ = critical_alarms(_app(), AnalysisSpec(interval_seconds=60))

    assert [a.name for a in alarms] == [
        "canaryfleet-payments-api.5xx-rate",
        "canaryfleet-payments-api.latency",
    ]
    dimensions = alarms[0].metrics[0]["MetricStat"]["Metric"]["Dimensions"]
    assert {"Name": "TargetGroup", "Value": "targetgroup/payments-api-canary/1"} in dimensions


def test_the_5xx_alarm_counts_the_requests_the_load_balancer_answered_for_the_canary() -> None:
    [five_xx, _], _ = critical_alarms(_app(), AnalysisSpec(interval_seconds=60))

    # canary: 300 requests, no target 5xx, 270 answered 2xx: 30 reset or timed out (the load
    # balancer's 502s and 504s); live: 2,700 requests, 2 target 5xx, the rest 2xx and 4xx
    counts: dict[str, float | None] = {"ce": None, "cr": 300, "ca0": 270, "ca1": None, "ca2": None}
    counts |= {"le": 2, "lr": 2700, "la0": 2600, "la1": None, "la2": 98}
    value = _value(five_xx, counts)

    assert value == pytest.approx(_z(30, 300, 2, 2700))
    assert value is not None and value > Z_THRESHOLD
    read = {q["Id"]: q["MetricStat"]["Metric"]["MetricName"] for q in five_xx.metrics if "MetricStat" in q}
    assert [read[f"ca{kind}"] for kind in range(3)] == [f"HTTPCode_Target_{n}XX_Count" for n in (2, 3, 4)]
    assert sum("MetricStat" in q for q in five_xx.metrics) == 10  # PutMetricAlarm's most


def test_the_5xx_alarm_counts_a_target_5xx_once_whatever_the_answered_counts_say() -> None:
    [five_xx, _], _ = critical_alarms(_app(), AnalysisSpec(interval_seconds=60))

    # The targets' own 5xx are not among the answered 2xx to 4xx: counted once, not twice
    counts: dict[str, float | None] = {"ce": 30, "cr": 300, "ca0": 270, "ca1": None, "ca2": None}
    counts |= {"le": 2, "lr": 2700, "la0": 2698, "la1": None, "la2": None}

    assert _value(five_xx, counts) == pytest.approx(_z(30, 300, 2, 2700))


# -- what PutMetricAlarm is given --------------------------------------------------


def test_every_alarm_is_one_putmetricalarm_accepts_and_the_local_cloud_evaluates() -> None:
    spec = AnalysisSpec(interval_seconds=1, metrics=(_payments(),))
    alarms, _ = critical_alarms(_app(), spec)

    for alarm in alarms:
        request = alarm.put_request()
        check_put_metric_alarm(request)
        check_evaluable(request)
        assert request["AlarmDescription"] == alarm.metric
        assert request["TreatMissingData"] == "notBreaching"
        assert request["ComparisonOperator"] == "GreaterThanThreshold"
        assert request["Metrics"][0]["MetricStat"]["Period"] == 10


def test_a_ratio_alarm_needs_two_periods_in_a_row_over_z_4() -> None:
    [alarm], _ = critical_alarms(_app(), _spec(_payments()))

    assert (alarm.threshold, alarm.evaluation_periods, alarm.datapoints_to_alarm) == (4.0, 2, 2)


def test_a_metric_whose_queries_do_not_fit_in_an_alarm_gets_none_and_is_named() -> None:
    inputs = {f"m{i}": _stat(f"M{i}").metric for i in range(6)}
    wide = MetricQuery(expression="+".join(inputs), inputs={k: v for k, v in inputs.items() if v is not None})
    metric = MetricDefinition(name="wide", value=wide, requests=_stat("Requests"), critical=True)

    alarms, skipped = critical_alarms(_app(), _spec(metric))

    assert alarms == [] and skipped == ["wide"]


# -- the bake, the alarm event, the analysis, the rollback and the release ---------


@pytest.fixture
def store(clock: FixedClock) -> InMemoryRolloutStore:
    store = InMemoryRolloutStore(clock)
    a_rollout(store)
    return store


def _bake(alarms: FakeAlarms, store: InMemoryRolloutStore, clock: FixedClock) -> RecordingCallbacks:
    callbacks = RecordingCallbacks()
    task = BakeTask(token="token-bake", app=_app(), ref=REF, analysis=_spec(_payments()))
    begin_bake(task, store, alarms, callbacks, clock)
    return callbacks


def test_a_bake_puts_its_alarms_fresh_and_an_earlier_bakes_alarm_in_alarm_does_not_end_it(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    alarms = FakeAlarms()
    alarms.states["canaryfleet-payments-api.payment-success"] = "ALARM"  # left by an earlier bake

    callbacks = _bake(alarms, store, clock)

    assert list(alarms.alarms) == ["canaryfleet-payments-api.payment-success"]
    assert alarms.deleted == ["canaryfleet-payments-api.payment-success"]
    assert callbacks.failed == {}


def test_an_alarm_that_fired_before_the_bakes_token_was_stored_ends_the_bake(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    class FiresAtOnce(FakeAlarms):
        def put_alarm(self, alarm: CriticalAlarm) -> None:
            super().put_alarm(alarm)
            self.states[alarm.name] = "ALARM"

    callbacks = _bake(FiresAtOnce(), store, clock)

    error, cause = callbacks.failed["token-bake"]
    assert error == "CriticalMetricFailed"
    assert cause.startswith("critical metric payment success failed during the bake")


def _state(at: datetime) -> dict[str, str]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "value": "ALARM",
        "reason": "Threshold Crossed: 2 out of the last 2 datapoints",
        "timestamp": stamp,
    }


def test_a_fail_fast_alarm_ends_the_bake_with_the_metric_named(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    hold_lock(store, REF)
    _bake(FakeAlarms(), store, clock)
    callbacks = RecordingCallbacks()
    name = "canaryfleet-payments-api.payment-success"

    result = on_alarm(
        name,
        _state(T0 + timedelta(seconds=20)),
        AppsRegistry(_app()),
        store,
        callbacks,
        clock,
        "payment success",
    )

    assert result == "bake ended"
    error, cause = callbacks.failed["token-bake"]
    assert error == "CriticalMetricFailed"
    assert cause == f"critical metric payment success failed during the bake: {name}: " + (
        "Threshold Crossed: 2 out of the last 2 datapoints"
    )
    assert explain(error, cause)[2] == cause


def test_a_fail_fast_alarm_that_changed_before_the_bake_began_is_an_earlier_bakes(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    hold_lock(store, REF)
    _bake(FakeAlarms(), store, clock)
    callbacks = RecordingCallbacks()

    result = on_alarm(
        "canaryfleet-payments-api.payment-success",
        _state(T0 - timedelta(seconds=5)),
        AppsRegistry(_app()),
        store,
        callbacks,
        clock,
    )

    assert result == "fail-fast alarm of an earlier bake" and callbacks.failed == {}


def test_another_applications_fail_fast_alarm_is_not_this_ones(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    registry = AppsRegistry(_app(), _app("payments"))

    owner = registry.owner_of_alarm("canaryfleet-payments-api.payment-success")

    assert owner is not None and owner[0].application == APP and owner[1] == "canary"


# -- the ends of the waits a canary alarm concerns: the bake's timer, the approval ------


def test_a_canary_alarm_in_alarm_when_the_bake_runs_out_fails_the_step_naming_it() -> None:
    app = an_app(canary_alarms=("payments-api-canary-5xx", "payments-api-canary-p99"))
    alarms = FakeAlarms()
    alarms.states["payments-api-canary-p99"] = "ALARM"  # its event never reached alarm_event

    with pytest.raises(CanaryAlarm) as raised:
        check_alarms(AlarmCheckTask(app=app, ref=REF, analysis=None), alarms)

    cause = str(raised.value)
    assert cause == "canary alarm payments-api-canary-p99 is in ALARM: Threshold Crossed"
    # The same error name and sentence as when the alarm's event ends the bake.
    assert explain(type(raised.value).__name__, cause) == ("rolled_back", "canary alarm", cause)


def test_a_fail_fast_alarm_in_alarm_when_the_bake_runs_out_fails_the_step_naming_its_metric(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    alarms = FakeAlarms()
    _bake(alarms, store, clock)
    alarms.states["canaryfleet-payments-api.payment-success"] = "ALARM"

    with pytest.raises(CriticalMetricFailed) as raised:
        check_alarms(AlarmCheckTask(app=_app(), ref=REF, analysis=_spec(_payments())), alarms)

    assert str(raised.value) == (
        "critical metric payment success failed during the bake: "
        "canaryfleet-payments-api.payment-success: Threshold Crossed"
    )
    assert alarms.deleted == [], "a check only: the rollback that follows deletes the bake's alarms"


def test_a_bake_that_runs_out_with_no_canary_alarm_in_alarm_goes_on_to_its_analysis(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    app = an_app(canary_alarms=("payments-api-canary-5xx",), live_alarms=("payments-api-live-5xx",))
    alarms = FakeAlarms()
    _bake(alarms, store, clock)
    alarms.states["payments-api-live-5xx"] = "ALARM"  # live's alarm is not the canary's to answer for
    alarms.states["payments-api-canary-5xx"] = "OK"

    result = check_alarms(AlarmCheckTask(app=app, ref=REF, analysis=_spec(_payments())), alarms)

    assert result == {"alarms": "none in ALARM"}
    assert list(alarms.alarms) == ["canaryfleet-payments-api.payment-success"], "the analysis deletes it"


def test_the_analysis_deletes_the_bakes_alarms_before_it_judges(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    alarms = FakeAlarms()
    _bake(alarms, store, clock)

    analyse(
        AnalyseTask(app=_app(), ref=REF, analysis=_spec(_payments())),
        store,
        alarms,
        RecordingNotifier(),
        clock,
    )

    assert alarms.alarms == {}


def _canary_deployed(store: InMemoryRolloutStore) -> FakeDeployments:
    """The rollout's canary deployment, succeeded, as the state machine makes it before a bake."""
    deployments = FakeDeployments()
    revision = Revision(bucket="b", key=f"{APP}/2.7.0.zip", version="2.7.0")
    deployment = deployments.create_deployment(APP, f"{APP}-canary", revision, "canary")
    deployments.statuses[deployment] = ("Succeeded", "")
    store.remember_deployment(ROLLOUT_ID, "canary", deployment, f"{APP}-canary")
    return deployments


def test_the_rollback_and_the_release_delete_the_alarms_and_a_repeat_finds_none(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    alarms = FakeAlarms()
    deployments = _canary_deployed(store)
    _bake(alarms, store, clock)
    task = RollbackTask.model_validate({"ref": REF.model_dump(), "error": {"Error": "Aborted", "Cause": "x"}})

    roll_back(task, store, deployments, clock, alarms=alarms)
    deleted = list(alarms.deleted)
    finalize(REF, Revision(bucket="b", key=f"{APP}/2.7.0.zip", version="2.7.0"), store, clock, alarms=alarms)

    assert alarms.alarms == {}
    assert alarms.deleted == deleted  # nothing left to delete the second time


def test_a_rollback_whose_alarm_cleanup_is_throttled_has_already_recorded_why(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # CloudWatch's DeleteAlarms takes 3 calls a second per Region: the first a burst throttles.
    class ThrottledAlarms(FakeAlarms):
        def delete_alarms(self, prefix: str) -> list[str]:
            raise TransientAwsError("An error occurred (Throttling) when calling the DeleteAlarms operation")

    deployments = _canary_deployed(store)
    _bake(FakeAlarms(), store, clock)
    task = RollbackTask.model_validate(
        {
            "ref": REF.model_dump(),
            "error": {"Error": "Aborted", "Cause": "aborted by ana@example.com: bad build"},
        }
    )

    with pytest.raises(TransientAwsError):  # its task's Retry cleans up
        roll_back(task, store, deployments, clock, alarms=ThrottledAlarms())

    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.outcome == "rolled_back"
    assert record.reason == "aborted by ana@example.com: bad build"


def test_a_release_whose_alarm_cleanup_cloudwatch_refuses_is_recorded_and_the_next_bake_cleans_up(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Given a bake's fail-fast alarms, and a CloudWatch that still throttles DeleteAlarms after
    # botocore's retries (the adapter raises the ClientError)
    class ThrottledAlarms(FakeAlarms):
        refusing = False

        def delete_alarms(self, prefix: str) -> list[str]:
            if self.refusing:
                raise ClientError(
                    {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DeleteAlarms"
                )
            return super().delete_alarms(prefix)

    alarms = ThrottledAlarms()
    _bake(alarms, store, clock)
    left = dict(alarms.states)
    alarms.refusing = True
    revision = Revision(bucket="b", key=f"{APP}/2.7.0.zip", version="2.7.0")

    # When the release is recorded: the build already serves all traffic
    finalize(REF, revision, store, clock, alarms=alarms)

    # Then it is the last good revision, and the version and the rollout say released
    assert store.last_good(APP) == revision
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and (record.outcome, record.reason) == ("released", "")
    assert alarms.states == left, "the alarms are left"
    # And the next bake deletes what was left before it puts its own
    alarms.refusing = False
    alarms.states = dict.fromkeys(left, "ALARM")
    _bake(alarms, store, clock)
    assert alarms.deleted == sorted(left)
    assert set(alarms.states.values()) == {"INSUFFICIENT_DATA"}


def test_a_rollout_that_failed_before_deploying_leaves_the_bake_of_the_rollout_holding_the_turn_alone(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Given a rollout baking with its fail-fast alarms, and a second rollout of the application
    # whose wait for its turn failed ("Record why it failed" runs the rollback's function)
    alarms = FakeAlarms()
    _bake(alarms, store, clock)
    put = dict(alarms.states)
    queued = RolloutRef(application=APP, rollout_id=f"{APP}-2_8_0-0b1c", version="2.8.0")
    a_rollout(store, version="2.8.0", rollout_id=queued.rollout_id)
    task = RollbackTask.model_validate(
        {"ref": queued.model_dump(), "error": {"Error": "States.TaskFailed", "Cause": "queue unreadable"}}
    )

    # When the failed one's end is recorded
    result = roll_back(task, store, FakeDeployments(), clock, alarms=alarms)

    # Then it restores nothing and the bake keeps its alarms
    assert (result["last_good"], result["restore_live"], result["stopped_deployments"]) == (None, False, [])
    assert alarms.states == put and alarms.deleted == []
    record = store.get(APP, queued.rollout_id)
    assert record is not None and record.outcome == "rolled_back"
    assert (
        record.reason
        == "failed: queue unreadable; nothing was deployed, so version 2.8.0 may be uploaded again"
    )


def _awaiting_approval(store: InMemoryRolloutStore, clock: FixedClock) -> None:
    hold_lock(store, REF)
    store.set_wait(
        APP,
        ROLLOUT_ID,
        Wait(kind="approval", token="token-approval", started_at=clock.now(), approval_id="a" * 22),
    )


def test_a_canary_alarm_while_awaiting_approval_rolls_back_and_the_approval_no_longer_waits(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    _awaiting_approval(store, clock)
    callbacks = RecordingCallbacks()
    app = an_app(canary_alarms=("payments-api-canary-5xx",))

    ended = RecordingEndedApprovals()

    result = on_alarm(
        "payments-api-canary-5xx",
        _state(T0),
        AppsRegistry(app),
        store,
        callbacks,
        clock,
        ended_approvals=ended,
    )

    assert result == "approval ended"
    assert ended.settled == ["a" * 22], "its Slack message says why at once, not at its expiry"
    error, cause = callbacks.failed["token-approval"]
    assert (error, cause) == (
        "CanaryAlarm",
        "canary alarm payments-api-canary-5xx went to ALARM while awaiting approval: "
        "Threshold Crossed: 2 out of the last 2 datapoints",
    )
    assert explain(error, cause) == ("rolled_back", "canary alarm", cause)
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.waits_with("approval") is None, "a later click finds it closed"


def test_a_live_alarm_while_awaiting_approval_is_recorded_and_ends_nothing(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    _awaiting_approval(store, clock)
    callbacks = RecordingCallbacks()
    app = an_app(canary_alarms=("payments-api-canary-5xx",), live_alarms=("payments-api-live-5xx",))

    result = on_alarm("payments-api-live-5xx", _state(T0), AppsRegistry(app), store, callbacks, clock)

    assert result == "live alarm recorded" and callbacks.failed == {}
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.waits_with("approval") == "token-approval"


def _canary_took_traffic(store: InMemoryRolloutStore, clock: FixedClock) -> None:
    hold_lock(store, REF)
    store.record_stage(APP, ROLLOUT_ID, Stage.TRAFFIC_SHIFTED, clock.now())


@pytest.mark.parametrize("wait", ["bake", "approval"])
def test_a_canary_alarm_event_from_before_the_canary_took_traffic_ends_no_wait(
    store: InMemoryRolloutStore, clock: FixedClock, wait: WaitKind
) -> None:
    # The alarm fired in an earlier rollout; EventBridge delivered its event (again) only now.
    _canary_took_traffic(store, clock)
    clock.advance(60)
    store.set_wait(APP, ROLLOUT_ID, Wait(kind=wait, token=f"token-{wait}", started_at=clock.now()))
    callbacks = RecordingCallbacks()
    app = an_app(canary_alarms=("payments-api-canary-5xx",))

    result = on_alarm(
        "payments-api-canary-5xx",
        _state(T0 - timedelta(minutes=10)),
        AppsRegistry(app),
        store,
        callbacks,
        clock,
    )

    assert result == "canary alarm from before the canary took traffic"
    assert callbacks.failed == {}
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.waits_with(wait) == f"token-{wait}"
    assert [entry for entry in record.audit if entry.kind == "alarm"] == []


@pytest.mark.parametrize("changed", [timedelta(seconds=30), timedelta(seconds=-2)])
def test_a_late_event_of_a_canary_alarm_that_fired_while_the_canary_served_still_ends_the_bake(
    store: InMemoryRolloutStore, clock: FixedClock, changed: timedelta
) -> None:
    # It fired in the first bake (or within the clocks' margin of the traffic), and its event
    # reaches alarm_event in the second bake: it is this canary's, late.
    _canary_took_traffic(store, clock)
    clock.advance(600)
    store.set_wait(APP, ROLLOUT_ID, Wait(kind="bake", token="token-bake", started_at=clock.now()))
    callbacks = RecordingCallbacks()
    app = an_app(canary_alarms=("payments-api-canary-5xx",))

    result = on_alarm(
        "payments-api-canary-5xx", _state(T0 + changed), AppsRegistry(app), store, callbacks, clock
    )

    assert result == "bake ended"
    assert callbacks.failed["token-bake"][0] == "CanaryAlarm"


class _NobodyAsked:
    """An approval channel that must not be used: any attribute read fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an approver was asked ({name}) although the canary is in ALARM")


def test_a_canary_alarm_already_in_alarm_ends_the_approval_wait_at_once_and_nobody_is_asked(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    hold_lock(store, REF)
    app = an_app(canary_alarms=("payments-api-canary-5xx",))
    alarms = FakeAlarms()
    alarms.states["payments-api-canary-5xx"] = "ALARM"  # its event came when no wait was stored
    callbacks = RecordingCallbacks()
    nobody: Any = _NobodyAsked()
    channels = ApprovalChannels(
        approvals=nobody, signer=nobody, email=nobody, expiry=nobody, slack=nobody, page_base_url=""
    )
    task = ApprovalTask(token="token-approval", app=app, ref=REF, timeout_seconds=3600)

    result = request_approval(task, store, RecordingNotifier(), callbacks, channels, clock, alarms)

    assert result == "alarm"
    assert callbacks.failed["token-approval"] == (
        "CanaryAlarm",
        "canary alarm payments-api-canary-5xx is in ALARM: Threshold Crossed",
    )
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.waits_with("approval") is None


def _waiting_for_the_calendar(store: InMemoryRolloutStore, clock: FixedClock, guard: str) -> None:
    hold_lock(store, REF)
    held = WindowWait(
        guard=guard,
        started=clock.now(),
        until=clock.now() + timedelta(hours=1),
        reason="sale day",
        kind="freeze",
    )
    store.set_window_waits(APP, ROLLOUT_ID, {guard: held})
    store.set_wait(APP, ROLLOUT_ID, Wait(kind="window", token="token-window", started_at=clock.now()))


def test_a_canary_alarm_while_the_calendar_holds_going_live_rolls_back_without_waiting_for_it(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    _waiting_for_the_calendar(store, clock, "live")
    callbacks = RecordingCallbacks()
    app = an_app(canary_alarms=("payments-api-canary-5xx",))

    result = on_alarm("payments-api-canary-5xx", _state(T0), AppsRegistry(app), store, callbacks, clock)

    assert result == "window ended"
    error, cause = callbacks.failed["token-window"]
    assert error == "CanaryAlarm"
    assert cause.startswith(
        "canary alarm payments-api-canary-5xx went to ALARM while waiting for the calendar to go live: "
    )


def test_a_canary_alarm_while_the_calendar_holds_the_canary_itself_ends_nothing(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    _waiting_for_the_calendar(store, clock, "canary")  # the canary takes no traffic yet
    callbacks = RecordingCallbacks()
    app = an_app(canary_alarms=("payments-api-canary-5xx",))

    result = on_alarm("payments-api-canary-5xx", _state(T0), AppsRegistry(app), store, callbacks, clock)

    assert result == "recorded; not baking" and callbacks.failed == {}
