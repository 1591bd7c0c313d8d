"""Auto Scaling: scale-out that fills the desired capacity, Spot capacity that can run short, and
the scaling activities that say so."""

from __future__ import annotations

import contextlib
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

# A failed Spot launch's activity message: EC2's error code and its words (EC2 API Reference,
# "Error codes": InsufficientInstanceCapacity, and UnfulfillableCapacity for Spot,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html); the wording
# around it is this stand-in's, and canaryfleet reads only "Spot" and the code from it.
SPOT_SHORTAGE_MESSAGE = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity "
    "available that matches your request. Launching EC2 instance failed."
)


# botocore's autoscaling model, DescribeScalingActivities: "MaxRecords: The maximum number of items
# to return with this call. The default value is 100 and the maximum value is 100."
_MAX_RECORDS = 100
_FILTERS = ("Status", "StartTimeLowerBound", "StartTimeUpperBound")


class _InvalidNextToken(AutoscalingClientError):
    """botocore's autoscaling model: DescribeScalingActivities' ``InvalidNextToken`` fault (HTTP
    400), "The NextToken value is not valid"."""

    code = "InvalidNextToken"
    message = "The NextToken value is not valid."


def _selection(filters: list[dict[str, Any]], group: str | None) -> Callable[[dict[str, Any]], bool]:
    """What DescribeScalingActivities' ``Filters`` let through (botocore's autoscaling model:
    Status, "the StatusCode value of the scaling activity", only "in combination with the
    AutoScalingGroupName parameter"; StartTimeLowerBound and StartTimeUpperBound, "ISO 8601
    formatted timestamps. Timestamps without a timezone offset are assumed to be UTC").

    The filters are read before any activity is, so a request AWS refuses is refused whether or
    not the group has activities to filter.
    """
    statuses: list[set[str]] = []
    lower: list[list[datetime]] = []
    upper: list[list[datetime]] = []
    for entry in filters:
        filter_name, values = entry.get("Name"), [str(v) for v in entry.get("Values") or []]
        if filter_name not in _FILTERS:
            raise ValidationError(f"Filter name {filter_name} is not supported")
        if filter_name == "Status":
            if group is None:
                raise ValidationError("The Status filter can only be used with AutoScalingGroupName")
            statuses.append(set(values))
        elif filter_name == "StartTimeLowerBound":
            lower.append([_iso8601(v) for v in values])
        else:
            upper.append([_iso8601(v) for v in values])

    # One filter's values are "automatically logically joined with an OR" (botocore's autoscaling
    # model, Filter.Values); each filter is one more limit ("filters to limit the results").
    def selected(activity: dict[str, Any]) -> bool:
        started: datetime = activity["StartTime"]
        return (
            all(activity["StatusCode"] in allowed for allowed in statuses)
            and all(any(started >= bound for bound in bounds) for bounds in lower)
            and all(any(started <= bound for bound in bounds) for bounds in upper)
        )

    return selected


def _page_start(token: str | None, found: int) -> int:
    """Where the page ``token`` (one this stand-in handed out) starts; any other is refused."""
    if token is None:
        return 0
    if not token.isdecimal() or not 0 < int(token) < found:
        raise _InvalidNextToken()
    return int(token)


