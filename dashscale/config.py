"""Configuration: `.env` file, then the process environment, then flags; validated once, frozen.

Every variable is declared once in VARIABLES (name, default, rule, description). README and
example.env document the same list; a test keeps them in step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from dashscale import partition, schedule
from dashscale.errors import ConfigError

APP_NAME_MAX = 20
DEFAULT_PLATFORM = "linux/amd64"
PLATFORMS = ("linux/amd64", "linux/arm64")
MANAGED_POLICIES_PER_ROLE = 10  # IAM's default quota (it can be raised; we keep the default)
DEFAULT_CPU_TARGET = 60  # percent; autoscaling's target when neither target variable is set
DEFAULT_CACHE_NODE_TYPE = "cache.t4g.micro"  # the smallest current-generation burstable node


def fargate_memory_options(cpu: int) -> list[int]:
    """Memory sizes (MiB) Fargate accepts for a CPU size (units); empty for an unknown CPU."""
    gib = 1024
    if cpu == 256:
        return [512, 1024, 2048]
    if cpu == 512:
        return list(range(1 * gib, 4 * gib + 1, gib))
    if cpu == 1024:
        return list(range(2 * gib, 8 * gib + 1, gib))
    if cpu == 2048:
        return list(range(4 * gib, 16 * gib + 1, gib))
    if cpu == 4096:
        return list(range(8 * gib, 30 * gib + 1, gib))
    if cpu == 8192:
        return list(range(16 * gib, 60 * gib + 1, 4 * gib))
    if cpu == 16384:
        return list(range(32 * gib, 120 * gib + 1, 8 * gib))
    return []


FARGATE_CPUS = (256, 512, 1024, 2048, 4096, 8192, 16384)


class Invalid(ValueError):
    """Raised by a rule with the description of what is accepted."""


# --- rules: each takes the raw string and returns the typed value or raises Invalid ---------


def _pattern(regex: str, accepted: str) -> Callable[[str], str]:
    compiled = re.compile(regex)

    def rule(raw: str) -> str:
        if not compiled.fullmatch(raw):
            raise Invalid(accepted)
        return raw

    return rule


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    accepted = (
        f"a whole number from {low} to {high}" if high else f"a whole number of at least {low}"
    )

    def rule(raw: str) -> int:
        if not re.fullmatch(r"[0-9]+", raw):
            raise Invalid(accepted)
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise Invalid(accepted)
        return value

    return rule


def _app_name(raw: str) -> str:
    # No double hyphen: ECR repository names allow only single separators.
    if not re.fullmatch(r"[a-z](-?[a-z0-9])*", raw) or len(raw) > APP_NAME_MAX:
        raise Invalid(
            f"1 to {APP_NAME_MAX} lowercase letters, digits and single hyphens, starting with a "
            "letter and not ending with a hyphen"
        )
    return raw


def _domain(raw: str) -> str:
    name = raw.lower().rstrip(".")
    label = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    if len(name) > 253 or not re.fullmatch(rf"({label}\.)+[a-z][a-z0-9-]{{0,61}}[a-z0-9]", name):
        raise Invalid("a domain name such as example.com")
    if name.startswith("www."):
        raise Invalid("the domain without www. (www.DOMAIN is added for an apex)")
    return name


def _https_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?", url):
        raise Invalid("an https:// URL, such as https://login.example.com")
    return url


def _health_path(raw: str) -> str:
    if not raw.startswith("/") or any(c.isspace() for c in raw):
        raise Invalid("a URL path starting with / and without spaces")
    return raw


def _subnets(raw: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in raw.split(",") if s.strip())
    if len(items) < 2 or not all(re.fullmatch(r"subnet-[0-9a-f]+", s) for s in items):
        raise Invalid(
            "at least two subnet ids separated by commas, such as subnet-0a1b,subnet-2c3d"
        )
    return items


def _platform(raw: str) -> str:
    if raw not in PLATFORMS:
        raise Invalid(" or ".join(PLATFORMS))
    return raw


def _policies(raw: str) -> tuple[str, ...]:
    """Managed policies by name (AWS managed, such as AmazonS3ReadOnlyAccess) or full ARN, as
    written: names become ARNs of the region's partition in `_task_role_policies`."""
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    for item in items:
        if item.startswith("arn:"):
            if not re.fullmatch(r"arn:[a-z-]+:iam::([0-9]{12}|aws):policy/\S+", item):
                raise Invalid(
                    "policy names or ARNs (arn:PARTITION:iam::ACCOUNT:policy/NAME), comma-separated"
                )
        elif not re.fullmatch(r"[A-Za-z0-9+=,.@_/-]+", item):
            raise Invalid("policy names or ARNs, comma-separated, such as AmazonS3ReadOnlyAccess")
    return items


