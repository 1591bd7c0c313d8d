"""What a figure records: each measure's value, its baseline from the same run, the ratio, the goal."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Goal:
    """A goal from the issue, as text for the reader and a check on (value, ratio)."""

    text: str
    check: Callable[[float, float | None], bool]


def at_most(limit: float, unit: str = "") -> Goal:
    return Goal(f"<= {limit:g}{unit}", lambda value, _ratio: value <= limit)


def below(limit: float, unit: str = "") -> Goal:
    return Goal(f"< {limit:g}{unit}", lambda value, _ratio: value < limit)


def equals(expected: float, what: str = "") -> Goal:
    return Goal(f"= {expected:g}{what}", lambda value, _ratio: math.isclose(value, expected))


def ratio_at_most(limit: float, text: str) -> Goal:
    return Goal(text, lambda _value, ratio: ratio is not None and ratio <= limit)


def all_of(*goals: Goal) -> Goal:
    return Goal(
        " and ".join(g.text for g in goals), lambda value, ratio: all(g.check(value, ratio) for g in goals)
    )


@dataclass(frozen=True)
class Measure:
    """One figure's number next to its baseline; ``ratio`` is value / baseline."""

    figure: int
    name: str
    unit: str
    value: float
    baseline: float | None
    baseline_label: str
    ratio: float | None
    goal: str
    met: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    figure: int,
    name: str,
    unit: str,
    value: float,
    baseline: float | None,
    baseline_label: str,
    goal: Goal,
    details: dict[str, Any] | None = None,
) -> Measure:
    """A measure with its ratio computed and its goal checked (a missed goal stays missed)."""
    ratio = value / baseline if baseline else None
    return Measure(
        figure=figure,
        name=name,
        unit=unit,
        value=round(value, 4),
        baseline=None if baseline is None else round(baseline, 4),
        baseline_label=baseline_label,
        ratio=None if ratio is None else round(ratio, 4),
        goal=goal.text,
        met=goal.check(value, ratio),
        details=details or {},
    )


def measure_from_json(data: dict[str, Any]) -> Measure:
    return Measure(**data)
