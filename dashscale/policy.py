"""`dashscale policy`: the least-privilege IAM policy to run dashscale for this app, generated
from the declarations next to the calls, never from a hand-kept list.

Every Resource declares the IAM actions it uses (dashscale/model.py `Permissions`: to find it,
to apply its change, to survey it, to delete it, and which of those a new image alone makes),
and every step that is not a resource declares its own next to its code (the deployment
followed, `status`, `logs`, `users`, `secret`, the registrar check, the account lookup). This
module only collects them for one purpose and scopes each action to the app's own names:

- `deploy`: what shipping a new image of an app that exists needs (read everything, push, a
  task definition, the service updated, its roles passed, the rollout followed);
- `up`: everything `up` may create or change, and the everyday commands around it (`status`,
  `logs`, `scale`, `users add`/`list`, `secret set`/`list`);
- `teardown`: the survey of everything the app may own and its deletion;
- `all`: the three together, with `users remove`, `secret remove` and `--update-registrar`.

A test holds the package's AWS calls to these declarations, runs every command under the
generated actions in an emulator that enforces IAM, and removes each action once to show it is
needed (tests/test_policy_enforced.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from dashscale import aws, partition
from dashscale.context import Context
from dashscale.errors import DashscaleError
from dashscale.model import Permissions, Reading

PURPOSES = ("up", "deploy", "teardown", "all")
ECS_TASKS = partition.ECS_TASKS_PRINCIPAL
# IAM actions that create, change or delete roles and their policies: none of them when the
# platform team owns the roles (EXECUTION_ROLE_ARN / TASK_ROLE_ARN)
IAM_WRITE = re.compile(r"iam:(Create|Put|Delete|Attach|Detach|Tag|Untag|Update)")


# --- which actions --------------------------------------------------------------------------------


def _unique(actions: Iterable[str]) -> list[str]:
    return sorted(set(actions))


def _up_kinds(ctx: Context) -> tuple[list[Reading], list[Permissions]]:
    """What `up` reads, and the permissions of each resource it manages, for this config."""
    from dashscale.steps import up
    from dashscale.steps.image import Image

    kinds = up.resources(ctx, Image())
    return up.readings(ctx), [kind.permissions(ctx) for kind in kinds]


def _inventory(ctx: Context) -> list[Permissions]:
    from dashscale.steps import up

    return [kind.permissions(ctx) for kind in up.every_resource()]


def deploy_actions(ctx: Context) -> list[str]:
    """A new image of an app that exists: read, push, register, update, follow."""
    from dashscale.steps import appconfig, deployment, tls

    readings, kinds = _up_kinds(ctx)
    actions = [*aws.IDENTITY_CALLS, *deployment.FOLLOW_CALLS, *deployment.FAILURE_CALLS]
    actions += [a for reading in readings for a in reading.find_permissions(ctx)]
    actions += [a for kind in kinds for a in (*kind.find, *kind.redeploy)]
    if ctx.config.domain:  # every `up` with DOMAIN asks whether Route 53 Domains registers it
        actions += tls.REGISTRAR_CALLS
    if getattr(ctx.config, "execution_role_arn", None):  # whether it can read the secrets
        actions += appconfig.SIMULATE_CALLS
    return _unique([*actions, "iam:PassRole"])


def up_actions(ctx: Context) -> list[str]:
    """`up` from nothing (and any change of its configuration's resources), plus the everyday
    commands: status, logs, scale, users add/list, secret set/list."""
    from dashscale.steps import appconfig, auth, https, logs, scale, status, wake

    _, kinds = _up_kinds(ctx)
    actions = [*deploy_actions(ctx), *(a for kind in kinds for a in kind.apply)]
    actions += [a for kind in _inventory(ctx) for a in kind.survey]
    actions += [*status.STATUS_CALLS, *logs.LOGS_CALLS, *scale.SCALE_CALLS]
    actions += [*appconfig.SECRET_SET_CALLS, *appconfig.SECRET_LIST_CALLS]
    if ctx.config.domain:
        actions += https.CERTIFICATE_WAIT_CALLS
    if ctx.config.auth == auth.COGNITO:
        actions += [*auth.USERS_ADD_CALLS, *auth.USERS_LIST_CALLS]
    if ctx.config.schedule:
        actions += wake.WAKE_CALLS
    return _unique(actions)


def teardown_actions(ctx: Context) -> list[str]:
    """`teardown` and `teardown --all`: the survey of every kind the app may own, and its
    deletion, whatever the configuration says now (an older one may have made it)."""
    kinds = _inventory(ctx)
    survey = [a for kind in kinds for a in (*kind.survey, *kind.delete)]
    return _unique([*aws.IDENTITY_CALLS, *survey])


def all_actions(ctx: Context) -> list[str]:
    from dashscale.steps import appconfig, auth, ci, tls

    extra = [*auth.USERS_REMOVE_CALLS, *appconfig.SECRET_REMOVE_CALLS, *tls.REGISTRAR_CALLS]
    extra += tls.REGISTRAR_UPDATE_CALLS
    # `ci role`: GitHub's OIDC provider and the deployer role, made once by an administrator
    for kind in ci.RESOURCES:
        extra += [*kind.permissions(ctx).find, *kind.permissions(ctx).apply]
    return _unique([*up_actions(ctx), *teardown_actions(ctx), *extra])


def actions(ctx: Context, purpose: str) -> list[str]:
    """The IAM actions of `purpose` for this configuration, sorted."""
    chosen = {
        "up": up_actions,
        "deploy": deploy_actions,
        "teardown": teardown_actions,
        "all": all_actions,
    }.get(purpose)
    if chosen is None:
        raise DashscaleError(f"unknown purpose {purpose!r}", f"use one of {', '.join(PURPOSES)}")
    found = [a for a in chosen(ctx) if a not in aws.NEEDS_NO_PERMISSION]
    if given_roles(ctx):
        found = [a for a in found if not IAM_WRITE.match(a)]
    return found


def given_roles(ctx: Context) -> tuple[str, ...]:
    """The role ARNs the platform team owns (EXECUTION_ROLE_ARN, TASK_ROLE_ARN), when set."""
    given = (
        getattr(ctx.config, "execution_role_arn", None),
        getattr(ctx.config, "task_role_arn", None),
    )
    return tuple(str(arn) for arn in given if arn)


# --- where each action applies --------------------------------------------------------------------

# Why a statement is "*": the service authorizes the action on no narrower resource, or the
# resource's ARN carries an id AWS gives only at creation. The Sid says it; the sentence is
# what `dashscale policy` prints beside the document.
WHY: dict[str, tuple[str, str]] = {
    "Identity": ("AnyGetCallerIdentityNamesNoResource", "sts:GetCallerIdentity names no resource"),
    "EcrLogin": (
        "AnyEcrLoginTokenIsForTheWholeRegistry",
        "an ECR login token is for the whole registry: ECR accepts only *",
    ),
    "EcsAccountWide": (
        "AnyEcsTaskDefinitionsAndTaskListsAcceptOnlyStar",
        "ECS authorizes registering and reading task definitions, and ListTasks, on * only",
    ),
    "LogsListing": (
        "AnyDescribeLogGroupsAcceptsOnlyStar",
        "DescribeLogGroups lists the account's groups: CloudWatch Logs accepts * only",
    ),
    "Ec2": (
        "AnyEc2DescribesAndSecurityGroupIdsUnknownBeforeCreation",
        "EC2 describes only on *, and security group ARNs carry ids given at creation",
    ),
    "ElbDescribe": (
        "AnyElbDescribesAcceptOnlyStar",
        "Elastic Load Balancing describes only on *",
    ),
    "Certificates": (
        "AnyCertificateIdsUnknownBeforeRequest",
        "certificate ARNs carry ids given at creation; ListCertificates and RequestCertificate "
        "accept only *",
    ),
    "Route53Account": (
        "AnyListingCreatingAndTaggingNewHostedZones",
        "listing and creating hosted zones accept only *, and the tag goes on the zone just "
        "created, whose id the policy cannot know",
    ),
    "Route53Zone": (
        "AnyHostedZoneIdUnknownUntilCreated",
        "the hosted zone does not exist yet: run `dashscale policy` again after the first `up` "
        "to scope these to its id",
    ),
    "Domains": ("AnyRoute53DomainsAcceptsOnlyStar", "Route 53 Domains accepts only *"),
    "UserPools": (
        "AnyUserPoolIdsUnknownBeforeCreation",
        "user pool ARNs carry ids given at creation; ListUserPools and CreateUserPool accept "
        "only *",
    ),
    "Autoscaling": (
        "AnyScalableTargetIdsUnknownBeforeRegistration",
        "Application Auto Scaling's target ARNs carry ids given at registration",
    ),
    "Parameters": ("AnyDescribeParametersAcceptsOnlyStar", "DescribeParameters accepts only *"),
    "IamListing": (
        "AnyListRolesListsTheAccount",
        "iam:ListRoles lists every role of the account (whether one still trusts GitHub's "
        "provider): IAM accepts only *",
    ),
    "Cache": (
        "AnyElastiCacheCreationSpansResourcesAwsNames",
        "creating a replication group authorizes its node clusters, parameter group, subnet "
        "group and security groups, some of them named by AWS",
    ),
    "SnsAccountWide": (
        "AnySnsListTopicsAndUnsubscribeAcceptOnlyStar",
        "sns:ListTopics and sns:Unsubscribe accept only *",
    ),
    "Metrics": (
        "AnyMetricReadsAndAlarmListingAcceptOnlyStar",
        "GetMetricData and DescribeAlarms accept only *",
    ),
    "SecretsManager": (
        "AnySecretsAppEnvNamesMayBeAnywhere",
        "the Secrets Manager secrets app.env names may have any name",
    ),
}


class Scopes:
    """The ARNs of the app's own names, in this account, region and partition."""

    def __init__(self, ctx: Context, account: str) -> None:
        names, region = ctx.names, ctx.config.aws_region
        self.p = partition.for_region(region)
        self.region, self.account, self.names = region, account, names
        self.ctx = ctx
        self.zone_id: str | None = None

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return self.p.arn(service, self.region if region else "", self.account, resource)

    def roles(self, passed: bool = False) -> list[str]:
        """The app's roles: those the platform team owns when given, else its own by name
        (to pass to ECS: the task role only when the configuration asks for one; to read and
        delete: both, as an older configuration may have made it)."""
        from dashscale.steps.taskrole import task_role_wanted

        given = given_roles(self.ctx)
        if given:
            return sorted(given)
        names = [self.names.execution_role]
        names += [self.names.task_role] if task_role_wanted(self.ctx) or not passed else []
        names += [] if passed else [self.names.deployer_role]  # `ci role`'s, never passed
        return [self.arn("iam", f"role/{name}", region=False) for name in names]

    def managed_policies(self) -> list[str]:
        from dashscale.steps.cluster import execution_policy_arn

        return sorted({execution_policy_arn(self.ctx), *self.ctx.config.task_role_policies})


def _statement(sid: str, actions: Sequence[str], resource: Any, **extra: Any) -> dict[str, Any]:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resource}
    statement.update(extra)
    return statement


