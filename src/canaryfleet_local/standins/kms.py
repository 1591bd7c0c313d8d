"""KMS: a key made from a template keeps its policy as the policy document KMS answers."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

from moto.kms.models import Key

from canaryfleet_local.standins.cfn_resources import completing_cloudformation_create


def _policy_as_document(key: Any, props: dict[str, Any], account_id: str, region_name: str) -> None:
    if isinstance(key.policy, dict):
        key.policy = json.dumps(key.policy)


def key_policy_from_template_is_a_document() -> AbstractContextManager[Any]:
    """Stands in for CloudFormation giving an ``AWS::KMS::Key`` the template's ``KeyPolicy``.

    The template writes the policy as a JSON object ("KeyPolicy: Json", CloudFormation's
    AWS::KMS::Key reference); the key's policy is then a policy document, which GetKeyPolicy
    answers as a string (botocore ``kms`` ``GetKeyPolicyResponse.Policy``, shape ``PolicyType``,
    a string). moto keeps the template's object and answers it as is, which boto3 passes on as
    a dict.
    """
    return completing_cloudformation_create(Key, _policy_as_document)