def _schedule(raw: str) -> schedule.Schedule:
    try:
        return schedule.parse(raw)
    except schedule.ScheduleError as error:
        raise Invalid(str(error)) from None


ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}")


def _role_arn(raw: str) -> str:
    if not ROLE_ARN.fullmatch(raw):
        raise Invalid("an IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/NAME")
    return raw


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false"):
        raise Invalid("true or false")
    return value == "true"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None
    rule: Callable[[str], Any]
    description: str
    required: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable("APP_NAME", None, _app_name, "Name of the app; every AWS name derives from it.", True),
    Variable(
        "AWS_REGION",
        None,
        _pattern(r"[a-z]{2}(-[a-z]+)+-[0-9]", "a region name such as eu-west-1"),
        "AWS region for every resource (the certificate too).",
        True,
    ),
    Variable("AWS_PROFILE", None, _pattern(r"\S+", "a profile name"), "Profile from ~/.aws."),
    Variable(
        "AWS_ACCOUNT_ID",
        None,
        _pattern(r"[0-9]{12}", "12 digits"),
        "When set, the credentials must belong to this account before anything changes.",
    ),
    Variable("APP_PORT", "8050", _integer(1, 65535), "Port the app listens on in the container."),
    Variable("HEALTH_CHECK_PATH", "/", _health_path, "Path the load balancer checks."),
    Variable("TASK_CPU", "1024", _integer(1), "Fargate CPU units per task (1024 = 1 vCPU)."),
    Variable("TASK_MEMORY", "3072", _integer(1), "Fargate memory per task, MiB."),
    Variable("DESIRED_COUNT", "3", _integer(1), "Number of tasks the service runs."),
    Variable(
        "DOMAIN",
        None,
        _domain,
        "Domain (example.com or sales.example.com); enables HTTPS on it, in the closest "
        "enclosing Route 53 zone.",
    ),
    Variable(
        "WWW",
        None,
        _boolean,
        "Also serve www.DOMAIN (default: true when DOMAIN is the apex of its zone).",
    ),
    Variable(
        "AUTH",
        "none",
        _pattern(r"none|cognito|oidc", "none, cognito or oidc"),
        "Sign-in before the app (needs DOMAIN): cognito (users you manage) or oidc.",
    ),
    Variable("OIDC_ISSUER", None, _https_url, "With AUTH=oidc: the identity provider's issuer."),
    Variable(
        "OIDC_CLIENT_ID",
        None,
        _pattern(r"\S+", "a client id"),
        "With AUTH=oidc: the client id (its secret: `dashscale secret set OIDC_CLIENT_SECRET` or "
        "the environment variable OIDC_CLIENT_SECRET).",
    ),
    Variable(
        "STICKY_SESSIONS",
        None,
        _integer(1, 604800),
        "Seconds the load balancer's cookie keeps a user on one task; unset: off.",
    ),
    Variable("BASE_IMAGE", "python:3.12-slim", _pattern(r"\S+", "an image name"), "Base image."),
    Variable(
        "IMAGE_TAG",
        None,
        _pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "a Docker tag: letters, digits, _ . -"),
        "Image tag; derived from the content when unset.",
    ),
    Variable("PLATFORM", DEFAULT_PLATFORM, _platform, "CPU architecture to build and run."),
    Variable(
        "COMPRESS",
        "true",
        _boolean,
        "Compress the app's responses (brotli or gzip, as the browser asks); false turns it off.",
    ),
    Variable(
        "DASHSCALE_REGISTRY",
        None,
        _pattern(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", "host or host:port"),
        "Push to this registry instead of the one ECR's token names (tests, mirrors).",
    ),
    Variable(
        "DNS_RESOLVER",
        None,
        _pattern(r"none|[0-9A-Fa-f.:]+", "an IP address, IP:port, or none"),
        "DNS server for the delegation check (default: the system's; none skips it).",
    ),
    Variable(
        "PARALLEL_STEPS",
        None,
        _integer(1),
        "Most steps a run makes side by side (default: all that can); 1 makes them one at a "
        "time, in a fixed order (debugging, checking permissions).",
    ),
    Variable("ECR_KEEP_IMAGES", "30", _integer(1, 1000), "Images the repository keeps."),
    Variable(
        "VPC_ID", None, _pattern(r"vpc-[0-9a-f]+", "a VPC id such as vpc-0a1b2c"), "VPC to use."
    ),
    Variable("SUBNET_IDS", None, _subnets, "Subnets (two or more AZs), comma-separated."),
    Variable("LOG_RETENTION_DAYS", "30", _integer(1, 3653), "Days CloudWatch keeps app logs."),
    Variable("HEALTH_CHECK_INTERVAL", "10", _integer(5, 300), "Seconds between health checks."),
    Variable("HEALTHY_THRESHOLD", "2", _integer(2, 10), "Passed checks before a target serves."),
    Variable("DEREGISTRATION_DELAY", "30", _integer(0, 3600), "Seconds to drain a target."),
    Variable("HEALTH_CHECK_GRACE", "30", _integer(0, 7200), "Seconds ECS ignores failed checks."),
    Variable(
        "APP_ENV_FILE",
        "app.env",
        _pattern(r"\S+", "a file path"),
        "The app's environment variables and secret references (relative to the project).",
    ),
    Variable(
        "TASK_ROLE_POLICIES",
        None,
        _policies,
        "Managed policies (names or ARNs, comma-separated) the app's task role gets.",
    ),
    Variable(
        "TASK_POLICY_FILE",
        None,
        _pattern(r"\S+", "a file path"),
        "IAM policy JSON file for the task role's inline policy (relative to the project).",
    ),
    Variable(
        "EXECUTION_ROLE_ARN",
        None,
        _role_arn,
        "The platform team's task execution role: dashscale then makes no role or policy of "
        "its own for ECS.",
    ),
    Variable(
        "TASK_ROLE_ARN",
        None,
        _role_arn,
        "The platform team's task role for the app's code (instead of TASK_ROLE_POLICIES).",
    ),
    Variable(
        "MIN_COUNT",
        None,
        _integer(1),
        "Fewest tasks autoscaling keeps; with MAX_COUNT turns autoscaling on.",
    ),
    Variable("MAX_COUNT", None, _integer(1), "Most tasks autoscaling starts (with MIN_COUNT)."),
    Variable(
        "CPU_TARGET",
        None,
        _integer(1, 100),
        f"Average CPU percent autoscaling keeps the tasks at (default {DEFAULT_CPU_TARGET}).",
    ),
    Variable(
        "REQUESTS_PER_TARGET",
        None,
        _integer(1),
        "Requests per minute per task autoscaling keeps (load balancer's count).",
    ),
    Variable(
        "SCHEDULE",
        None,
        _schedule,
        "Office hours (days, hours, time zone): outside them the app runs no task.",
    ),
    Variable(
        "CACHE",
        "none",
        _pattern(r"none|redis", "none or redis"),
        "redis: a shared ElastiCache cache (Valkey, encrypted) for every task; REDIS_URL is set.",
    ),
    Variable(
        "CACHE_NODE_TYPE",
        DEFAULT_CACHE_NODE_TYPE,
        _pattern(r"cache\.[a-z0-9]+\.[a-z0-9]+", "a cache node type such as cache.t4g.micro"),
        "With CACHE=redis: the cache's node type.",
    ),
    Variable(
        "WORKERS",
        "0",
        _integer(0),
        "Background-callback worker tasks (service APP-worker); needs CACHE=redis.",
    ),
    Variable(
        "WORKER_COMMAND",
        None,
        _pattern(r".*\S.*", "a command"),
        "With WORKERS: the workers' command (default: celery -A MODULE:celery_app worker).",
    ),
    Variable("WORKER_CPU", "512", _integer(1), "Fargate CPU units per worker task."),
    Variable("WORKER_MEMORY", "1024", _integer(1), "Fargate memory per worker task, MiB."),
    Variable(
        "ALLOW_LOCAL_CACHE",
        "false",
        _boolean,
        "true: deploy an app whose per-task cache (DiskcacheManager, FileSystemCache) runs on "
        "several tasks anyway.",
    ),
    Variable(
        "ALERT_EMAIL",
        None,
        _pattern(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+", "one email address, such as ops@example.com"),
        "Email address alarms are sent to (unhealthy targets, 5xx rate, CPU above 90 %).",
    ),
)

_BY_NAME = {v.name: v for v in VARIABLES}
_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


@dataclass(frozen=True)
class Config:
    app_name: str
    aws_region: str
    aws_profile: str | None = None
    aws_account_id: str | None = None
    app_port: int = 8050
    health_check_path: str = "/"
    task_cpu: int = 1024
    task_memory: int = 3072
    desired_count: int = 3
    domain: str | None = None
    www: bool | None = None
    auth: str = "none"
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    sticky_sessions: int | None = None
    base_image: str = "python:3.12-slim"
    image_tag: str | None = None
    platform: str = DEFAULT_PLATFORM
    compress: bool = True
    dashscale_registry: str | None = None
    dns_resolver: str | None = None
    ecr_keep_images: int = 30
    parallel_steps: int | None = None
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] | None = None
    log_retention_days: int = 30
    health_check_interval: int = 10
    healthy_threshold: int = 2
    deregistration_delay: int = 30
    health_check_grace: int = 30
    app_env_file: str = "app.env"
    task_role_policies: tuple[str, ...] = ()
    task_policy_file: str | None = None
    # roles the platform team owns: dashscale names them in the task definition, never changes them
    execution_role_arn: str | None = None
    task_role_arn: str | None = None
    min_count: int | None = None
    max_count: int | None = None
    cpu_target: int | None = None
    requests_per_target: int | None = None
    schedule: schedule.Schedule | None = None
    cache: str = "none"
    cache_node_type: str = DEFAULT_CACHE_NODE_TYPE
    workers: int = 0
    worker_command: str | None = None
    worker_cpu: int = 512
    worker_memory: int = 1024
    allow_local_cache: bool = False
    alert_email: str | None = None
    project_dir: Path = field(default_factory=Path.cwd)
    # The app's folder when it is not PROJECT/src: the example app `up --sandbox` deploys.
    app_source: Path | None = None

    @property
    def src_dir(self) -> Path:
        return self.app_source or self.project_dir / "src"

    @property
    def app_env_path(self) -> Path:
        return self.project_dir / self.app_env_file

    @property
    def task_policy_path(self) -> Path | None:
        return self.project_dir / self.task_policy_file if self.task_policy_file else None

    @property
    def autoscaling(self) -> bool:
        """True when MIN_COUNT and MAX_COUNT are set: the service's task count follows load."""
        return self.min_count is not None and self.max_count is not None

    @property
    def redis(self) -> bool:
        """True with CACHE=redis: a shared cache, its address in REDIS_URL on every task."""
        return self.cache == "redis"

    @property
    def most_tasks(self) -> int:
        """The most app tasks that can run at once (DESIRED_COUNT, or autoscaling's maximum)."""
        return max(self.desired_count, self.max_count or 0)

    @property
    def architecture(self) -> str:
        """ECS's name for the CPU architecture (runtimePlatform.cpuArchitecture)."""
        return "ARM64" if self.platform == "linux/arm64" else "X86_64"