def _ecs(s: Scopes, action: str) -> tuple[str, Any]:
    n = s.names
    cluster = s.arn("ecs", f"cluster/{n.cluster}")
    service = s.arn("ecs", f"service/{n.cluster}/{n.service}")
    family = s.arn("ecs", f"task-definition/{n.taskdef}:*")
    name = action.split(":", 1)[1]
    if name in ("CreateCluster", "DescribeClusters", "DeleteCluster"):
        return "EcsCluster", cluster
    if name.endswith(("Service", "Services")):
        return "EcsService", service
    if name == "DeleteTaskDefinitions":
        return "EcsTaskDefinition", family
    if name == "DescribeTasks":
        return "EcsTasks", s.arn("ecs", f"task/{n.cluster}/*")
    if name in ("TagResource", "ListTagsForResource"):
        return "EcsTagging", sorted([cluster, service, family])
    return "EcsAccountWide", "*"


def _elb(s: Scopes, action: str) -> tuple[str, Any]:
    n = s.names
    balancer = s.arn("elasticloadbalancing", f"loadbalancer/app/{n.alb}/*")
    group = s.arn("elasticloadbalancing", f"targetgroup/{n.target_group}/*")
    listener = s.arn("elasticloadbalancing", f"listener/app/{n.alb}/*/*")
    name = action.split(":", 1)[1]
    if name.startswith("Describe"):
        return "ElbDescribe", "*"
    if name in ("AddTags", "RemoveTags"):
        return "ElbTagging", [balancer, group, listener]
    if "TargetGroup" in name:
        return "ElbTargetGroup", group
    if name in ("ModifyListener", "DeleteListener"):
        return "ElbListener", listener
    return "ElbLoadBalancer", balancer


