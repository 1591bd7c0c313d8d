"""Scenarios for the fleet simulator: data, not code paths (scenarios/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from canaryfleet.models.policy import RolloutPolicy
from pydantic import BaseModel, ConfigDict, Field

SCENARIOS = Path(__file__).parent / "scenarios"


class Behaviour(BaseModel):
    """How a version behaves when it serves requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(default=0.001, ge=0, le=1, description="Share of requests answered 5xx.")
    latency_seconds: float = Field(default=0.08, gt=0, description="Average target response time.")
    trips_alarms: bool = Field(
        default=False, description="Its 5xx trip the side's alarms while it takes traffic."
    )


class DeploymentScript(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["succeed", "fail"] = "succeed"
    seconds: float = Field(default=0.3, ge=0, description="From creation to the state-change event.")
    lose_event: bool = Field(default=False, description="The state-change event never arrives.")
    stop_seconds: float = Field(
        default=0.5,
        ge=0,
        description="From StopDeployment to the end of a stopped deployment: its instances finish "
        "the lifecycle event they are in (StopDeployment answers Pending until then).",
    )


class Upload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    after_seconds: float = Field(default=0.0, ge=0, description="Delay after the previous upload.")
    behaviour: Behaviour = Field(default_factory=Behaviour)
    canary_deployment: DeploymentScript = Field(default_factory=DeploymentScript)
    live_deployment: DeploymentScript = Field(default_factory=DeploymentScript)
    decision: Literal["approve", "reject", "none"] = "approve"
    expect: Literal["released", "rolled_back", "rejected"] = "released"


class OperatorAction(BaseModel):
    """Something on-call does to a running rollout, through the same decision path as everyone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["abort", "promote"]
    during: Literal["deployment", "bake", "approval"] = Field(description="The wait the rollout is in.")
    version: str | None = Field(default=None, description="Only the rollout of this version; None: any.")
    by: str = "oncall@example.com"
    reason: str = ""


class Scenario(BaseModel):
    """One story: the fleet's traffic, the policy, and what happens to each upload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    requests_per_second: float = Field(default=5000, gt=0, description="Total load on the listener rule.")
    baseline: Behaviour = Field(
        default_factory=Behaviour, description="The version live runs before the story."
    )
    alarm_after_seconds: float = Field(
        default=0.3, ge=0, description="Traffic time before a tripped alarm fires."
    )
    decide_after_seconds: float = Field(default=0.2, ge=0, description="How long the approver takes.")
    approver: str = "approver@example.com"
    policy: RolloutPolicy
    uploads: tuple[Upload, ...] = Field(min_length=1)
    actions: tuple[OperatorAction, ...] = Field(
        default=(), description="Done once each, when their wait comes."
    )
    unlisted_decision: Literal["approve", "reject", "none"] = Field(
        default="approve",
        description="What the simulated approver answers for a build no upload lists "
        "(one that `canaryfleet publish` sent to `canaryfleet local up`); none: people decide.",
    )


def load_scenario(name: str) -> Scenario:
    path = SCENARIOS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(scenario_names())
        raise ValueError(f"unknown scenario {name!r}; known: {known}")
    return Scenario.model_validate(yaml.safe_load(path.read_text()))


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
