import pytest
from canaryfleet.errors import ConfigurationError
from canaryfleet.settings import StartRolloutSettings, load_settings

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:rollout"
TOPIC = "arn:aws:sns:us-east-1:123456789012:canaryfleet"


@pytest.fixture(autouse=True)
def _topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", TOPIC)
    monkeypatch.setenv("APPROVAL_EMAIL_TOPIC_ARN", f"{TOPIC}-approval-emails")


def test_given_the_template_variables_when_loaded_then_they_are_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATE_TABLE_NAME", "canaryfleet-state")
    monkeypatch.setenv("ROLLOUT_STATE_MACHINE_ARN", ARN)

    settings = load_settings(StartRolloutSettings)

    assert settings.state_table_name == "canaryfleet-state"
    assert settings.rollout_state_machine_arn == ARN


def test_given_a_missing_variable_then_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_TABLE_NAME", "canaryfleet-state")
    monkeypatch.delenv("ROLLOUT_STATE_MACHINE_ARN", raising=False)

    with pytest.raises(ConfigurationError, match="ROLLOUT_STATE_MACHINE_ARN"):
        load_settings(StartRolloutSettings)


def test_given_a_malformed_arn_then_it_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_TABLE_NAME", "canaryfleet-state")
    monkeypatch.setenv("ROLLOUT_STATE_MACHINE_ARN", "rollout")

    with pytest.raises(ConfigurationError, match="ROLLOUT_STATE_MACHINE_ARN"):
        load_settings(StartRolloutSettings)


def test_given_the_environment_changes_then_the_cached_settings_follow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLOUT_STATE_MACHINE_ARN", ARN)
    monkeypatch.setenv("STATE_TABLE_NAME", "first-table")
    first = load_settings(StartRolloutSettings)
    monkeypatch.setenv("STATE_TABLE_NAME", "second-table")

    second = load_settings(StartRolloutSettings)

    assert (first.state_table_name, second.state_table_name) == ("first-table", "second-table")
