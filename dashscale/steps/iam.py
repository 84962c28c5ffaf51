"""What the app's IAM roles share: the lookup with the ownership check, the trust policy (ECS
tasks of this account only) and the policy documents IAM answers URL-encoded."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from dashscale.aws import require_owned, translated
from dashscale.context import Context
from dashscale.partition import ECS_TASKS_PRINCIPAL


def find_role(ctx: Context, name: str) -> dict[str, Any] | None:
    """The IAM role `name`, checked to be this app's; None when missing."""
    iam = ctx.client("iam")
    with translated(f"looking up IAM role {name}"):
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        tags = role.get("Tags")
        if tags is None:  # older answers leave tags out of GetRole
            tags = iam.list_role_tags(RoleName=name).get("Tags", [])
    require_owned(ctx.names, "IAM role", name, tags)
    return dict(role)


def trust_policy(account_id: str) -> dict[str, Any]:
    """ECS tasks of this account only may assume the execution role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS_PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def policy_document(document: Any) -> Any:
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document
