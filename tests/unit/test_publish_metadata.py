"""What `canaryfleet publish` refuses to upload as metadata: what S3 or start_rollout would not keep."""

import pytest

from canaryfleet_cli.operate import metadata_refusal


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
