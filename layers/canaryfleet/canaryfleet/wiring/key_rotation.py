"""The signing key's rotation function: one Secrets Manager rotation step on the secret named.

Apart from ``wiring.approvals``: rotating the key touches only Secrets Manager, and every
function imports the whole of its wiring module at cold start.
"""

from __future__ import annotations

from collections.abc import Callable

from canaryfleet.adapters.secrets import SecretsManagerSecretVersions
from canaryfleet.logic.key_rotation import rotate_signing_key as rotate_step
from canaryfleet.models.approval import RotationEvent


def rotate_signing_key(rotation: RotationEvent) -> Callable[[RotationEvent], str]:
    """One rotation step on the secret the event names."""
    versions = SecretsManagerSecretVersions(rotation.secret_id)

    def run(event: RotationEvent) -> str:
        return rotate_step(event, versions)

    return run
