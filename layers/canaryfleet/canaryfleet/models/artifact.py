"""Where a build lives: `s3://<artifact bucket>/<app>/<version>.zip`."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canaryfleet.errors import InvalidArtifactKey

APP_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"

AppName = Annotated[str, Field(pattern=APP_NAME_PATTERN, description="Application name, as onboarded.")]
Version = Annotated[str, Field(pattern=VERSION_PATTERN, description="Build version, from the key.")]

_KEY = re.compile(r"^(?P<app>[^/]+)/(?P<version>[^/]+)\.zip$")
# CodeDeploy also takes tar and gzipped tar revisions (bundleType tar, tgz), and S3 keys are case
# sensitive: template.yaml's rule passes these keys too, so whoever uploads one learns that
# canaryfleet checks and deploys zips named .zip, instead of hearing nothing.
_OTHER_BUNDLE = re.compile(
    r"^(?P<app>[^/]+)/(?P<version>[^/]+)\.(?P<kind>zip|tar|tgz|tar\.gz)$", re.IGNORECASE
)
_APP = re.compile(APP_NAME_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
# Step Functions execution names: at most 80 characters of [A-Za-z0-9-_].
_EXECUTION_NAME_MAX = 80
_DIGEST_LENGTH = 24


def key_from_event(key: str) -> str:
    """The object key an S3 "Object Created" event names, as the bucket holds it.

    S3 URL-encodes the key in the notifications it sends to SNS, SQS and Lambda ("Event message
    structure": "red flower.jpg" becomes "red+flower.jpg"); its EventBridge page says nothing
    either way. A '%' is never part of a key canaryfleet accepts (see VERSION_PATTERN), so a key
    holding one is read as percent-encoded, the version 1.0.0+build.5 arriving as 1.0.0%2Bbuild.5,
    and kept as it came where decoding does not give an <app>/<version>.zip key. A '+' is kept:
    in a key canaryfleet accepts it can only be a plus, since a space never is.
    """
    if "%" not in key:
        return key
    try:
        decoded = unquote(key, errors="strict")
        _application_and_version(decoded)
    except (UnicodeDecodeError, InvalidArtifactKey):
        return key
    return decoded


def application_of_key(key: str) -> str | None:
    """The application a key's first folder names, if it is a valid name (for a refused key's notice)."""
    first, slash, _ = key.partition("/")
    return first if slash and _APP.fullmatch(first) else None


def _application_and_version(key: str) -> tuple[str, str]:
    """The application and version an <app>/<version>.zip key names; InvalidArtifactKey if off-layout."""
    match = _KEY.fullmatch(key)
    other = None if match else _OTHER_BUNDLE.fullmatch(key)
    if other is not None:
        kind = other["kind"]
        what = f"named .{kind}, not .zip" if kind.lower() == "zip" else f"a .{kind} bundle"
        raise InvalidArtifactKey(
            f"key {key!r} is {what}: canaryfleet takes zip bundles named <app>/<version>.zip; "
            f"upload the build zipped as {other['app']}/{other['version']}.zip (`canaryfleet publish` does)"
        )
    if not match:
        raise InvalidArtifactKey(f"key {key!r} is not <app>/<version>.zip")
    app, version = match["app"], match["version"]
    if not _APP.fullmatch(app):
        raise InvalidArtifactKey(
            f"application {app!r} in key {key!r} must be 2-40 lowercase letters, digits or '-', "
            "starting with a letter"
        )
    if not _VERSION.fullmatch(version):
        raise InvalidArtifactKey(
            f"version {version!r} in key {key!r} must be 1-64 letters, digits or '._+-', "
            "starting with a letter or digit"
        )
    return app, version


class ArtifactRef(BaseModel):
    """One uploaded object version of a build."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = Field(default=None, description="S3 object version; None if unversioned.")
    etag: str | None = Field(default=None, description="S3 ETag without quotes.")
    size: int | None = Field(default=None, ge=0)
    application: AppName
    version: Version

    @classmethod
    def from_object(
        cls,
        bucket: str,
        key: str,
        version_id: str | None = None,
        etag: str | None = None,
        size: int | None = None,
    ) -> ArtifactRef:
        """Read application and version from the key; raise InvalidArtifactKey if it is off-layout."""
        app, version = _application_and_version(key)
        try:
            return cls(
                bucket=bucket,
                key=key,
                version_id=version_id,
                etag=etag,
                size=size,
                application=app,
                version=version,
            )
        except ValidationError as exc:  # e.g. a key over S3's 1,024 bytes: refused, never a crash
            wrong = ", ".join(str(error["loc"][0]) for error in exc.errors() if error["loc"])
            raise InvalidArtifactKey(
                f"key {key[:200]!r} names no build canaryfleet can take ({wrong})"
            ) from None

    @property
    def rollout_id(self) -> str:
        """A name that is the same for every delivery of this object version, and only for it.

        It is the Step Functions execution name, so a duplicate event can never start a
        second rollout. A version id of ``null`` names no one version: S3 gives it to every
        object stored while the bucket's versioning is suspended, each overwriting the last
        ("Adding objects to versioning-suspended buckets", Amazon S3 User Guide), so the
        ETag tells those uploads apart.
        """
        version_id = None if self.version_id == "null" else self.version_id
        identity = f"{self.bucket}/{self.key}#{version_id or self.etag or ''}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:_DIGEST_LENGTH]
        return rollout_id_prefix(self.application, self.version) + digest


def rollout_id_prefix(application: str, version: str) -> str:
    """What the rollout id of every upload of this application's version begins with."""
    safe_version = re.sub(r"[^A-Za-z0-9_-]", "_", version)
    room = _EXECUTION_NAME_MAX - len(application) - _DIGEST_LENGTH - 2
    return f"{application}-{safe_version[:room]}-"
