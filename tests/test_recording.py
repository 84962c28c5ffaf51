"""The recorder helper: it must see reads and changes, or "no changing call" proves nothing."""

from __future__ import annotations

from tests.support.recording import recording


def test_recorder_classifies_reads_and_changes(aws: str, boto) -> None:
    with recording(aws) as calls:
        boto("ec2").describe_vpcs()
        boto("ecs").create_cluster(clusterName="x")
        boto("route53").create_hosted_zone(Name="example.com", CallerReference="r1")
        boto("route53").list_hosted_zones()
    assert calls.operations[0] == "DescribeVpcs"
    assert calls.changing == ["CreateCluster", "POST /2013-04-01/hostedzone"]
