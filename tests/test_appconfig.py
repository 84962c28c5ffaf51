"""The app's configuration against moto's server: app.env variables, stored and referenced
secrets, the execution role's secrets policy, the task role, `dashscale secret`; and that no
secret value ever shows in output or in the task definition."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from tests.support.leaks import assert_no_leak, assert_no_leak_in_results, distinctive_secret
from tests.support.operating import said
from tests.support.recording import recording

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
ACCOUNT = "123456789012"
REGION = "us-east-1"
VALUE = distinctive_secret()  # no 4-character piece of either may show anywhere
OTHER_VALUE = distinctive_secret()
BOTH = (VALUE, OTHER_VALUE)
TAG = {"Key": "dashscale:app", "Value": "demo"}
S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
ATHENA = "arn:aws:iam::aws:policy/AmazonAthenaFullAccess"


def container(boto) -> dict:
    ecs = boto("ecs")
    definition = ecs.describe_task_definition(taskDefinition="demo-taskdef")["taskDefinition"]
    return definition


def secrets_policy(boto) -> dict | None:
    iam = boto("iam")
    try:
        answer = iam.get_role_policy(
            RoleName=f"demo-{REGION}-task-execution-role", PolicyName="dashscale-secrets"
        )
    except iam.exceptions.NoSuchEntityException:
        return None
    document = answer["PolicyDocument"]
    return json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document


def policy_resources(document: dict) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for statement in document["Statement"]:
        for action in statement["Action"]:
            result[action] = sorted(statement["Resource"])
    return result


def configure(project: Path, app_env: str, **settings: str) -> None:
    (project / "app.env").write_text(app_env)
    if settings:
        with (project / ".env").open("a") as env:
            env.writelines(f"{name}={value}\n" for name, value in settings.items())


def test_variables_secrets_and_task_role_as_configured(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    boto("ssm").put_parameter(Name="/shared/db-url", Value=OTHER_VALUE, Type="SecureString")
    secret_arn = boto("secretsmanager").create_secret(
        Name="demo-api", SecretString=json.dumps({"token": OTHER_VALUE})
    )["ARN"]
    (project / "policy.json").write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "athena:GetQueryResults", "Resource": "*"}
                ],
            }
        )
    )
    configure(
        project,
        "APP_TITLE=Sales dashboard\nB_FLAG=1\nDB_URL=ssm:/shared/db-url\n"
        "API_TOKEN=secretsmanager:demo-api:token\n",
        TASK_ROLE_POLICIES="AmazonS3ReadOnlyAccess",
        TASK_POLICY_FILE="policy.json",
    )
    stored = run("secret", "set", "STRIPE_KEY", input=VALUE + "\n")
    assert stored.exit_code == 0, stored.output

    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output

    definition = container(boto)
    app = definition["containerDefinitions"][0]
    assert app["environment"] == [
        {"name": "APP_TITLE", "value": "Sales dashboard"},
        {"name": "B_FLAG", "value": "1"},
    ]
    stored_arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/dashscale/demo/STRIPE_KEY"
    assert sorted(app["secrets"], key=lambda s: s["name"]) == [
        {"name": "API_TOKEN", "valueFrom": f"{secret_arn}:token::"},
        {"name": "DB_URL", "valueFrom": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shared/db-url"},
        {"name": "STRIPE_KEY", "valueFrom": stored_arn},
    ]
    task_role = boto("iam").get_role(RoleName=f"demo-{REGION}-task-role")["Role"]
    assert definition["taskRoleArn"] == task_role["Arn"]
    assert definition["executionRoleArn"].endswith(f"demo-{REGION}-task-execution-role")
    assert TAG in task_role["Tags"]
    trust = task_role["AssumeRolePolicyDocument"]
    trust = json.loads(urllib.parse.unquote(trust)) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    iam = boto("iam")
    attached = iam.list_attached_role_policies(RoleName=f"demo-{REGION}-task-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [S3_READ]
    inline = iam.get_role_policy(RoleName=f"demo-{REGION}-task-role", PolicyName="dashscale-task")
    assert "athena:GetQueryResults" in urllib.parse.unquote(json.dumps(inline["PolicyDocument"]))

    # the execution role reads exactly the app's secrets; the task role gets none of it
    assert policy_resources(secrets_policy(boto)) == {
        "ssm:GetParameters": sorted(
            [
                f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/dashscale/demo/*",
                f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shared/db-url",
            ]
        ),
        "secretsmanager:GetSecretValue": [secret_arn],
    }
    assert iam.list_role_policies(RoleName=f"demo-{REGION}-task-role")["PolicyNames"] == [
        "dashscale-task"
    ]

    # nothing changed: a second up makes no changing call
    with recording(aws) as calls:
        again = run("up", "--image", IMAGE)
    assert again.exit_code == 0, again.output
    assert calls.changing == []

    # TASK_ROLE_POLICIES changed: attached and detached to match, nothing else
    env = (
        (project / ".env")
        .read_text()
        .replace(
            "TASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess", "TASK_ROLE_POLICIES=AmazonAthenaFullAccess"
        )
    )
    (project / ".env").write_text(env)
    with recording(aws) as calls:
        moved = run("up", "--image", IMAGE)
    assert moved.exit_code == 0, moved.output
    assert sorted(calls.changing) == ["AttachRolePolicy", "DetachRolePolicy"]
    attached = iam.list_attached_role_policies(RoleName=f"demo-{REGION}-task-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [ATHENA]

    # no value anywhere: not in the output, not in the task definition
    status = run("status")
    shown = said(status.stderr)
    assert "task definition variables: APP_TITLE, B_FLAG" in shown
    assert "task definition secrets: API_TOKEN, DB_URL, STRIPE_KEY" in shown
    as_json = run("status", "--json")
    document = json.loads(as_json.stdout)
    assert document["configuration"] == {
        "variables": ["APP_TITLE", "B_FLAG"],
        "secrets": ["API_TOKEN", "DB_URL", "STRIPE_KEY"],
    }
    assert "Sales dashboard" not in as_json.stdout + status.stderr
    listed = run("secret", "list")
    assert "STRIPE_KEY" in listed.stdout
    assert_no_leak_in_results((stored, result, again, moved, status, as_json, listed), BOTH)
    dry = run("up", "--image", IMAGE, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert_no_leak_in_results((dry,), BOTH)
    assert_no_leak(json.dumps(definition, default=str), BOTH, "the task definition")
    # nor in any policy dashscale wrote: the secrets policy names ARNs, never values
    assert_no_leak(json.dumps(secrets_policy(boto)), BOTH, "the secrets policy")


def test_secret_set_stores_a_secure_string_and_never_shows_it(
    aws: str, boto, project: Path, run
) -> None:
    result = run("secret", "set", "DB_PASSWORD", input=VALUE + "\n")
    assert result.exit_code == 0, result.output
    ssm = boto("ssm")
    parameter = ssm.get_parameter(Name="/dashscale/demo/DB_PASSWORD", WithDecryption=True)
    assert parameter["Parameter"]["Type"] == "SecureString"
    assert parameter["Parameter"]["Value"] == VALUE  # the trailing newline of stdin dropped
    tags = ssm.list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/dashscale/demo/DB_PASSWORD"
    )
    assert TAG in tags["TagList"]
    assert "dashscale up" in said(result.stderr)
    changed = run("secret", "set", "DB_PASSWORD", input=OTHER_VALUE)
    assert changed.exit_code == 0, changed.output
    assert "--restart" in said(changed.stderr)
    listed = run("secret", "list")
    assert listed.exit_code == 0 and "DB_PASSWORD" in listed.stdout
    assert_no_leak_in_results((result, changed, listed), BOTH)

    removed = run("secret", "remove", "DB_PASSWORD")
    assert removed.exit_code == 0, removed.output
    assert ssm.get_parameters_by_path(Path="/dashscale/demo")["Parameters"] == []
    assert run("secret", "remove", "DB_PASSWORD").exit_code == 2


def test_an_invalid_secret_name_is_refused(aws: str, project: Path, run) -> None:
    with recording(aws) as calls:
        result = run("secret", "set", "1BAD", input=VALUE)
    assert result.exit_code == 2
    assert calls.operations == []
    assert_no_leak_in_results((result,), BOTH)


def test_a_missing_secret_or_a_bad_name_stops_before_any_change(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    for app_env in (
        "DB_URL=ssm:/not/there\n",
        "API=secretsmanager:not-there\n",
        "1ST_VALUE=x\n",
    ):
        (project / "app.env").write_text(app_env)
        with recording(aws) as calls:
            result = run("up", "--image", IMAGE)
        assert result.exit_code == 2, (app_env, result.output)
        assert calls.changing == [], app_env
        assert app_env.split("=")[0] in said(result.stderr)

    (project / "app.env").write_text("A=1\n")
    (project / "policy.json").write_text("{not json")
    for setting, named in (
        ("TASK_ROLE_POLICIES=NoSuchPolicyAnywhere", "NoSuchPolicyAnywhere"),
        ("TASK_POLICY_FILE=policy.json", "policy.json"),
    ):
        with recording(aws) as calls:
            result = run("up", "--image", IMAGE, "--set", setting)
        assert result.exit_code == 2, result.output
        assert calls.changing == []
        assert named in said(result.stderr)


def test_a_changed_value_is_one_revision_and_one_service_update(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    configure(project, "APP_TITLE=TitleAlpha\nKEEP=same\nGONE=soon\n")
    assert run("up", "--image", IMAGE).exit_code == 0
    (project / "app.env").write_text("APP_TITLE=TitleBeta\nKEEP=same\nNEW_ONE=x\n")
    run("secret", "set", "TOKEN", input=VALUE)

    dry = run("up", "--image", IMAGE, "--dry-run")
    assert dry.exit_code == 0, dry.output
    text = said(dry.stderr)
    assert "variables: added NEW_ONE; removed GONE; changed APP_TITLE" in text
    assert "secrets: added TOKEN" in text
    for value in ("TitleAlpha", "TitleBeta", "soon"):  # names only, never values
        assert value not in dry.output
    assert_no_leak_in_results((dry,), BOTH)

    (project / "app.env").write_text("APP_TITLE=TitleBeta\nKEEP=same\nGONE=soon\n")
    run("secret", "remove", "TOKEN")
    with recording(aws) as calls:
        changed = run("up", "--image", IMAGE)
    assert changed.exit_code == 0, changed.output
    assert calls.changing == ["RegisterTaskDefinition", "UpdateService"]
    app = container(boto)["containerDefinitions"][0]
    assert {e["name"]: e["value"] for e in app["environment"]}["APP_TITLE"] == "TitleBeta"


def test_secrets_going_away_take_the_policy_and_the_task_role_with_them(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    configure(project, "A=1\n", TASK_ROLE_POLICIES="AmazonS3ReadOnlyAccess")
    run("secret", "set", "TOKEN", input=VALUE)
    assert run("up", "--image", IMAGE).exit_code == 0
    assert secrets_policy(boto) is not None

    run("secret", "remove", "TOKEN")
    env = (project / ".env").read_text().replace("TASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess", "")
    (project / ".env").write_text(env)
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert secrets_policy(boto) is None
    iam = boto("iam")
    assert f"demo-{REGION}-task-role" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    definition = container(boto)
    assert "taskRoleArn" not in definition or not definition["taskRoleArn"]
    assert not definition["containerDefinitions"][0].get("secrets")


def test_teardown_removes_the_task_role_and_keeps_secrets_unless_all(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    configure(project, "A=1\n", TASK_ROLE_POLICIES="AmazonS3ReadOnlyAccess")
    run("secret", "set", "TOKEN", input=VALUE)
    assert run("up", "--image", IMAGE).exit_code == 0

    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    roles = [r["RoleName"] for r in boto("iam").list_roles()["Roles"]]
    assert f"demo-{REGION}-task-role" not in roles
    assert f"demo-{REGION}-task-execution-role" not in roles
    ssm = boto("ssm")
    assert [
        p["Name"] for p in ssm.get_parameters_by_path(Path="/dashscale/demo")["Parameters"]
    ] == ["/dashscale/demo/TOKEN"]
    assert "holds your secrets; --all deletes them" in said(result.stderr)
    assert_no_leak_in_results((result,), BOTH)

    everything = run("teardown", "--yes", "--all")
    assert everything.exit_code == 0, everything.output
    assert ssm.get_parameters_by_path(Path="/dashscale/demo")["Parameters"] == []


def test_a_changed_secret_goes_live_with_restart_only(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    run("secret", "set", "TOKEN", input=VALUE)
    assert run("up", "--image", IMAGE).exit_code == 0

    with recording(aws) as calls:
        changed = run("secret", "set", "TOKEN", input=OTHER_VALUE)
        again = run("up", "--image", IMAGE)  # a new value is not a new configuration
    assert changed.exit_code == 0 and again.exit_code == 0, again.output
    assert sorted(calls.changing) == ["AddTagsToResource", "PutParameter"]

    with recording(aws) as calls:
        restarted = run("secret", "set", "TOKEN", "--restart", input=VALUE)
    assert restarted.exit_code == 0, restarted.output
    assert sorted(calls.changing) == ["AddTagsToResource", "PutParameter", "UpdateService"]
    assert "restarted" in said(restarted.stderr)
    assert_no_leak_in_results((changed, again, restarted), BOTH)
    definition = container(boto)
    assert_no_leak(json.dumps(definition, default=str), BOTH, "the task definition")
    value = boto("ssm").get_parameter(Name="/dashscale/demo/TOKEN", WithDecryption=True)
    assert value["Parameter"]["Value"] == VALUE


def test_the_installed_command_takes_a_secret_on_stdin(aws: str, boto, project: Path) -> None:
    """As users run it: `printf %s "$VALUE" | dashscale secret set NAME`, in a subprocess."""
    import os
    import subprocess

    from tests.support.operating import installed_command

    def secret_set(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*installed_command(), "secret", "set", name],
            cwd=project,
            input=VALUE,
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )

    done = secret_set("API_TOKEN")
    assert done.returncode == 0, done.stderr
    assert_no_leak_in_results((done,), BOTH)
    stored = boto("ssm").get_parameter(Name="/dashscale/demo/API_TOKEN", WithDecryption=True)
    assert stored["Parameter"]["Value"] == VALUE
    refused = secret_set("API-TOKEN")
    assert refused.returncode == 2
    assert_no_leak_in_results((refused,), BOTH)


def test_a_json_key_follows_the_secret_name_or_its_arn() -> None:
    from dashscale.steps.appconfig import secret_and_key

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-db-AbCdEf"
    assert secret_and_key("rds-db") == ("rds-db", [])
    assert secret_and_key("rds-db:password") == ("rds-db", ["password"])
    assert secret_and_key(arn) == (arn, [])
    assert secret_and_key(f"{arn}:password") == (arn, ["password"])
    assert secret_and_key(f"{arn}::AWSPREVIOUS:") == (arn, ["", "AWSPREVIOUS", ""])


def test_a_managed_policy_named_without_its_path_is_refused_with_its_full_arn(
    aws: str, project: Path, run, no_docker: None
) -> None:
    """AWS keeps some managed policies under a path: the refusal names the ARN to write."""
    for name, arn in (
        ("ViewOnlyAccess", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"),
        (
            "AWSLambdaBasicExecutionRole",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ),
    ):
        with recording(aws) as calls:
            result = run("up", "--image", IMAGE, "--set", f"TASK_ROLE_POLICIES={name}")
        assert result.exit_code == 2, result.output
        assert calls.changing == []
        shown = said(result.stderr)
        assert f"policy that does not exist: arn:aws:iam::aws:policy/{name}" in shown
        assert arn in shown, shown


def test_secrets_manager_references_with_version_fields_give_ecs_a_valid_value_from(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """`secretsmanager:NAME-OR-ARN[:json-key[:version-stage[:version-id]]]` becomes ECS's
    ARN:json-key:version-stage:version-id (empty fields as ::); the execution role reads the
    secret's ARN itself."""
    manager = boto("secretsmanager")
    created = manager.create_secret(Name="demo-api", SecretString=json.dumps({"token": VALUE}))
    arn, first = created["ARN"], created["VersionId"]
    manager.put_secret_value(SecretId="demo-api", SecretString=json.dumps({"token": OTHER_VALUE}))
    configure(
        project,
        "PLAIN=secretsmanager:demo-api\n"
        "KEYED=secretsmanager:demo-api:token\n"
        "PREVIOUS=secretsmanager:demo-api::AWSPREVIOUS\n"
        f"PINNED=secretsmanager:{arn}:token::{first}\n"
        "TRAILING=secretsmanager:demo-api:token::\n",
    )
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    (app,) = container(boto)["containerDefinitions"]
    assert {s["name"]: s["valueFrom"] for s in app["secrets"]} == {
        "PLAIN": arn,
        "KEYED": f"{arn}:token::",
        "PREVIOUS": f"{arn}::AWSPREVIOUS:",
        "PINNED": f"{arn}:token::{first}",
        "TRAILING": f"{arn}:token::",
    }
    assert policy_resources(secrets_policy(boto)) == {"secretsmanager:GetSecretValue": [arn]}