def _iso8601(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{value} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@contextlib.contextmanager
def auto_scaling_group_size_bounds() -> Iterator[None]:
    """Stands in for CreateAutoScalingGroup refusing a desired capacity outside the group's bounds.

    botocore's autoscaling model, CreateAutoScalingGroup's DesiredCapacity: "This number must be
    greater than or equal to the minimum size of the group and less than or equal to the maximum
    size of the group. If you do not specify a desired capacity, the default is the minimum size
    of the group." moto creates such a group (a MaxSize under its MinSize too). Here it is refused
    as ``ValidationError`` (the code the API answers for a bad request; its words are this
    stand-in's), so a fleet stack whose LiveMaxSize is under its LiveMinSize fails as on AWS.
    """
    original = AutoScalingBackend.create_auto_scaling_group

    def create(backend: AutoScalingBackend, *args: Any, **kwargs: Any) -> Any:
        given = {k: kwargs.get(k) for k in ("min_size", "max_size", "desired_capacity")}
        sizes = {k: int(v) for k, v in given.items() if v not in (None, "")}
        least, most = sizes.get("min_size"), sizes.get("max_size")
        wanted = sizes.get("desired_capacity", least)
        if least is not None and most is not None and wanted is not None and not least <= wanted <= most:
            raise ValidationError(
                f"Desired capacity:{wanted} must be between the specified min size:{least} "
                f"and max size:{most}"
            )
        return original(backend, *args, **kwargs)

    with mock.patch.object(AutoScalingBackend, "create_auto_scaling_group", create):
        yield


class AutoScalingLaunches:
    """Stands in for how a group scales out, which moto gets wrong, and for its activities.

    moto, scaling out a group with a mixed instances policy, rounds the On-Demand share down and
    drops the remainder (a group asked for one instance at 50% On-Demand gets none), and answers
    DescribeScalingActivities with no activity at all. Here a scale-out (SetDesiredCapacity,
    UpdateAutoScalingGroup) launches the whole shortfall, as AWS does, split into On-Demand
    (OnDemandBaseCapacity, then OnDemandPercentageAboveBaseCapacity of the rest) and Spot (the
    rest), as the InstancesDistribution reference defines the two (botocore autoscaling model,
    shape InstancesDistribution;
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html).
    The pages do not say which way a fractional share rounds: this stand-in rounds the On-Demand
    share up, the choice that keeps a one-instance group of the standard 50% fleet On-Demand.
    On AWS a group short of Spot keeps trying other Spot pools (user guide, "Setup overview for
    creating a mixed instances group"); here it stays short, the case the capacity timeout is for.
    A test or scenario may make Spot capacity short for a group
    (``spot_available``): the Spot instances beyond it are not launched, and the group records a
    ``Failed`` scaling activity with EC2 Auto Scaling's message for it (botocore autoscaling
    model, shape Activity: StatusCode Failed, StatusMessage), which DescribeScalingActivities
    returns newest first. Scale-in is left to moto and to the termination lifecycle stand-in.
    """

    def __init__(self) -> None:
        self.spot_available: dict[str, int] = {}  # group name -> Spot instances it can still get
        self.activities: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _split(self, group: Any, count: int, active: int) -> tuple[int, int]:
        """(On-Demand, Spot) of ``count`` new instances in a group that has ``active`` already."""
        distribution = (group.mixed_instances_policy or {}).get("InstancesDistribution")
        if not distribution:
            return count, 0
        base = int(distribution.get("OnDemandBaseCapacity", 0))
        percent = int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100))
        total = active + count
        on_demand_total = min(total, base) + math.ceil(max(0, total - base) * percent / 100)
        on_demand_now = min(active, on_demand_total)  # assume the ones running are On-Demand first
        on_demand = max(0, min(count, on_demand_total - on_demand_now))
        return on_demand, count - on_demand

    def _record(self, group: str, status: str, description: str, message: str = "") -> None:
        now = datetime.now(UTC)
        activity = {
            "ActivityId": str(uuid.uuid4()),
            "AutoScalingGroupName": group,
            "Description": description,
            "Cause": f"At {now:%Y-%m-%dT%H:%M:%SZ} a user request update of AutoScalingGroup constraints",
            "StartTime": now,
            "EndTime": now,
            "StatusCode": status,
            "Progress": 100,
        }
        if message:
            activity["StatusMessage"] = message
        with self._lock:
            self.activities.setdefault(group, []).insert(0, activity)

    def scale_out(self, group: Any, target: int) -> None:
        active = len(group.active_instances())
        count = target - active
        on_demand, spot = self._split(group, count, active)
        with self._lock:
            available = self.spot_available.get(group.name)
            launched_spot = spot if available is None else min(spot, available)
            if available is not None:
                self.spot_available[group.name] = available - launched_spot
        launched = on_demand + launched_spot
        if launched:
            group.replace_autoscaling_group_instances(launched, group.get_propagated_tags())
            backend = group.autoscaling_backend
            if group.name in backend.autoscaling_groups:  # not while the group is being created
                backend.update_attached_elbs(group.name)
                backend.update_attached_target_groups(group.name)
            self._record(group.name, "Successful", f"Launching {launched} new EC2 instance(s)")
        if launched_spot < spot:
            self._record(
                group.name,
                "Failed",
                f"Launching a new EC2 instance. Status Reason: {SPOT_SHORTAGE_MESSAGE}",
                SPOT_SHORTAGE_MESSAGE,
            )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        stand_in = self
        original_desired = FakeAutoScalingGroup.set_desired_capacity

        def set_desired_capacity(group: FakeAutoScalingGroup, new_capacity: int | None) -> None:
            target = (group.min_size or 0) if new_capacity is None else new_capacity
            if target <= len(group.active_instances()):
                original_desired(group, new_capacity)
                return
            group.desired_capacity = target
            stand_in.scale_out(group, target)

        def describe_scaling_activities(response: AutoScalingResponse) -> ActionResult:
            name = response._get_param("AutoScalingGroupName")
            limit = int(response._get_param("MaxRecords") or _MAX_RECORDS)
            if not 1 <= limit <= _MAX_RECORDS:
                raise ValidationError(f"MaxRecords must be between 1 and {_MAX_RECORDS}")
            selected = _selection(response._get_param("Filters") or [], name)
            with stand_in._lock:
                # Without a group name the call is account-wide (botocore's model: "Omitting this
                # property performs an account-wide operation"); newest first, as for one group.
                stored = (
                    stand_in.activities.get(name, [])
                    if name is not None
                    else sorted(
                        (a for kept in stand_in.activities.values() for a in kept),
                        key=lambda a: a["StartTime"],
                        reverse=True,
                    )
                )
                found = [a for a in stored if selected(a)]
            start = _page_start(response._get_param("NextToken"), len(found))
            page: dict[str, Any] = {"Activities": found[start : start + limit]}
            if start + limit < len(found):
                page["NextToken"] = str(start + limit)
            return ActionResult(page)

        with (
            mock.patch.object(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity),
            mock.patch.object(
                AutoScalingResponse, "describe_scaling_activities", describe_scaling_activities
            ),
        ):
            yield
