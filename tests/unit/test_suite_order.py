"""The suite's order (tests/suite_order.py): stories spread evenly, groups and order kept."""

from collections.abc import Iterator

import pytest

from tests.suite_order import groups_of, spread, uses_shared_fixture


def _story(name: str) -> str:
    return f"story:{name}"


def _is_story(item: str) -> bool:
    return item.startswith("story:")


def _singles(items: list[str]) -> list[list[str]]:
    return [[item] for item in items]


def test_each_sixth_of_the_run_holds_one_sixth_of_the_stories() -> None:
    # The collection's path order: every story first, as tests/e2e sorts before the rest.
    items = [_story(f"s{i}") for i in range(6)] + [f"t{i}" for i in range(60)]

    ordered = spread(_singles(items), _is_story)

    sixths = [ordered[i * 11 : (i + 1) * 11] for i in range(6)]
    assert [sum(map(_is_story, sixth)) for sixth in sixths] == [1] * 6


def test_every_test_runs_once_and_each_kind_keeps_its_order() -> None:
    items = [_story(f"s{i}") for i in range(7)] + [f"t{i}" for i in range(23)] + [_story("late")]

    ordered = spread(_singles(items), _is_story)

    assert sorted(ordered) == sorted(items)
    assert [i for i in ordered if _is_story(i)] == [i for i in items if _is_story(i)]
    assert [i for i in ordered if not _is_story(i)] == [i for i in items if not _is_story(i)]


def test_a_group_is_never_split() -> None:
    browser_module = [_story("page-1"), _story("page-2"), _story("page-3")]
    shared_cloud_module = [f"contract-{i}" for i in range(5)]
    others = _singles([f"t{i}" for i in range(20)])
    groups = [browser_module, [_story("alone")], shared_cloud_module, *others]

    ordered = spread(groups, _is_story)

    for group in (browser_module, shared_cloud_module):
        start = ordered.index(group[0])
        assert ordered[start : start + len(group)] == group


@pytest.mark.parametrize("items", [[_story("a"), _story("b")], ["a", "b", "c"], []])
def test_a_run_of_one_kind_is_left_as_collected(items: list[str]) -> None:
    assert spread(_singles(items), _is_story) == items


def test_neighbours_with_the_same_key_make_one_group() -> None:
    items = ["m1:a", "m1:b", "m2:a", "m1:c"]

    assert groups_of(items, lambda item: item.split(":")[0]) == [["m1:a", "m1:b"], ["m2:a"], ["m1:c"]]


@pytest.fixture(scope="module")
def kept_for_the_module() -> Iterator[str]:
    yield "shared"


def test_a_test_using_a_module_fixture_stays_with_its_module(
    request: pytest.FixtureRequest, kept_for_the_module: str
) -> None:
    assert uses_shared_fixture(request.node)


def test_a_test_of_function_fixtures_only_may_move(request: pytest.FixtureRequest, tmp_path: object) -> None:
    assert not uses_shared_fixture(request.node)
