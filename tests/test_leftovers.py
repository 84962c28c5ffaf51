"""What a changed configuration leaves behind, against moto's server: the certificate of an
earlier WWW, the secrets policy and the task role once nothing names them, and what `status`
says the service runs.

moto deletes a certificate a listener uses and a policy running tasks need without a word, so
the order is checked where AWS would refuse or tasks would fail: an injected ACM refusal decided
from moto's listeners at the moment of the call, and the service's state sampled at the moment
of each IAM deletion."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from dashscale import cli as cli_module
from dashscale.context import Context
from tests.support.operating import said
from tests.support.recording import recording
from tests.test_appconfig import VALUE, configure, container, secrets_policy

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
REGION = "us-east-1"
TASK_ROLE = f"demo-{REGION}-task-role"


def hook(
    monkeypatch: pytest.MonkeyPatch, service: str, operation: str, before: Callable[..., Any]
) -> None:
    """`before(params)` runs when the command's own client makes `operation`; it may answer
    (code) to refuse the call as AWS would, or None to let it go to moto."""
    real_make_context = cli_module.make_context

    def make_context(*args: Any, **kwargs: Any) -> Context:
        ctx = real_make_context(*args, **kwargs)
        client = ctx.client(service)
        service_id = client.meta.service_model.service_id.hyphenize()

        def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["hooked_params"] = dict(params)

        def call(context: dict[str, Any], **_: Any) -> Any:
            code = before(context.get("hooked_params", {}))
            if code is None:
                return None
            parsed = {
                "Error": {"Code": code, "Message": f"{operation} refused (injected): {code}"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            return AWSResponse("https://injected.invalid/", 400, {}, None), parsed

        client.meta.events.register(f"before-parameter-build.{service_id}.{operation}", keep)
        client.meta.events.register(f"before-call.{service_id}.{operation}", call)
        return ctx

    monkeypatch.setattr(cli_module, "make_context", make_context)


def listener_certificates(boto) -> list[str]:
    elbv2 = boto("elbv2")
    return [
        certificate["CertificateArn"]
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]
        for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        for certificate in listener.get("Certificates", [])
    ]


def certificates(boto) -> dict[str, set[str]]:
    acm = boto("acm")
    found = {}
    for summary in acm.list_certificates()["CertificateSummaryList"]:
        details = acm.describe_certificate(CertificateArn=summary["CertificateArn"])
        names = details["Certificate"].get("SubjectAlternativeNames", [])
        found[summary["CertificateArn"]] = {details["Certificate"]["DomainName"], *names}
    return found


@pytest.mark.parametrize("www", ["false", "true"])
def test_switching_www_deletes_the_old_certificate_once_the_listener_moved(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch, www: str
) -> None:
    before = "true" if www == "false" else "false"
    domain = ("--set", "DOMAIN=example.com")
    assert run("up", "--image", IMAGE, *domain, "--set", f"WWW={before}").exit_code == 0
    (old,) = certificates(boto)

    dry = run("up", "--image", IMAGE, *domain, "--set", f"WWW={www}", "--dry-run")
    assert dry.exit_code == 0, dry.output
    text = said(dry.stderr)
    assert "would delete" in text and "(WWW changed)" in text and old.rsplit("/", 1)[-1] in text

    refused: list[str] = []

    def in_use(params: dict[str, Any]) -> str | None:  # what ACM answers while a listener uses it
        if params["CertificateArn"] in listener_certificates(boto):
            refused.append(params["CertificateArn"])
            return "ResourceInUseException"
        return None

    def slow_move(params: dict[str, Any]) -> None:  # a listener change that takes a while
        if params.get("Certificates"):
            time.sleep(2)

    hook(monkeypatch, "acm", "DeleteCertificate", in_use)
    hook(monkeypatch, "elbv2", "ModifyListener", slow_move)
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *domain, "--set", f"WWW={www}")
    assert result.exit_code == 0, result.output
    assert refused == []  # never asked while the listener still used it
    assert calls.changing.count("DeleteCertificate") == 1
    (new,) = certificates(boto)  # the old one is gone, the new one stays
    wanted = {"example.com", "www.example.com"} if www == "true" else {"example.com"}
    assert certificates(boto)[new] == wanted and new != old
    assert listener_certificates(boto) == [new]

    with recording(aws) as calls:  # and nothing is left to do
        again = run("up", "--image", IMAGE, *domain, "--set", f"WWW={www}")
    assert again.exit_code == 0 and calls.changing == [], calls.changing


def sampled_service(boto) -> dict[str, Any]:
    ecs = boto("ecs")
    (service,) = ecs.describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    return {"service": service, "definition": definition["taskDefinition"]}


def watch_iam_deletions(monkeypatch: pytest.MonkeyPatch, boto) -> list[tuple[str, dict]]:
    """The service as it is at the moment of each deletion of the secrets policy or the role."""
    seen: list[tuple[str, dict]] = []

    def policy(params: dict[str, Any]) -> None:
        if params.get("PolicyName") == "dashscale-secrets":
            seen.append(("secrets policy", sampled_service(boto)))

    def role(params: dict[str, Any]) -> None:
        if params.get("RoleName") == TASK_ROLE:
            seen.append(("task role", sampled_service(boto)))

    hook(monkeypatch, "iam", "DeleteRolePolicy", policy)
    hook(monkeypatch, "iam", "DeleteRole", role)
    return seen


def served_without_them(sample: dict[str, Any]) -> bool:
    """The service runs, alone and rolled out, a definition without secrets or task role.
    (moto keeps the deployment's own taskDefinition at the first revision: the service's
    is the one it was updated to.)"""
    deployments = sample["service"]["deployments"]
    definition = sample["definition"]
    return (
        len(deployments) == 1
        and deployments[0]["rolloutState"] == "COMPLETED"
        and not definition.get("taskRoleArn")
        and not definition["containerDefinitions"][0].get("secrets")
    )


def remove_secret_and_role(project: Path, run) -> None:
    run("secret", "remove", "TOKEN")
    env = (project / ".env").read_text().replace("TASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess", "")
    (project / ".env").write_text(env)


@pytest.mark.parametrize("wait", [(), ("--no-wait",)], ids=["wait", "no-wait"])
def test_the_secrets_policy_and_task_role_go_only_after_the_new_tasks_serve(
    aws: str,
    boto,
    project: Path,
    run,
    no_docker: None,
    monkeypatch: pytest.MonkeyPatch,
    wait: tuple[str, ...],
) -> None:
    configure(project, "A=1\n", TASK_ROLE_POLICIES="AmazonS3ReadOnlyAccess")
    run("secret", "set", "TOKEN", input=VALUE)
    assert run("up", "--image", IMAGE).exit_code == 0
    assert secrets_policy(boto) is not None
    remove_secret_and_role(project, run)

    dry = run("up", "--image", IMAGE, "--dry-run")
    text = said(dry.stderr)
    assert "would delete the app has no secrets; once the new tasks serve" in text
    assert f"{TASK_ROLE} would delete" in text

    seen = watch_iam_deletions(monkeypatch, boto)
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *wait)
    assert result.exit_code == 0, result.output
    assert sorted(what for what, _ in seen) == ["secrets policy", "task role"]
    for what, sample in seen:
        assert served_without_them(sample), (what, sample)
    ops = calls.changing
    assert ops.index("RegisterTaskDefinition") < ops.index("UpdateService")
    assert ops.index("UpdateService") < ops.index("DeleteRolePolicy")
    assert ops.index("UpdateService") < ops.index("DeleteRole")
    if wait:
        assert "following the deployment despite --no-wait" in said(result.stderr)
    assert secrets_policy(boto) is None
    assert TASK_ROLE not in [r["RoleName"] for r in boto("iam").list_roles()["Roles"]]


def test_cluster_alone_keeps_them_and_the_next_up_removes_them(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dashscale cluster` registers the new definition without updating the service: the old
    tasks still use the policy and the role, so both stay until `up` has rolled it out."""
    configure(project, "A=1\n", TASK_ROLE_POLICIES="AmazonS3ReadOnlyAccess")
    run("secret", "set", "TOKEN", input=VALUE)
    assert run("up", "--image", IMAGE).exit_code == 0
    remove_secret_and_role(project, run)

    with recording(aws) as calls:
        alone = run("cluster", "--image", IMAGE)
    assert alone.exit_code == 0, alone.output
    assert "DeleteRolePolicy" not in calls.changing and "DeleteRole" not in calls.changing
    assert "kept: the service may still start tasks that use it" in said(alone.stderr)
    assert secrets_policy(boto) is not None
    assert not container(boto)["containerDefinitions"][0].get("secrets")

    seen = watch_iam_deletions(monkeypatch, boto)
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert sorted(what for what, _ in seen) == ["secrets policy", "task role"]
    assert all(served_without_them(sample) for _, sample in seen)
    assert secrets_policy(boto) is None