def _raw_values(
    env_file: Path | None,
    environ: Mapping[str, str],
    project_dir: Path,
    defaults: Mapping[str, str],
) -> dict:
    path = env_file if env_file is not None else project_dir / ".env"
    if env_file is not None and not path.is_file():
        raise ConfigError(f"--env-file {path}: no such file", "give the path of a .env file")
    values: dict[str, str | None] = dict(dotenv_values(path)) if path.is_file() else {}
    for var in VARIABLES:
        if var.name in environ:
            values[var.name] = environ[var.name]
        elif var.name in defaults and not (values.get(var.name) or "").strip():
            values[var.name] = defaults[var.name]  # overrides still win (load_config)
    return values


def load_config(
    env_file: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    project_dir: Path | None = None,
    defaults: Mapping[str, str] | None = None,
) -> Config:
    """Reads and validates the configuration; raises one ConfigError naming every bad
    variable, so a user fixes them all in one go. `defaults` fill what no file, environment
    variable or override sets (the sandbox's first try)."""
    project_dir = project_dir or Path.cwd()
    environ = os.environ if environ is None else environ
    raw = _raw_values(env_file, environ, project_dir, defaults or {})
    errors: list[ConfigError] = []
    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            errors.append(unknown_setting(name))
        raw[name] = value

    if (
        not (raw.get("APP_NAME") or "").strip()
        and not (project_dir / ".env").is_file()
        and env_file is None
    ):
        raise ConfigError(
            "no configuration: there is no .env here and APP_NAME is not set",
            "run `dashscale init` to create one, or pass --env-file PATH",
        )

    values: dict[str, Any] = {}
    invalid: set[str] = set()
    for var in VARIABLES:
        text = (raw.get(var.name) or "").strip()
        if not text:
            if var.required:
                errors.append(
                    ConfigError(f"{var.name} is not set", f"set it in .env: {var.description}")
                )
                invalid.add(var.name.lower())
                continue
            text = var.default or ""
            if not text:
                continue
        try:
            values[var.name.lower()] = var.rule(text)
        except Invalid as accepted:
            errors.append(ConfigError(f"{var.name}={text!r} is invalid: expected {accepted}"))
            invalid.add(var.name.lower())

    errors.extend(_check_combinations(values, invalid))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return Config(project_dir=project_dir, **values)


