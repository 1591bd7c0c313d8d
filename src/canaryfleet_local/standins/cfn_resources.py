"""One way to finish a resource that moto creates from a template but only in part."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from unittest import mock

# What is done to a resource moto has just created: (resource, its Properties, account, region).
Completion = Callable[[Any, dict[str, Any], str, str], None]


def completing_cloudformation_create(model: type[Any], complete: Completion) -> AbstractContextManager[Any]:
    """Patch ``model.create_from_cloudformation_json`` so ``complete`` runs on each resource it creates.

    moto skips some properties of some resources; ``complete`` applies them through moto's
    backend right after the resource is created, as AWS would have.
    """
    original = model.create_from_cloudformation_json

    def create_from_cloudformation_json(
        resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        created = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        complete(created, cloudformation_json["Properties"], account_id, region_name)
        return created

    return mock.patch.object(
        model, "create_from_cloudformation_json", staticmethod(create_from_cloudformation_json)
    )
