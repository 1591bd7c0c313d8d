"""The approval links' signing key rotates again and again, as its schedule (and an operator)
rotates it. In a module of its own: two rotations end the links signed before the first, which
the shared gate of test_approval_gate.py's tests still hold."""

from canaryfleet_local.standins.secretsmanager import rotate_secret_with_its_function
from tests.integration.approval_gate import (
    ALICE,
    approval_gate,
    heading,
    post_decision,
    signing_key,
    wait_for_approval,
)


def test_the_key_rotates_again_and_links_signed_between_the_two_rotations_keep_working() -> None:
    with approval_gate() as gate:
        # Given a rotation done, and a link signed with its key
        secret = gate.cloud.output("ApprovalSigningKeyArn")
        sm = gate.cloud.client("secretsmanager")
        first = signing_key(gate)
        rotate_secret_with_its_function(secret)
        between = wait_for_approval(gate)
        second = signing_key(gate)

        # When the key rotates again (RotateSecret refuses to start while AWSPENDING is on a
        # version that is not AWSCURRENT: the first rotation's finish took it off)
        rotate_secret_with_its_function(secret)

        # Then the newest key signs, the one before verifies, and the first is neither
        stages = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
        labels = sorted(label for names in stages.values() for label in names if label.startswith("AWS"))
        assert labels == ["AWSCURRENT", "AWSPREVIOUS"]
        third = signing_key(gate)
        assert signing_key(gate, "AWSPREVIOUS") == second
        assert len({first, second, third}) == 3
        status, html = post_decision(between.link(ALICE), "approve")
        assert (status, heading(html)) == (200, "Approved")
