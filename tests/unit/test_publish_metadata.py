"""What `canaryfleet publish` refuses to upload as metadata: what S3 or start_rollout would not keep."""

import pytest

from canaryfleet_cli.operate import metadata_refusal, upload_metadata


@pytest.mark.parametrize(
    ("metadata", "refused"),
    [
        ({"commit": "9fceb02d", "build-url": "https://ci.example.com/job/pay/812/"}, None),
        ({"commit": "f" * 128}, None),
        ({"commit": "f" * 129}, "--commit must be one printable line"),
        ({"commit": "9fceb02d\nrm"}, "--commit must be one printable line"),
        ({"commit": "v1.2-café"}, "--commit must be ASCII"),
        ({"build-url": "https://ci.example.com/jöb/812"}, "--build-url must be ASCII"),
        ({"build-url": "http://ci.example.com/812"}, "--build-url must be an https:// URL"),
        ({"build-url": "https://ci.example.com/\x1b[8m/812"}, "--build-url must be an https:// URL"),
        ({"build-url": "https://ci.example.com/" + "x" * 2_030}, "--build-url must be an https:// URL"),
        (
            {"commit": "f" * 128, "build-url": "https://ci.example.com/" + "x" * 1_900},
            "S3 keeps at most 2 KB of metadata",
        ),
    ],
)
def test_metadata_the_platform_would_not_keep_is_refused_before_the_upload(
    metadata: dict[str, str], refused: str | None
) -> None:
    said = metadata_refusal(metadata)

    assert (said is None) if refused is None else (said is not None and refused in said)


def test_a_build_url_the_ci_filled_in_that_the_platform_would_not_keep_is_left_out_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an internal Jenkins, which serves BUILD_URL over http
    for name in ("GITHUB_RUN_ID", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BUILD_URL", "http://jenkins.corp.internal:8080/job/hello-app/42/")
    monkeypatch.setenv("GIT_COMMIT", "9fceb02d")

    metadata = upload_metadata(None, None)

    # Then the build goes up with its commit, and the link is left out as the platform would
    assert metadata == {"commit": "9fceb02d"}
    said = " ".join(capsys.readouterr().err.split())
    assert said == (
        "warning: the build-url from the CI's environment is left out: it must be an https:// URL of"
        " at most 2,048 characters"
    )


def test_a_build_url_the_operator_gave_is_kept_for_the_refusal_to_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUILD_URL", "https://jenkins.example.com/job/hello-app/42/")

    metadata = upload_metadata("9fceb02d", "http://ci.example.com/812")

    assert metadata == {"commit": "9fceb02d", "build-url": "http://ci.example.com/812"}
    assert metadata_refusal(metadata) is not None
