"""The order `make test` hands its tests to the workers: the stories spread through the run.

`make test`'s workers each start with one contiguous share of the collection (pytest-xdist's
worksteal scheduling), and pytest collects in path order, so tests/e2e's stories (whole flows
that mostly wait on their clocks: bakes, windows, timeouts) were the share of the first two
workers. The other four ran the unit and integration tests, which are bound by CPU, then stole
the stories that were left: the first 100 s of a run kept both cores busy, and in the next 100 s
an eighth of them was idle on average (bench/README.md, figure 5, tenth round). With the stories
spread, each share holds as many of them as any other, and one worker's waits overlap another's
CPU from the start.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def groups_of(items: Sequence[Item], key: Callable[[Item], Hashable]) -> list[list[Item]]:
    """``items`` cut into runs of neighbours with the same ``key``, in order."""
    return [list(group) for _, group in itertools.groupby(items, key)]


def spread(groups: Sequence[list[Item]], is_story: Callable[[Item], bool]) -> list[Item]:
    """The items of ``groups``, each story group placed where its share of the stories falls.

    A story group (its first item a story) is placed once the items before it are the same share
    of the whole as the stories before it are of all stories; a group is never split, and the
    order within stories and within the others is kept, so the result is the same wherever it is
    computed (every pytest-xdist worker must collect the same order).
    """
    stories = [group for group in groups if is_story(group[0])]
    others = [group for group in groups if not is_story(group[0])]
    story_items = sum(len(group) for group in stories)
    if not stories or not others:
        return [item for group in groups for item in group]
    total = story_items + sum(len(group) for group in others)
    ordered: list[Item] = []
    rest = iter(others)
    stories_placed = 0
    for story in stories:
        due = round(stories_placed * total / story_items)
        while len(ordered) < due and (other := next(rest, None)) is not None:
            ordered.extend(other)
        ordered.extend(story)
        stories_placed += len(story)
    for other in rest:
        ordered.extend(other)
    return ordered


_SHARED_SCOPES = frozenset({"class", "module", "package"})


def uses_shared_fixture(item: object) -> bool:
    """Whether a pytest test uses a fixture kept across tests (a module's browser or played story).

    Such a test stays with its module's others: in another worker's share the fixture would be
    set up again. An item that is not a plain test function counts as one, to be safe.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return True
    return any(
        definition.scope in _SHARED_SCOPES
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )
