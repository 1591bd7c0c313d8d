"""May this build bundle be deployed? (a CodeDeploy zip for the EC2/on-premises platform)

The zip's central directory is judged first, then two small files inside it (``appspec.yml``
and the optional ``rollout.yaml``) are read; last, every entry is decompressed once, a chunk at a
time, to check that it unpacks to the size its directory states (the agent's unzip writes what it
unpacks to, whatever is stated), keeping the first bytes of each hook script (its #! line). Nothing
is extracted or held whole. Every rejection is an
:class:`InvalidBundle` carrying one reason written for the person who built the bundle.

One module per layer: ``safe_zip`` (the archive), ``strict_yaml`` (the YAML loader),
``appspec`` (the AppSpec model and its checks), ``rollout_yaml`` (the bundle's policy), and
``archive`` (a folder zipped the same way every time, for ``canaryfleet publish``). What CodeDeploy
would ignore in an accepted bundle is listed in ``BundleReport.notes``.
"""

from canaryfleet.logic.bundle.appspec import APPSPEC, HOOK_EVENTS, BundleReport, validate_bundle
from canaryfleet.logic.bundle.rollout_yaml import ROLLOUT_YAML, bundle_policy
from canaryfleet.logic.bundle.safe_zip import BundleLimits, BundleSource, SeekableReader

__all__ = [
    "APPSPEC",
    "HOOK_EVENTS",
    "ROLLOUT_YAML",
    "BundleLimits",
    "BundleReport",
    "BundleSource",
    "SeekableReader",
    "bundle_policy",
    "validate_bundle",
]
