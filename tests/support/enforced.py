"""moto's server enforcing IAM: an admin and a deployer user, the deployer's allowed actions
set per step, and the IAM actions moto checked, in order.

moto enforces once INITIAL_NO_AUTH_ACTION_COUNT requests were made; its /moto-api/reset-auth
sets that count at run time (0: from now on), and the block sets it back to "never" after.
Emulator limits: moto compares a statement's Resource with `*` only and treats any Condition as
a deny, so the deployer gets the actions with Resource `*` and no Condition (the scoping of the
real document is checked on its own, tests/test_policy.py). moto's Route 53 answers its reads
with a signature check of its own that fails for signed REST GETs of botocore: switched off here.
moto names CloudWatch's actions by the signing name (monitoring:); AWS's IAM by cloudwatch:.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3

from dashscale.aws import IAM_PREFIXES

REGION = "us-east-1"


def _reset_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=30).close()


class Enforced:
    """The emulator with IAM enforced: `env` runs dashscale as the deployer."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        iam = self._client("iam", "testing", "testing")
        self.keys = {}
        for user in ("admin", "deployer"):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            self.keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        self._put("admin", ["*"])
        self._put("deployer", [])
        self.checked: list[str] = []  # every IAM action moto checked, in order
        self.lock = threading.Lock()

    def _client(self, service: str, key: str, secret: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def admin(self, service: str) -> Any:
        """A client with every permission, for the test's own reads and changes."""
        return self._client(service, *self.keys["admin"])

    def _put(self, user: str, actions: list[str]) -> None:
        statement = {"Effect": "Allow", "Action": actions or ["none:None"], "Resource": "*"}
        document = {"Version": "2012-10-17", "Statement": [statement]}
        client = self.admin("iam") if hasattr(self, "checked") else None
        client = client or self._client("iam", "testing", "testing")
        client.put_user_policy(
            UserName=user, PolicyName="dashscale", PolicyDocument=json.dumps(document)
        )

    def allow(self, actions: list[str]) -> None:
        """The deployer's actions from now on (Resource `*`, no Condition: moto's limits)."""
        self._put("deployer", sorted(actions))

    def env(self) -> dict[str, str]:
        key, secret = self.keys["deployer"]
        return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}


@contextlib.contextmanager
def enforcing(endpoint: str) -> Iterator[Enforced]:
    """IAM enforced by moto's server (in this process) for the block; records the actions it
    checks."""
    from moto.iam.access_control import IAMRequestBase

    enforced = Enforced(endpoint)
    original_check = IAMRequestBase.check_action_permitted
    original_signature = IAMRequestBase.check_signature

    def check(self: Any, resource: str) -> None:
        service, _, name = self._action.partition(":")
        if service in IAM_PREFIXES:  # AWS checks CloudWatch's calls as cloudwatch:, moto not
            self._action = f"{IAM_PREFIXES[service]}:{name}"
        with enforced.lock:
            enforced.checked.append(self._action)
        original_check(self, resource)

    def signature(self: Any) -> None:
        if self._service != "route53":  # its own check fails on botocore's signed GETs
            original_signature(self)

    IAMRequestBase.check_action_permitted = check  # type: ignore[method-assign]
    IAMRequestBase.check_signature = signature  # type: ignore[method-assign]
    _reset_auth(endpoint, "0")
    try:
        yield enforced
    finally:
        _reset_auth(endpoint, "inf")
        IAMRequestBase.check_action_permitted = original_check  # type: ignore[method-assign]
        IAMRequestBase.check_signature = original_signature  # type: ignore[method-assign]