def unknown_setting(name: str) -> ConfigError:
    return ConfigError(
        f"unknown setting {name}", "see `dashscale --help` or the README's variable table"
    )


class ConfigErrors(ConfigError):
    """Several bad settings, reported at once: one line each."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = tuple(errors)  # each one, for callers that look at them separately
        lines = (f"  - {e.message}" + (f" ({e.hint})" if e.hint else "") for e in errors)
        super().__init__(
            f"{len(errors)} settings are invalid:\n" + "\n".join(lines),
            "fix them in .env (or in the --set flags), then re-run",
        )


def _check_combinations(values: dict[str, Any], invalid: set[str]) -> list[ConfigError]:
    """The rules between variables; a rule whose variables are invalid on their own is
    skipped (their own errors say enough)."""
    errors: list[ConfigError] = []

    def checkable(*names: str) -> bool:
        return not invalid.intersection(names)

    if checkable("task_cpu", "task_memory"):
        cpu, memory = values["task_cpu"], values["task_memory"]
        if cpu not in FARGATE_CPUS:
            errors.append(
                ConfigError(
                    f"TASK_CPU={cpu} is invalid: expected one of "
                    f"{', '.join(map(str, FARGATE_CPUS))}"
                )
            )
        elif memory not in fargate_memory_options(cpu):
            errors.append(
                ConfigError(
                    f"TASK_MEMORY={memory} is invalid with TASK_CPU={cpu}: expected one of "
                    f"{', '.join(map(str, fargate_memory_options(cpu)))}"
                )
            )
    errors.extend(_check_workers(values, invalid))
    if checkable("vpc_id", "subnet_ids") and ("vpc_id" in values) != ("subnet_ids" in values):
        errors.append(
            ConfigError(
                "VPC_ID and SUBNET_IDS must be set together",
                "set both to use your own network, or neither for the default VPC",
            )
        )
    if checkable("log_retention_days") and values["log_retention_days"] not in _RETENTION_DAYS:
        errors.append(
            ConfigError(
                f"LOG_RETENTION_DAYS={values['log_retention_days']} is invalid: expected one of "
                f"{', '.join(map(str, _RETENTION_DAYS))}"
            )
        )
    if checkable("task_role_policies", "aws_region") and "task_role_policies" in values:
        try:
            values["task_role_policies"] = _task_role_policies(
                values["task_role_policies"], values["aws_region"]
            )
        except ConfigError as error:
            errors.append(error)
    errors.extend(_check_platform_roles(values, invalid))
    if checkable("auth", "domain", "oidc_issuer", "oidc_client_id"):
        errors.extend(_check_auth(values))
    names = ("min_count", "max_count", "desired_count", "cpu_target", "requests_per_target")
    if checkable(*names):
        try:
            _check_autoscaling(values)
        except ConfigError as error:
            errors.append(error)
    return errors


def _fargate_size(cpu: int, memory: int, cpu_name: str, memory_name: str) -> ConfigError | None:
    """A CPU and memory pair Fargate refuses, as an error naming the variables."""
    if cpu not in FARGATE_CPUS:
        return ConfigError(
            f"{cpu_name}={cpu} is invalid: expected one of {', '.join(map(str, FARGATE_CPUS))}"
        )
    if memory not in fargate_memory_options(cpu):
        return ConfigError(
            f"{memory_name}={memory} is invalid with {cpu_name}={cpu}: expected one of "
            f"{', '.join(map(str, fargate_memory_options(cpu)))}"
        )
    return None


def _check_workers(values: dict[str, Any], invalid: set[str]) -> list[ConfigError]:
    """WORKERS needs the shared cache (their broker); their size is a Fargate pair; a worker
    command means nothing without workers."""
    errors: list[ConfigError] = []
    workers = values.get("workers", 0)
    if not invalid.intersection(("workers", "cache")) and workers and values["cache"] != "redis":
        errors.append(
            ConfigError(
                f"WORKERS={workers} needs CACHE=redis: the workers take their jobs from the "
                "shared Redis",
                "set CACHE=redis, or WORKERS=0",
            )
        )
    if not invalid.intersection(("worker_cpu", "worker_memory")):
        wrong = _fargate_size(
            values["worker_cpu"], values["worker_memory"], "WORKER_CPU", "WORKER_MEMORY"
        )
        if wrong is not None:
            errors.append(wrong)
    if "worker_command" in values and not workers and "workers" not in invalid:
        errors.append(
            ConfigError("WORKER_COMMAND is set but WORKERS is 0", "set WORKERS=N, or remove it")
        )
    return errors


def _task_role_policies(items: tuple[str, ...], region: str) -> tuple[str, ...]:
    """The ARNs of TASK_ROLE_POLICIES in the region's partition, at most IAM's default quota
    of managed policies per role (refused here: IAM would refuse the eleventh attach midway)."""
    home = partition.for_region(region)
    arns: set[str] = set()
    for item in items:
        if not item.startswith("arn:"):
            arns.add(home.managed_policy(item))
        elif home.owns(item):
            arns.add(item)
        else:
            raise ConfigError(
                f"TASK_ROLE_POLICIES names {item}, outside {home.name}, the partition of "
                f"AWS_REGION={region}",
                f"write arn:{home.name}:iam::ACCOUNT:policy/NAME, or the policy's name alone",
            )
    if len(arns) > MANAGED_POLICIES_PER_ROLE:
        raise ConfigError(
            f"TASK_ROLE_POLICIES names {len(arns)} managed policies: IAM attaches at most "
            f"{MANAGED_POLICIES_PER_ROLE} to a role (its default quota)",
            "put the extra permissions in TASK_POLICY_FILE (the role's inline policy), or "
            "combine policies into one of your own",
        )
    return tuple(sorted(arns))


def _check_platform_roles(values: dict[str, Any], invalid: set[str]) -> list[ConfigError]:
    """EXECUTION_ROLE_ARN and TASK_ROLE_ARN: in AWS_REGION's partition, in AWS_ACCOUNT_ID when
    it is set (the caller's account is checked once AWS is read), and a platform task role
    instead of the one TASK_ROLE_POLICIES / TASK_POLICY_FILE would make, not beside it."""
    errors: list[ConfigError] = []
    for name in ("EXECUTION_ROLE_ARN", "TASK_ROLE_ARN"):
        arn = values.get(name.lower())
        if arn is None or "aws_region" in invalid:
            continue
        home = partition.for_region(values["aws_region"])
        account = values.get("aws_account_id")
        if not home.owns(arn):
            errors.append(
                ConfigError(
                    f"{name}={arn} is outside {home.name}, the partition of "
                    f"AWS_REGION={values['aws_region']}",
                    f"give the ARN of a role in it: arn:{home.name}:iam::ACCOUNT:role/NAME",
                )
            )
        elif account and arn.split(":")[4] != account:
            errors.append(
                ConfigError(
                    f"{name} names a role of account {arn.split(':')[4]}, not of "
                    f"AWS_ACCOUNT_ID={account}",
                    "ECS uses roles of the app's own account: ask the platform team for that ARN",
                )
            )
    if values.get("task_role_arn") and (
        values.get("task_role_policies") or values.get("task_policy_file")
    ):
        errors.append(
            ConfigError(
                "TASK_ROLE_ARN is set together with TASK_ROLE_POLICIES or TASK_POLICY_FILE",
                "the platform team's role has the permissions it has: unset the other two",
            )
        )
    return errors


def _check_auth(values: dict[str, Any]) -> list[ConfigError]:
    """Sign-in needs DOMAIN (the load balancer authenticates on HTTPS only); OIDC needs its
    issuer and client id, and they mean nothing without it."""
    auth = values.get("auth", "none")
    errors = []
    if auth != "none" and "domain" not in values:
        errors.append(
            ConfigError(
                f"AUTH={auth} needs DOMAIN: the load balancer signs users in on HTTPS only",
                "set DOMAIN (such as sales.example.com), or AUTH=none",
            )
        )
    oidc = [name.upper() for name in ("oidc_issuer", "oidc_client_id") if name in values]
    if auth == "oidc" and len(oidc) < 2:
        errors.append(
            ConfigError(
                "AUTH=oidc needs OIDC_ISSUER and OIDC_CLIENT_ID",
                "set both (the client secret: `dashscale secret set OIDC_CLIENT_SECRET`, or the "
                "environment variable OIDC_CLIENT_SECRET)",
            )
        )
    elif auth != "oidc" and oidc:
        errors.append(
            ConfigError(f"{oidc[0]} is set but AUTH is {auth}", "set AUTH=oidc, or remove it")
        )
    return errors


def _check_autoscaling(values: dict[str, Any]) -> None:
    """MIN_COUNT and MAX_COUNT together, MIN <= DESIRED_COUNT <= MAX, targets only with them;
    CPU_TARGET defaults to DEFAULT_CPU_TARGET when no target is set."""
    low, high = values.get("min_count"), values.get("max_count")
    targets = [name for name in ("cpu_target", "requests_per_target") if name in values]
    if low is None and high is None:
        if targets:
            raise ConfigError(
                f"{targets[0].upper()} is set but autoscaling is off",
                "set MIN_COUNT and MAX_COUNT to turn autoscaling on, or remove it",
            )
        return
    if low is None or high is None:
        missing = "MIN_COUNT" if low is None else "MAX_COUNT"
        given = "MAX_COUNT" if low is None else "MIN_COUNT"
        raise ConfigError(
            f"{missing} is not set, but {given} is: autoscaling needs both",
            "set both MIN_COUNT and MAX_COUNT, or neither for a fixed DESIRED_COUNT",
        )
    if low > high:
        raise ConfigError(
            f"MIN_COUNT={low} is greater than MAX_COUNT={high}",
            "set MIN_COUNT at most MAX_COUNT",
        )
    desired = values["desired_count"]
    if not low <= desired <= high:
        raise ConfigError(
            f"DESIRED_COUNT={desired} is outside MIN_COUNT={low} to MAX_COUNT={high}",
            "with autoscaling, DESIRED_COUNT is the count the service starts with: set it "
            "between MIN_COUNT and MAX_COUNT",
        )
    if not targets:
        values["cpu_target"] = DEFAULT_CPU_TARGET


def parse_overrides(items: tuple[str, ...]) -> dict[str, str]:
    """Turns repeated `--set NAME=VALUE` flags into a mapping."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set {item!r} is invalid: expected NAME=VALUE")
        result[name.strip().upper()] = value
    return result


def check_value(name: str, raw: str) -> Any:
    """Validates one variable on its own (for `init` and flags); raises ConfigError."""
    var = _BY_NAME.get(name)
    if var is None:
        raise unknown_setting(name)
    try:
        return var.rule(raw.strip())
    except Invalid as accepted:
        raise ConfigError(f"{name}={raw!r} is invalid: expected {accepted}") from None