def test_secret_references_ecs_would_refuse_stop_up_before_any_call(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch
) -> None:
    """Too many fields, a stage and an id together, a version id that is none, a reference in
    another region or partition: one line and a hint, exit 2, no AWS call at all."""
    monkeypatch.setenv("COLUMNS", "250")  # a long ARN on one line, as written
    other = f"arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:demo-api-AbCdEf"
    version = "a" * 8 + "-1111-2222-3333-" + "b" * 12
    for line, said_first, hint in (
        ("X=secretsmanager:demo-api:k1:k2:k3:k4", "is not a Secrets Manager reference", "::"),
        (f"X=secretsmanager:demo-api:k:AWSPREVIOUS:{version}", "both a version stage", "one"),
        ("X=secretsmanager:demo-api:k::not-an-id", "'not-an-id' is not a secret version id", "32"),
        (f"X=secretsmanager:{other}", "is in us-west-2, but the app runs in us-east-1", "copy"),
        (
            f"X=ssm:arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/db",
            "is in eu-west-1, but the app runs in us-east-1",
            "us-east-1",
        ),
        (
            f"X=ssm:arn:aws-cn:ssm:us-east-1:{ACCOUNT}:parameter/db",
            "is not a ssm ARN of aws, the partition of AWS_REGION=us-east-1",
            "NAME",
        ),
    ):
        (project / "app.env").write_text(line + "\n")
        with recording(aws) as calls:
            result = run("up", "--image", IMAGE)
        assert result.exit_code == 2, (line, result.output)
        assert calls.operations == [], line
        shown = said(result.stderr)
        assert f"{line} in app.env" in shown and said_first in shown, shown
        assert hint in shown.split(said_first, 1)[1], shown


def test_a_version_stage_or_id_the_secret_lacks_is_refused_before_any_change(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    boto("secretsmanager").create_secret(Name="demo-api", SecretString="x")
    for line, named in (
        ("X=secretsmanager:demo-api::NOSUCHSTAGE", "has no version labelled NOSUCHSTAGE"),
        (f"X=secretsmanager:demo-api:::{'c' * 32}", f"has no version {'c' * 32}"),
    ):
        (project / "app.env").write_text(line + "\n")
        with recording(aws) as calls:
            result = run("up", "--image", IMAGE)
        assert result.exit_code == 2, (line, result.output)
        assert calls.changing == []
        assert named in said(result.stderr)
