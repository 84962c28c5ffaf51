"""`dashscale build`: render Dockerfile.template, build the image from src/ only, smoke-check it.

The build context is a tar made here from src/ and the rendered Dockerfile, so .env, .git and
everything else outside src/ can never enter the image.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import os
import re
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashscale import stopping
from dashscale.aws import Cancelled
from dashscale.config import Config
from dashscale.context import Context
from dashscale.errors import ConfigError, DockerError
from dashscale.project_files import dockerfile_template
from dashscale.ui import WaitDisplay

# Never copied into the image even when they sit inside src/.
EXCLUDED_NAMES = {
    ".env",
    ".git",
    "__pycache__",
    ".venv",
    "venv",
    ".mypy_cache",
    ".pytest_cache",
    ".DS_Store",
    "node_modules",
}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
WSGI_SHIM = "dashscale_wsgi.py"
# The compressing entry point, copied into the image as WSGI_SHIM (see its docstring).
WSGI_ENTRY = Path(__file__).resolve().parent.parent / "wsgi_entry.py"
GUNICORN_REQUIREMENT = "gunicorn>=22"
# Pinned: the entry point relies on its settings and cache interface.
COMPRESS_REQUIREMENT = "flask-compress==1.25"
PROXY_BUILD_ARGS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
LABEL_ARCH = "dashscale.architecture"
CHECK_LABEL = "dashscale.check"  # the smoke check's container: the app's name
CHECK_RUN_LABEL = "dashscale.check.run"  # ...and the run that started it
LABEL_COMMIT = "dashscale.commit"  # the last commit that touched src/, when in git


@dataclass(frozen=True)
class Image:
    """A local image built for the current content."""

    repository: str
    tag: str
    id: str
    architecture: str  # ECS name: X86_64 or ARM64

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


# --- the app's entry point --------------------------------------------------------------------


def wsgi_target(app_py: Path, compress: bool = True) -> tuple[str, str | None]:
    """Returns the gunicorn target and, when needed, a shim module exposing `server`.

    With compression the shim is dashscale's WSGI entry, which wraps the app's server. Without,
    `server = app.server` in app.py is served directly; an app that only defines
    `app = Dash(...)` is served through a two-line shim.
    """
    if not app_py.is_file():
        raise ConfigError(
            f"{app_py} not found",
            "put your Dash app in src/app.py (dashscale init writes an example)",
        )
    try:
        tree = ast.parse(app_py.read_text(encoding="utf-8"), filename=str(app_py))
    except SyntaxError as error:
        raise ConfigError(
            f"src/app.py line {error.lineno}: {error.msg}", "fix the syntax error, then build again"
        ) from None
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    if "server" not in assigned and "app" not in assigned:
        raise ConfigError(
            "src/app.py defines neither `server` nor `app` at module level",
            "create the app as `app = Dash(__name__)` and add `server = app.server`",
        )
    if compress:
        return "dashscale_wsgi:server", WSGI_ENTRY.read_text(encoding="utf-8")
    if "server" in assigned:
        return "app:server", None
    return "dashscale_wsgi:server", "from app import app\n\nserver = app.server\n"


def listed(requirements: str) -> set[str]:
    """The normalised names in a requirements file, plus `NAME[EXTRA]` for each extra."""
    names = set()
    for line in requirements.splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", line)
        if match is None:
            continue
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        names.add(name)
        names.update(
            f"{name}[{extra.strip().lower()}]" for extra in (match.group(2) or "").split(",")
        )
    return names


def extra_requirements(requirements: str, compress: bool) -> list[str]:
    """What the image installs besides src/requirements.txt: gunicorn, and flask-compress when
    compressing, each only when the app does not list it (its own version wins)."""
    names = listed(requirements)
    extra = [] if "gunicorn" in names else [GUNICORN_REQUIREMENT]
    if compress and not names & {"flask-compress", "dash[compress]"}:
        extra.append(COMPRESS_REQUIREMENT)
    return extra


# gunicorn workers x threads per TASK_CPU, measured by benchmarks/layouts.py (README, "Worker
# layouts"): the most callbacks per second with p99 no worse than Dash's development server, in
# every run (the best worse-run rate where runs disagreed). 256-2048 are measured; larger sizes
# keep 2048's one worker per vCPU with 4 threads (a worker runs Python on about one core at a
# time). At 1 vCPU more workers raised throughput but burst past the CPU quota together and were
# throttled, which showed as a worse p99.
WORKER_LAYOUTS: dict[int, tuple[int, int]] = {
    256: (1, 4),
    512: (1, 2),
    1024: (1, 4),
    2048: (2, 4),
    4096: (4, 4),
    8192: (8, 4),
    16384: (16, 4),
}


def worker_layout(task_cpu: int) -> tuple[int, int]:
    """Workers and threads for a Fargate CPU size (TASK_CPU is validated against the table's)."""
    return WORKER_LAYOUTS[task_cpu]


def render_dockerfile(template: str, config: Config, wsgi_app: str, extra: list[str]) -> str:
    workers, threads = worker_layout(config.task_cpu)
    values = {
        "BASE_IMAGE": config.base_image,
        "APP_PORT": str(config.app_port),
        "WORKERS": str(workers),
        "THREADS": str(threads),
        "WSGI_APP": wsgi_app,
        "EXTRA_REQUIREMENTS": " ".join(f"'{requirement}'" for requirement in extra),
    }

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(
                f"Dockerfile.template uses an unknown placeholder {{{{ {key} }}}}",
                f"use only: {', '.join(sorted(values))}",
            )
        return values[key]

    return re.sub(r"\{\{\s*([A-Z_]+)\s*\}\}", replace, template)


# --- the build context ------------------------------------------------------------------------


def source_files(src_dir: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_NAMES)
        for name in sorted(names):
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            files.append(Path(root) / name)
    return files


@dataclass(frozen=True)
class BuildContext:
    files: dict[str, bytes]  # path inside the context -> content

    @property
    def digest(self) -> str:
        sha = hashlib.sha256()
        for path in sorted(self.files):
            sha.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return sha.hexdigest()

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for path in sorted(self.files):
                data = self.files[path]
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 0  # stable: the same content gives the same layers
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def make_context(config: Config) -> BuildContext:
    src = config.src_dir
    if not src.is_dir():
        raise ConfigError(
            f"no src/ folder in {config.project_dir}",
            "put your Dash app in src/app.py, or run `dashscale init`",
        )
    requirements = src / "requirements.txt"
    if not requirements.is_file():
        raise ConfigError(
            "src/requirements.txt not found", "list your app's packages there (at least `dash`)"
        )
    wsgi_app, shim = wsgi_target(src / "app.py", config.compress)
    template = dockerfile_template(config.project_dir).read_text(encoding="utf-8")
    extra = extra_requirements(requirements.read_text(encoding="utf-8"), config.compress)
    dockerfile = render_dockerfile(template, config, wsgi_app, extra)
    files = {f"app/{p.relative_to(src).as_posix()}": p.read_bytes() for p in source_files(src)}
    if shim is not None:
        files[f"app/{WSGI_SHIM}"] = shim.encode()
    files["Dockerfile"] = f"{dockerfile}\nLABEL {LABEL_ARCH}={config.architecture}\n".encode()
    return BuildContext(files)


def content_tag(config: Config, context: BuildContext) -> str:
    """IMAGE_TAG, or one derived from the content only: same content, same tag (tags are
    immutable), so committing sources that are already deployed changes nothing.

    The hash covers the whole context (sources, rendered Dockerfile, platform), so the tag
    changes whenever the image would. The commit goes into a label instead (`source_labels`).
    """
    if config.image_tag:
        return config.image_tag
    return hashlib.sha256(f"{context.digest}:{config.platform}".encode()).hexdigest()[:12]


def source_labels(config: Config) -> dict[str, str]:
    """Image labels that trace the image to its sources without touching its tag."""
    commit = _git_commit(config.src_dir)
    return {LABEL_COMMIT: commit} if commit else {}


def _git_commit(path: Path) -> str | None:
    """The last commit that touched `path`, marked `-dirty` when it holds uncommitted changes."""
    try:
        result = subprocess.run(
            ["git", "-C", str(path), "log", "-1", "--format=%h", "--abbrev=7", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        commit = result.stdout.strip()
        if result.returncode != 0 or not commit:
            return None
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if status.stdout.strip() else commit


# --- building ---------------------------------------------------------------------------------


def has_bridge_network(client: Any) -> bool:
    """False on an engine started without a bridge (--bridge=none): use host networking then."""
    return bool(client.networks.list(names=["bridge"]))


def current_image(ctx: Context) -> tuple[BuildContext, str]:
    context = make_context(ctx.config)
    return context, content_tag(ctx.config, context)


def find_local_image(ctx: Context, tag: str) -> Image | None:
    import docker

    ref = f"{ctx.names.local_image}:{tag}"
    try:
        found = ctx.docker.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    architecture = (found.labels or {}).get(LABEL_ARCH, ctx.config.architecture)
    return Image(ctx.names.local_image, tag, found.id, architecture)


def build(ctx: Context, verbose: bool = False) -> Image:
    """Builds the image for the current content and tags it APP:TAG and APP:latest."""
    context, tag = current_image(ctx)
    repository = ctx.names.local_image
    client = ctx.docker
    ctx.ui.step(f"Building {repository}:{tag} for {ctx.config.platform}")
    options = _build_options(ctx, context, f"{repository}:{tag}")
    started = time.monotonic()
    built = client.images.get(_run_build(ctx, options, verbose))
    built.tag(repository, tag)
    built.tag(repository, "latest")
    ctx.ui.resource(
        "image",
        f"{repository}:{tag}",
        "created",
        f"{built.short_id}, {time.monotonic() - started:.1f} s",
    )
    return Image(repository, tag, built.id, ctx.config.architecture)


def _build_options(ctx: Context, context: BuildContext, ref: str) -> dict[str, Any]:
    """The engine's build request: our tar as the whole context, the proxy variables set here."""
    options: dict[str, Any] = {
        "fileobj": io.BytesIO(context.tar()),
        "custom_context": True,
        "tag": ref,
        "platform": ctx.config.platform,
        "buildargs": {k: os.environ[k] for k in PROXY_BUILD_ARGS if os.environ.get(k)},
        "labels": source_labels(ctx.config),
        "rm": True,
        "forcerm": True,
        "decode": True,
    }
    if not has_bridge_network(ctx.docker):
        options["network_mode"] = "host"
    return options


def _run_build(ctx: Context, options: dict[str, Any], verbose: bool) -> str:
    """Runs the build; the new image's id. A failure shows the log's tail (unless --verbose
    showed it all, or the run was cancelled) and becomes a DockerError."""
    log: list[str] = []
    with ctx.ui.waiting("docker build") as display:
        try:
            image_id = _follow_build(ctx, ctx.docker.api.build(**options), log, verbose, display)
        except (DockerError, Cancelled):
            if not ctx.clock.cancelled.is_set():
                _show_log_tail(ctx, log, verbose)
            raise
        except Exception as error:  # the engine went away, a bad platform, a bad base image
            _show_log_tail(ctx, log, verbose)
            raise DockerError(
                f"the image build failed: {_docker_message(error)}",
                "check BASE_IMAGE and PLATFORM, and that Docker is running",
            ) from None
    if image_id is None:
        raise DockerError("the image build finished without an image id", "run with --verbose")
    return image_id


def _follow_build(
    ctx: Context,
    chunks: Iterable[dict[str, Any]],
    log: list[str],
    verbose: bool,
    display: WaitDisplay,
) -> str | None:
    """Reads the engine's build stream into `log`, showing each step; the image id it ends with."""
    image_id = None
    for chunk in chunks:
        if ctx.clock.cancelled.is_set():  # stop reading: the engine ends the build
            raise Cancelled()
        if "error" in chunk:
            log.append(chunk["error"])
            raise DockerError(
                f"the image build failed: {chunk['error'].strip()}",
                "read the build log above; run with --verbose for all of it",
            )
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        for line in chunk.get("stream", "").splitlines():
            if not line.strip():
                continue
            log.append(line)
            if verbose:
                ctx.ui.detail(line)
            if line.startswith("Step "):
                display.update(f"docker build: {line[:90]}")
    return image_id


def ensure_image(ctx: Context) -> Image:
    """The current content's image: built only when it is not there yet."""
    _, tag = current_image(ctx)
    existing = find_local_image(ctx, tag)
    if existing is not None:
        ctx.ui.resource("image", existing.ref, "found")
        return existing
    return build(ctx)


def _show_log_tail(ctx: Context, log: list[str], verbose: bool) -> None:
    if log and not verbose:
        ctx.ui.info("build log (last 30 lines):")
        for line in log[-30:]:
            ctx.ui.info(f"  {line}")


def _docker_message(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()


# --- smoke check ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port. SO_REUSEADDR, as servers set it: a connection of
    the previous check still in TIME_WAIT (for a minute) does not make the port busy."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def smoke_environment(ctx: Context) -> dict[str, str]:
    """The container's variables for the smoke check: app.env's plain ones, and a placeholder
    (never a real value) for each secret it names, so an app that reads its secrets at start-up
    starts. Read from the project folder only: app.env never enters the image."""
    from dashscale.steps.appconfig import SMOKE_PLACEHOLDER, read_app_env

    env = read_app_env(ctx)
    return {**env.variables, **dict.fromkeys(env.secret_names, SMOKE_PLACEHOLDER)}


def smoke_check(ctx: Context, image: Image, timeout: float = 90.0) -> None:
    """Runs the image and requests HEALTH_CHECK_PATH until it answers 200; always removes it."""
    client = ctx.docker
    port = ctx.config.app_port
    # The run's own label finds the container even when Ctrl-C lands while it is being created.
    labels = {CHECK_LABEL: ctx.names.app, CHECK_RUN_LABEL: ctx.run_id}
    run_options: dict[str, Any] = {
        "detach": True,
        "labels": labels,
        "environment": smoke_environment(ctx),
    }
    if has_bridge_network(client):
        host_port = free_port()
        run_options["ports"] = {f"{port}/tcp": ("127.0.0.1", host_port)}
    else:
        if not port_is_free(port):
            raise DockerError(
                f"port {port} is in use on this machine, so the check cannot run the image",
                "stop what listens there, set APP_PORT to another port, or use --no-check",
            )
        host_port = port
        run_options["network_mode"] = "host"
    url = f"http://127.0.0.1:{host_port}{ctx.config.health_check_path}"

    def remove_this_runs_check() -> None:
        label = f"{CHECK_RUN_LABEL}={ctx.run_id}"
        for found in client.containers.list(all=True, filters={"label": label}):
            _remove(found)

    container = None
    with stopping.cleanup_on_stop(remove_this_runs_check):
        try:
            container = client.containers.run(image.ref, **run_options)
            with ctx.ui.waiting(
                f"checking that the image answers on {ctx.config.health_check_path}"
            ):
                status = _poll_http(ctx, container, url, timeout)
            if status != 200:
                logs = first_error(container.logs().decode(errors="replace"))
                detail = f"answered HTTP {status}" if status else "did not answer"
                raise DockerError(
                    f"the image {detail} on {ctx.config.health_check_path} within "
                    f"{int(timeout)} s; its last log lines:\n{logs}",
                    "run it yourself with `docker run` to look closer, or skip with --no-check",
                )
            ctx.ui.resource("smoke check", url, "passed")
        finally:
            if container is not None:
                _remove(container)


def first_error(log: str, limit: int = 30) -> str:
    """The app's own error from a container log: its first traceback, else the last lines.

    gunicorn follows a failed worker with tracebacks of its own that bury the cause.
    """
    lines = log.rstrip().splitlines()
    for start, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            for end in range(start + 1, len(lines)):
                if lines[end] and not lines[end][0].isspace():
                    return "\n".join(lines[start : end + 1][-limit:])
    return "\n".join(lines[-limit:])


def _poll_http(ctx: Context, container: Any, url: str, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            return status
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if ctx.clock.cancelled.wait(0.5):  # another piece of `up` failed, or Ctrl-C
            raise Cancelled()
    return status


def _remove(container: Any) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)


# --- per-task caches --------------------------------------------------------------------------

# What keeps its data on one task: a background-callback job started there is unknown to the
# others (the load balancer sends the browser's polls to any task), and each task caches alone.
LOCAL_CACHE_NAMES = ("DiskcacheManager", "FileSystemCache", "SimpleCache")
LOCAL_CACHE_TYPES = ("FileSystemCache", "SimpleCache", "filesystem", "simple", "null")
CACHE_TYPE = "CACHE_TYPE"


def _mentions(node: ast.AST, names: set[str]) -> bool:
    """True when `node` reads REDIS_URL: the string itself, or a name assigned from it."""
    return any(
        (isinstance(n, ast.Constant) and n.value == REDIS_URL_NAME)
        or (isinstance(n, ast.Name) and n.id in names)
        for n in ast.walk(node)
    )


REDIS_URL_NAME = "REDIS_URL"


def _redis_names(tree: ast.AST) -> set[str]:
    """Names assigned from an expression that reads REDIS_URL (`REDIS_URL = os.environ...`)."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _mentions(node.value, set())
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _local_cache(node: ast.AST) -> str | None:
    """The per-task cache `node` uses, or None: DiskcacheManager, Flask-Caching's
    FileSystemCache/SimpleCache by class, or CACHE_TYPE set to one of them."""
    if isinstance(node, ast.Name) and node.id in LOCAL_CACHE_NAMES:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in LOCAL_CACHE_NAMES:
        return node.attr
    pairs: list[tuple[Any, Any]] = []
    if isinstance(node, ast.Dict):
        pairs = list(zip(node.keys, node.values, strict=False))
    elif isinstance(node, ast.keyword):
        pairs = [(ast.Constant(node.arg), node.value)]
    elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
        pairs = [(node.targets[0].slice, node.value)]
    for key, value in pairs:
        if (
            isinstance(key, ast.Constant)
            and key.value == CACHE_TYPE
            and isinstance(value, ast.Constant)
            and str(value.value).rsplit(".", 1)[-1] in LOCAL_CACHE_TYPES
        ):
            return f"{CACHE_TYPE}={value.value}"
    return None


def _uses(node: ast.AST, guarded: bool, names: set[str]) -> Iterable[tuple[ast.AST, bool]]:
    """Every node with whether it sits in a branch that depends on REDIS_URL (a fallback)."""
    yield node, guarded
    inner = guarded or (isinstance(node, (ast.If, ast.IfExp)) and _mentions(node.test, names))
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.Import, ast.ImportFrom)):  # importing is not using
            yield from _uses(child, inner, names)


def local_caches(src_dir: Path, redis: bool) -> list[str]:
    """Where the app's sources use a per-task cache (`FILE:LINE NAME`). With `redis` (CACHE=redis
    sets REDIS_URL), a use in a branch on REDIS_URL is the laptop's fallback and does not count."""
    found: list[str] = []
    for path in source_files(src_dir):
        if path.suffix != ".py":
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError):
            continue  # the build reports a broken app.py; other files are the app's business
        names = _redis_names(tree)
        for node, guarded in _uses(tree, False, names):
            name = _local_cache(node)
            if name and not (guarded and redis):
                line = getattr(node, "lineno", 0) or getattr(
                    getattr(node, "value", None), "lineno", 0
                )
                found.append(f"{path.relative_to(src_dir).as_posix()}:{line} {name}")
    return found


def check_shared_cache(config: Config) -> None:
    """Refuses to deploy a per-task cache where more than one task can run, unless
    ALLOW_LOCAL_CACHE=true: with several tasks it breaks silently."""
    tasks = config.most_tasks
    if config.allow_local_cache or tasks <= 1 or not config.src_dir.is_dir():
        return
    found = local_caches(config.src_dir, config.redis)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(
            f"src/{found[0]}{more} keeps its data on one task, but up to {tasks} tasks run: a "
            "background callback polled on another task never finishes, and each task caches "
            "on its own",
            "set CACHE=redis and use CeleryManager and Flask-Caching's RedisCache on REDIS_URL "
            "(`dashscale init --template background` shows how), or set ALLOW_LOCAL_CACHE=true",
        )