ACCOUNT_WIDE_ZONE_ACTIONS = (
    "route53:ListHostedZones",
    "route53:ListHostedZonesByName",
    "route53:CreateHostedZone",
    "route53:ChangeTagsForResource",  # the tag of the zone just created: its id unknown before
)


def _route53(s: Scopes, action: str) -> tuple[str, Any]:
    if action in ACCOUNT_WIDE_ZONE_ACTIONS:
        return "Route53Account", "*"
    if s.zone_id:
        return "Route53Zone", s.p.arn("route53", "", "", f"hostedzone/{s.zone_id}")
    return "Route53Zone", "*"


def _iam(s: Scopes, action: str) -> tuple[str, Any]:
    name = action.split(":", 1)[1]
    if name == "GetPolicy":
        return "ManagedPolicies", s.managed_policies()
    if name == "ListRoles":
        return "IamListing", "*"
    if "OpenIDConnectProvider" in name:
        from dashscale.steps.ci import GITHUB_HOST

        return "GithubProvider", s.arn("iam", f"oidc-provider/{GITHUB_HOST}", region=False)
    return "AppRoles", s.roles()


def scope(s: Scopes, action: str) -> tuple[str, Any]:
    """(the statement's Sid, its Resource) for one action."""
    service, name = action.split(":", 1)
    n = s.names
    if service == "ecr":
        if name == "GetAuthorizationToken":
            return "EcrLogin", "*"
        return "EcrRepository", s.arn("ecr", f"repository/{n.repository}")
    if service == "ecs":
        return _ecs(s, action)
    if service == "logs":
        if name == "DescribeLogGroups":
            return "LogsListing", "*"
        group = s.arn("logs", f"log-group:{n.log_group}")
        return "LogGroup", [group, f"{group}:*"]
    if service == "iam":
        return _iam(s, action)
    if service == "sns":
        if name in ("ListTopics", "Unsubscribe"):
            return "SnsAccountWide", "*"
        return "AlertTopic", s.arn("sns", f"{n.app}-alerts")  # alarms.topic_name
    if service == "cloudwatch":
        if name in ("GetMetricData", "DescribeAlarms"):
            return "Metrics", "*"
        from dashscale.steps.alarms import WHICH

        return "Alarms", [s.arn("cloudwatch", f"alarm:{n.app}-{which}") for which in WHICH]
    if service == "ssm":
        if name == "DescribeParameters":
            return "Parameters", "*"
        return "AppSecrets", s.arn("ssm", f"parameter{n.secrets_path}*")
    if service == "elasticloadbalancing":
        return _elb(s, action)
    if service == "route53":
        return _route53(s, action)
    fixed = {
        "sts": "Identity",
        "ec2": "Ec2",
        "acm": "Certificates",
        "route53domains": "Domains",
        "cognito-idp": "UserPools",
        "application-autoscaling": "Autoscaling",
        "secretsmanager": "SecretsManager",
        "elasticache": "Cache",
    }
    return fixed[service], "*"