def test_status_shows_the_definition_the_service_runs_and_the_newest(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """moto runs 3 tasks (MOTO_ECS_SERVICE_RUNNING): a service of 5 stays IN_PROGRESS."""
    five = ("--set", "DESIRED_COUNT=5")
    configure(project, "OLD_NAME=1\n")
    assert run("up", "--image", IMAGE, "--no-wait", *five).exit_code == 0
    document = json.loads(run("status", "--json", *five).stdout)
    assert document["task_definitions"] == {
        "running": "demo-taskdef:1",
        "newest": "demo-taskdef:1",
        "deploying": True,
    }
    table = said(run("status", *five).stderr)
    assert "the service runs task definition demo-taskdef:1 (a deployment is in progress)" in table

    configure(project, "NEW_NAME=1\n")
    assert run("cluster", "--image", IMAGE).exit_code == 0  # revision 2, not deployed
    document = json.loads(run("status", "--json", *five).stdout)
    assert document["task_definitions"] == {
        "running": "demo-taskdef:1",
        "newest": "demo-taskdef:2",
        "deploying": True,
    }
    # the names are those of what runs, not of the newest revision
    assert document["configuration"]["variables"] == ["OLD_NAME"]
    table = said(run("status", *five).stderr)
    assert "runs task definition demo-taskdef:1; newest: demo-taskdef:2 (a deployment" in table
    assert "task definition variables: OLD_NAME task definition secrets: (none)" in table
