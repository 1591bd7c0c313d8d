"""Rotating the approval links' signing key: Secrets Manager's four steps.

A new random key becomes AWSCURRENT; the one before stays readable as AWSPREVIOUS, which
verifiers still accept, so links sent before a rotation keep working until they expire. A
second rotation within a link's lifetime ends the links signed before the first: that is how an
operator revokes a key that leaked (rotate twice).

finishSecret also takes AWSPENDING off the new current version, as AWS's own rotation template
does: RotateSecret refuses to start while AWSPENDING is on a version that is not AWSCURRENT, and
Secrets Manager's own clean-up of the label is not something to rely on.
"""

from __future__ import annotations

import secrets

from canaryfleet.errors import ConfigurationError
from canaryfleet.models.approval import RotationEvent
from canaryfleet.observability import logger
from canaryfleet.ports.approvals import CURRENT, PENDING, SecretVersions

# 64 URL-safe characters: 384 random bits, more than HMAC-SHA256's block needs.
_KEY_BYTES = 48
_MIN_KEY_LENGTH = 32


def rotate_signing_key(event: RotationEvent, versions: SecretVersions) -> str:
    """Run one step; each is idempotent (Secrets Manager retries them). Returns what it did."""
    enabled, stages = versions.stages()
    if not enabled:
        raise ConfigurationError("rotation is not enabled on the signing key secret")
    labels = stages.get(event.token)
    if labels is None:
        raise ConfigurationError("the rotation's version does not exist on the secret")
    if CURRENT in labels:
        if event.step == "finishSecret" and PENDING in labels:
            versions.release_pending(event.token)  # a finish retried after its move
        return "already current"
    if PENDING not in labels:
        raise ConfigurationError("the rotation's version is not pending")
    if event.step == "createSecret":
        if versions.value(event.token, PENDING) is not None:
            return "pending key exists"
        versions.put_pending(event.token, secrets.token_urlsafe(_KEY_BYTES))
        logger.info("new signing key created")
        return "created"
    if event.step == "setSecret":
        return "nothing to set: only canaryfleet uses the key"
    if event.step == "testSecret":
        pending = versions.value(event.token, PENDING)
        if pending is None or len(pending) < _MIN_KEY_LENGTH:
            raise ConfigurationError("the pending signing key is missing or too short")
        return "tested"
    current = next(version for version, names in stages.items() if CURRENT in names)
    versions.make_current(event.token, current)
    versions.release_pending(event.token)
    logger.info("signing key rotated; the previous one still verifies links")
    return "finished"