def document(ctx: Context, purpose: str) -> dict:
    """The IAM policy document of `purpose` (up, deploy, teardown, all) for this app: each
    statement scoped to the app's own ARNs, or `*` with a Sid that says why."""
    chosen = actions(ctx, purpose)
    scopes = Scopes(ctx, ctx.config.aws_account_id or ctx.aws.account_id)
    if ctx.config.domain and any(a.startswith("route53:") for a in chosen):
        scopes.zone_id = _zone_id(ctx)
    grouped: dict[str, tuple[Any, list[str]]] = {}
    for action in chosen:
        if action == "iam:PassRole":
            continue
        sid, resource = scope(scopes, action)
        grouped.setdefault(sid, (resource, []))[1].append(action)
    statements = []
    for sid, (resource, listed) in grouped.items():
        named = WHY[sid][0] if resource == "*" else sid
        statements.append(_statement(named, listed, resource))
    if "iam:PassRole" in chosen:
        statements.append(
            _statement(
                "PassAppRolesToEcsTasksOnly",
                ["iam:PassRole"],
                scopes.roles(passed=True),
                Condition={"StringEquals": {"iam:PassedToService": ECS_TASKS}},
            )
        )
    statements.sort(key=lambda st: st["Sid"])
    return {"Version": "2012-10-17", "Statement": statements}


def broad_reasons(policy: dict) -> list[tuple[str, str]]:
    """(Sid, why) of each statement on "*" of `policy`."""
    sentences = dict(WHY.values())
    return [
        (st["Sid"], sentences[st["Sid"]]) for st in policy["Statement"] if st["Resource"] == "*"
    ]


def _zone_id(ctx: Context) -> str | None:
    """The id of the zone DOMAIN's records live in, when it exists (one read)."""
    from dashscale.steps import tls

    try:
        zone = tls.find_enclosing_zone(ctx)
    except DashscaleError:
        return None
    return zone.id if zone else None
