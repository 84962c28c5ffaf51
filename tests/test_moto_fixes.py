"""The emulator patches (tests/support/moto_fixes.py) are at least as strict as AWS: a retried
identical create returns what exists, a create under the same name or port with other settings
fails as it does on AWS."""

from __future__ import annotations

import botocore.exceptions
import pytest


@pytest.fixture
def network(boto) -> dict:
    ec2 = boto("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(("us-east-1a", "us-east-1b"))
    ]
    groups = [
        ec2.create_security_group(GroupName=f"g{i}", Description="t", VpcId=vpc)["GroupId"]
        for i in range(2)
    ]
    return {"vpc": vpc, "subnets": subnets, "groups": groups}


def test_create_load_balancer_twice(aws: str, boto, network: dict) -> None:
    elb = boto("elbv2")
    ask = {"Name": "twice-alb", "Subnets": network["subnets"], "Type": "application"}
    first = elb.create_load_balancer(**ask, SecurityGroups=network["groups"][:1])
    again = elb.create_load_balancer(**ask, SecurityGroups=network["groups"][:1])
    arn = first["LoadBalancers"][0]["LoadBalancerArn"]
    assert again["LoadBalancers"][0]["LoadBalancerArn"] == arn
    with pytest.raises(botocore.exceptions.ClientError) as error:
        elb.create_load_balancer(**ask, SecurityGroups=network["groups"][1:])
    assert error.value.response["Error"]["Code"] == "DuplicateLoadBalancerName"
    assert len(elb.describe_load_balancers()["LoadBalancers"]) == 1


def test_create_listener_twice(aws: str, boto, network: dict) -> None:
    elb = boto("elbv2")
    balancer = elb.create_load_balancer(
        Name="twice-alb", Subnets=network["subnets"], SecurityGroups=network["groups"][:1]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    group = elb.create_target_group(
        Name="twice-tg", Protocol="HTTP", Port=80, VpcId=network["vpc"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    fixed = [
        {
            "Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"},
        }
    ]
    ask = {"LoadBalancerArn": balancer, "Protocol": "HTTP", "Port": 80}
    first = elb.create_listener(**ask, DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    again = elb.create_listener(**ask, DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    assert again == first
    with pytest.raises(botocore.exceptions.ClientError) as error:
        elb.create_listener(**ask, DefaultActions=fixed)
    assert error.value.response["Error"]["Code"] == "DuplicateListener"
    # a listener changed since its create no longer matches that create either
    elb.modify_listener(ListenerArn=first, DefaultActions=fixed)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        elb.create_listener(**ask, DefaultActions=forward)
    assert error.value.response["Error"]["Code"] == "DuplicateListener"
    assert len(elb.describe_listeners(LoadBalancerArn=balancer)["Listeners"]) == 1
