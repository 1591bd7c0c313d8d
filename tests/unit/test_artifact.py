import re

import pytest
from canaryfleet.errors import InvalidArtifactKey
from canaryfleet.models.artifact import ArtifactRef, application_of_key, key_from_event
from hypothesis import example, given
from hypothesis import strategies as st

BUCKET = "canaryfleet-artifacts"


def artifact(key: str = "payments-api/2.7.0.zip", version_id: str | None = "v1") -> ArtifactRef:
    return ArtifactRef.from_object(bucket=BUCKET, key=key, version_id=version_id, etag="abc")


def test_given_a_key_in_layout_when_parsed_then_application_and_version_come_from_it() -> None:
    ref = artifact("payments-api/2.7.0-rc.1+build.5.zip")

    assert ref.application == "payments-api"
    assert ref.version == "2.7.0-rc.1+build.5"


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("payments-api.zip", "not <app>/<version>.zip"),
        ("payments-api/2.7.0.tar.gz", "is a .tar.gz bundle: canaryfleet takes zip bundles"),
        ("payments-api/2.7.0.tgz", "upload the build zipped as payments-api/2.7.0.zip"),
        ("payments-api/2.7.0.Zip", "named .Zip, not .zip"),
        ("payments-api/sub/2.7.0.zip", "not <app>/<version>.zip"),
        ("/2.7.0.zip", "not <app>/<version>.zip"),
        ("Payments/2.7.0.zip", "application 'Payments'"),
        ("a/2.7.0.zip", "application 'a'"),
        ("payments-/2.7.0.zip", "application 'payments-'"),
        ("payments-api/.hidden.zip", "version '.hidden'"),
        ("payments-api/2.7 0.zip", "version '2.7 0'"),
        ("payments-api/" + "9" * 65 + ".zip", "version '"),
        # Python's $ also matches before a last newline; a version read from a file keeps one.
        ("payments-api/2.7.0\n.zip", "version '2.7.0\\n'"),
        ("payments-ap\n/2.7.0.zip", "application 'payments-ap\\n'"),
        ("payments-api/2.7.0.zip\n", "not <app>/<version>.zip"),
        ("payments-api/2.7.0.tgz\n", "not <app>/<version>.zip"),
    ],
)
def test_given_an_off_layout_key_when_parsed_then_the_error_says_what_is_wrong(key: str, why: str) -> None:
    with pytest.raises(InvalidArtifactKey, match=re.escape(why)):
        artifact(key)


def test_given_the_same_object_version_when_named_twice_then_the_rollout_id_is_the_same() -> None:
    assert artifact().rollout_id == artifact().rollout_id


def test_given_a_new_object_version_of_the_same_key_then_the_rollout_id_differs() -> None:
    assert artifact(version_id="v1").rollout_id != artifact(version_id="v2").rollout_id


def test_given_uploads_to_a_bucket_whose_versioning_is_suspended_then_their_etags_tell_them_apart() -> None:
    # Each one has the version id "null" and overwrites the last (S3 User Guide, "Adding objects
    # to versioning-suspended buckets"): a fixed build uploaded after a rejected one is new.
    def upload(etag: str) -> ArtifactRef:
        return ArtifactRef.from_object(
            bucket=BUCKET, key="payments-api/2.7.0.zip", version_id="null", etag=etag
        )

    assert upload("aaa").rollout_id != upload("bbb").rollout_id
    assert upload("aaa").rollout_id == upload("aaa").rollout_id, "the same upload's events stay one rollout"


@given(
    app=st.from_regex(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", fullmatch=True),
    version=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", fullmatch=True),
    version_id=st.one_of(st.none(), st.text(min_size=1, max_size=40)),
)
def test_any_valid_key_gives_a_valid_step_functions_execution_name(
    app: str, version: str, version_id: str | None
) -> None:
    ref = artifact(f"{app}/{version}.zip", version_id=version_id)

    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", ref.rollout_id)
    assert ref.rollout_id.startswith(f"{app}-")


@given(key=st.text(max_size=200))
@example(key="payments-api/2.7.0\n.zip")
@example(key="payments-ap\n/2.7.0.zip")
def test_any_key_is_either_parsed_or_rejected_with_invalid_artifact_key(key: str) -> None:
    try:
        ref = artifact(key)
    except InvalidArtifactKey:
        return
    assert ref.key == key
    assert key == f"{ref.application}/{ref.version}.zip"


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("payments-api/2.7.0+build.5.zip", "payments-api/2.7.0+build.5.zip"),  # as the bucket holds it
        ("payments-api/2.7.0%2Bbuild.5.zip", "payments-api/2.7.0+build.5.zip"),  # URL-encoded
        ("payments-api%2F2.7.0.zip", "payments-api/2.7.0.zip"),
        ("payments-api/2.7%2F0.zip", "payments-api/2.7%2F0.zip"),  # decoded it is off-layout: kept
        ("payments-api/2.7.0%FF.zip", "payments-api/2.7.0%FF.zip"),  # not UTF-8 once decoded: kept
        ("payments-api/2.7.0%0A.zip", "payments-api/2.7.0%0A.zip"),  # a newline decoded: off-layout, kept
    ],
)
def test_an_event_key_is_read_url_decoded_only_where_that_gives_a_key_in_layout(sent: str, read: str) -> None:
    assert key_from_event(sent) == read


@pytest.mark.parametrize(
    ("key", "application"),
    [
        ("payments-api/2.7.0.tgz", "payments-api"),
        ("payments-api/sub/2.7.0.zip", "payments-api"),
        ("Payments/2.7.0.zip", None),
        ("payments-api.zip", None),
        ("payments-ap\n/2.7.0.zip", None),
    ],
)
def test_a_refused_keys_notice_names_the_application_its_first_folder_names(
    key: str, application: str | None
) -> None:
    assert application_of_key(key) == application


def test_whatever_the_model_refuses_in_an_object_is_an_invalid_artifact_key_not_a_crash() -> None:
    with pytest.raises(InvalidArtifactKey, match="bucket"):
        ArtifactRef.from_object(bucket="b", key="payments-api/2.7.0.zip")  # S3 names are 3 or more
    with pytest.raises(InvalidArtifactKey, match="size"):
        ArtifactRef.from_object(bucket=BUCKET, key="payments-api/2.7.0.zip", size=-1)
