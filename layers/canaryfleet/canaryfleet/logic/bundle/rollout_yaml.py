"""rollout.yaml: a bundle's own rollout policy, within the platform's limits."""

from __future__ import annotations

import zipfile

from pydantic import ValidationError

from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle.messages import kind
from canaryfleet.logic.bundle.safe_zip import (
    DEFAULT_LIMITS,
    BundleLimits,
    BundleSource,
    OpenedBundle,
    opened,
    read_text,
)
from canaryfleet.logic.bundle.strict_yaml import load_yaml
from canaryfleet.models.policy import (
    AnalysisSpec,
    Approval,
    Bake,
    OnTimeout,
    PolicyLimits,
    RolloutPolicy,
    SetWeight,
)
from canaryfleet.models.problems import problems

ROLLOUT_YAML = "rollout.yaml"


def bundle_policy(
    source: BundleSource,
    base: RolloutPolicy,
    limits: PolicyLimits,
    bundle_limits: BundleLimits = DEFAULT_LIMITS,
) -> RolloutPolicy:
    """The rollout policy for this bundle: ``base``, overridden by the bundle's rollout.yaml if any.

    rollout.yaml may set ``steps`` and ``deployment_timeout_seconds``. Steps it sets must stay
    within ``limits``; steps it leaves alone are the base policy's and are not judged again.
    """
    with opened(source, bundle_limits) as bundle:
        entry = rollout_yaml_entry(bundle)
        if entry is None:
            return base
        text = read_text(bundle, entry, ROLLOUT_YAML, bundle_limits.max_rollout_yaml_bytes)
    document = load_yaml(text, ROLLOUT_YAML)
    if not isinstance(document, dict):
        raise InvalidBundle(
            f"{ROLLOUT_YAML} must be a YAML mapping with steps and/or deployment_timeout_seconds;"
            f" it is {kind(document)}"
        )
    unknown = sorted(str(key) for key in document if key not in ("steps", "deployment_timeout_seconds"))
    if unknown:
        raise InvalidBundle(
            f"{ROLLOUT_YAML} has unknown keys {', '.join(unknown)}; it may set only steps"
            " and deployment_timeout_seconds"
        )
    try:
        policy = RolloutPolicy.model_validate(base.model_dump() | document)
    except ValidationError as exc:
        raise InvalidBundle(f"{ROLLOUT_YAML} is not a valid rollout policy: {problems(exc)}") from None
    if "steps" in document:
        beyond = _beyond_limits(policy, limits) + _looser_analysis(policy, base)
        if beyond:
            raise InvalidBundle(f"{ROLLOUT_YAML} goes beyond the platform's limits: {'; '.join(beyond)}")
    return policy


def _beyond_limits(policy: RolloutPolicy, limits: PolicyLimits) -> list[str]:
    problems: list[str] = []
    for index, step in enumerate(policy.steps):
        where = f"steps[{index}]"
        if isinstance(step, SetWeight) and step.weight > limits.max_canary_weight:
            problems.append(
                f"{where} sets weight {step.weight}%, above the maximum canary weight"
                f" {limits.max_canary_weight}%"
            )
        elif isinstance(step, Bake) and step.duration_seconds < limits.min_bake_seconds:
            problems.append(
                f"{where} bakes for {step.duration_seconds} s, less than the minimum"
                f" {limits.min_bake_seconds} s"
            )
        elif (
            isinstance(step, Approval)
            and step.on_timeout is OnTimeout.PROMOTE
            and not limits.allow_promote_on_timeout
        ):
            problems.append(f"{where} promotes on timeout, which the platform does not allow")
    if limits.require_approval and not any(isinstance(step, Approval) for step in policy.steps):
        problems.append("there is no approval step, and the platform requires one")
    return problems


def _looser_analysis(policy: RolloutPolicy, base: RolloutPolicy) -> list[str]:
    """A bundle may make its canary analysis stricter than the application's policy, never looser:
    every bake analyses, keeps the policy's metrics, and tests them at least as hard."""
    floor = (
        next((s.analysis for s in base.steps if isinstance(s, Bake) and s.analysis), None) or AnalysisSpec()
    )
    problems: list[str] = []
    for index, step in enumerate(policy.steps):
        if not isinstance(step, Bake):
            continue
        where = f"steps[{index}]"
        spec = step.analysis
        if spec is None:
            problems.append(f"{where} bakes without analysis, which the application's policy requires")
            continue
        for field, label in (
            ("alpha", "false-failure rate alpha"),
            ("pass_score", "pass score"),
            ("min_requests", "minimum requests"),
            ("min_intervals", "minimum intervals"),
        ):
            if getattr(spec, field) < getattr(floor, field):
                problems.append(
                    f"{where} lowers the analysis's {label} to {getattr(spec, field)}, below the"
                    f" application's {getattr(floor, field)}"
                )
        dropped: list[str] = sorted(str(m) for m in set(floor.alb_metrics) - set(spec.alb_metrics))
        dropped += sorted({m.name for m in floor.metrics} - {m.name for m in spec.metrics})
        if dropped:
            problems.append(f"{where} leaves out the application's metrics {', '.join(dropped)}")
    return problems


def rollout_yaml_entry(bundle: OpenedBundle) -> zipfile.ZipInfo | None:
    entry = bundle.files.get(bundle.resolve(ROLLOUT_YAML))  # a link: where it points
    if entry is None and ("rollout.yml" in bundle.files or "rollout.yml" in bundle.links):
        # A policy that would be silently ignored is worse than a rejected bundle.
        raise InvalidBundle("the bundle has rollout.yml; canaryfleet reads only rollout.yaml, rename it")
    return entry
