"""ARNs and AWS host names for the region's partition: the only place they are built.

A region belongs to one partition (aws, aws-cn for China, aws-us-gov for GovCloud), and the
partition decides the ARN prefix (arn:aws-cn:...) and the DNS suffix of its hosts
(amazonaws.com.cn in China). Both come from botocore's own endpoint data, so a region botocore
knows is never guessed at; a test keeps these literals out of every other module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import botocore.exceptions
import botocore.session

DEFAULT = "aws"

# ECS tasks assume roles through `ecs-tasks.amazonaws.com` in every partition, China and
# GovCloud included (unlike a few services, EC2 among them, whose principal in China ends in
# .amazonaws.com.cn): a trust policy naming `ecs-tasks.amazonaws.com.cn` is what fails there
# (terraform-aws-modules/terraform-aws-ecs#124). So the principal is one literal, not built.
ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"
# the audience GitHub's OIDC tokens name for AWS (configure-aws-credentials' default)
STS_AUDIENCE = "sts.amazonaws.com"


@dataclass(frozen=True)
class Partition:
    name: str  # aws, aws-cn, aws-us-gov
    dns_suffix: str  # amazonaws.com, amazonaws.com.cn

    def arn(self, service: str, region: str, account: str, resource: str) -> str:
        """arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (region and account may be empty)."""
        return f"arn:{self.name}:{service}:{region}:{account}:{resource}"

    def managed_policy(self, path_and_name: str) -> str:
        """An AWS managed policy: `service-role/AmazonECSTaskExecutionRolePolicy` and the like."""
        return self.arn("iam", "", "aws", f"policy/{path_and_name.strip('/')}")

    def host(self, prefix: str) -> str:
        """PREFIX.DNS-SUFFIX: `ACCOUNT.dkr.ecr.REGION` gives the registry's host name."""
        return f"{prefix}.{self.dns_suffix}"

    def ecr_registry(self, account: str, region: str) -> str:
        return self.host(f"{account}.dkr.ecr.{region}")

    def elb_suffix(self, region: str) -> str:
        """What a load balancer's DNS name ends with: .REGION.elb.DNS-SUFFIX."""
        return "." + self.host(f"{region}.elb")

    def owns(self, arn: str) -> bool:
        """True when `arn` is an ARN of this partition."""
        return arn.startswith(f"arn:{self.name}:")


@functools.cache
def for_region(region: str) -> Partition:
    """The partition of `region`; an unknown region (newer than the installed botocore, or made
    up) is taken to be in the standard partition, as botocore's endpoints resolve it."""
    session = botocore.session.get_session()
    try:
        name = session.get_partition_for_region(region)
    except botocore.exceptions.UnknownRegionError:
        name = DEFAULT
    # botocore's partitions data (the endpoint rules' outputs) names each partition's suffix
    partitions = session.get_component("data_loader").load_data("partitions")["partitions"]
    suffix = next(p["outputs"]["dnsSuffix"] for p in partitions if p["id"] == name)
    return Partition(name, suffix)


def arn_fields(arn: str) -> list[str] | None:
    """The fields of an ARN (arn, partition, service, region, account, resource...), or None
    when `arn` is not one."""
    fields = arn.split(":")
    return fields if len(fields) >= 6 and fields[0] == "arn" else None
