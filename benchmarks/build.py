"""Build benchmark: dashscale's image build against a naive Dockerfile, on the same base image.

For each builder, in a temporary copy of the example project: a cold build (no layer cache for
the app's layers), a warm rebuild after a one-line change of src/app.py, and the size the image
adds over the base. dashscale builds through its own code path (`dashscale.steps.build.build`,
what `dashscale build --no-check` runs); the naive image is built with docker-py from
`COPY . /app` + `pip install` + `python app.py`. Every image made here is removed at the end.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.common import (
    RUN_ID,
    Table,
    docker_client,
    megabytes,
    percent,
    progress,
    ratio,
    require_base_image,
    seconds,
)
from dashscale.config import Config
from dashscale.context import Context
from dashscale.project_files import EXAMPLE_APP_FILES, bundled
from dashscale.steps.build import PROXY_BUILD_ARGS, build, has_bridge_network
from dashscale.ui import UI

APP_NAME = f"bench-{RUN_ID}"
NAIVE_REPOSITORY = f"bench-naive-{RUN_ID}"
NAIVE_DOCKERFILE = """\
FROM {base}
COPY . /app
WORKDIR /app
RUN pip install -r requirements.txt
CMD python app.py
"""
# The one-line source change of the warm rebuild.
ORIGINAL_LINE = "Hello from dashscale"
CHANGED_LINE = "Hello from the build benchmark"
CACHE_HIT = "Using cache"
GOAL_WARM_OVER_COLD = 0.35


@dataclass(frozen=True)
class Built:
    image_id: str
    seconds: float
    cached_steps: int  # build steps the engine took from its layer cache


@dataclass(frozen=True)
class Figures:
    builder: str
    cold: Built
    warm: Built
    size_added: int  # bytes the warm image adds over the base image

    @property
    def warm_over_cold(self) -> float:
        return self.warm.seconds / self.cold.seconds


# A builder builds its project folder once: (client, folder, nocache) -> Built.
Builder = Callable[[Any, Path, bool], Built]


# --- the project copies ----------------------------------------------------------------------


def copy_example_app(folder: Path) -> Path:
    """The example app's src/ (app.py, requirements.txt) under folder; returns the src folder."""
    src = folder / "src"
    src.mkdir(parents=True)
    for relative in EXAMPLE_APP_FILES:
        shutil.copyfile(bundled(relative), folder / relative)
    return src


def change_one_line(app_py: Path) -> None:
    text = app_py.read_text(encoding="utf-8")
    if ORIGINAL_LINE not in text:
        raise RuntimeError(f"{app_py} no longer contains {ORIGINAL_LINE!r} to change")
    app_py.write_text(text.replace(ORIGINAL_LINE, CHANGED_LINE, 1), encoding="utf-8")


def native_platform() -> str:
    return "linux/arm64" if platform.machine().lower() in ("aarch64", "arm64") else "linux/amd64"


# --- the two builders ------------------------------------------------------------------------


def cache_free() -> Any:
    """A second client on the engine whose builds never use the layer cache."""
    import docker

    fresh = docker.from_env(timeout=600)
    fresh.api.build = functools.partial(fresh.api.build, nocache=True)
    return fresh


def build_with_dashscale(client: Any, project: Path, nocache: bool) -> Built:
    """`dashscale build --no-check` in project: the same function, a quiet UI that keeps the log."""
    log = io.StringIO()
    ui = UI(verbose=True, err=Console(file=log, width=200), out=Console(file=io.StringIO()))
    config = Config(
        app_name=APP_NAME,
        aws_region="us-east-1",
        base_image=require_base_image(client),
        platform=native_platform(),
        project_dir=project,
    )
    engine = cache_free() if nocache else client
    started = time.monotonic()
    try:
        image = build(Context(config=config, ui=ui, _docker=engine), verbose=True)
    finally:
        if engine is not client:
            engine.close()
    elapsed = time.monotonic() - started
    return Built(image.id, elapsed, log.getvalue().count(CACHE_HIT))


def build_naive(client: Any, project: Path, nocache: bool) -> Built:
    """docker-py's build of project/src with the naive Dockerfile, the same options otherwise."""
    src = project / "src"
    (src / "Dockerfile").write_text(NAIVE_DOCKERFILE.format(base=require_base_image(client)))
    options: dict[str, Any] = {
        "path": str(src),
        "tag": f"{NAIVE_REPOSITORY}:{'cold' if nocache else 'warm'}",
        "platform": native_platform(),
        "buildargs": {k: os.environ[k] for k in PROXY_BUILD_ARGS if os.environ.get(k)},
        "nocache": nocache,
        "rm": True,
        "forcerm": True,
        "decode": True,
    }
    if not has_bridge_network(client):
        options["network_mode"] = "host"
    started = time.monotonic()
    image_id, cached = consume(client.api.build(**options))
    return Built(image_id, time.monotonic() - started, cached)


def consume(stream: Iterator[dict[str, Any]]) -> tuple[str, int]:
    """The image id and the number of cache hits of a docker-py build stream; raises on error."""
    image_id, cached, tail = None, 0, []
    for chunk in stream:
        if "error" in chunk:
            raise RuntimeError(f"naive build failed: {chunk['error'].strip()}\n" + "".join(tail))
        text = chunk.get("stream", "")
        cached += text.count(CACHE_HIT)
        tail = [*tail[-20:], text]
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if image_id is None:
        raise RuntimeError("naive build finished without an image id")
    return image_id, cached


# --- measuring -------------------------------------------------------------------------------


def measure(client: Any, name: str, builder: Builder, created: list[str]) -> Figures:
    """Cold build, one-line change, warm rebuild, size over the base, in a fresh project copy."""
    base_size = client.images.get(require_base_image(client)).attrs["Size"]
    with tempfile.TemporaryDirectory(prefix=f"dashscale-bench-{name}-") as folder:
        project = Path(folder)
        src = copy_example_app(project)
        progress(f"build: {name}, cold build (no layer cache; pip downloads everything)")
        cold = builder(client, project, True)
        created.append(cold.image_id)
        change_one_line(src / "app.py")
        progress(f"build: {name}, warm rebuild after a one-line change of app.py")
        warm = builder(client, project, False)
        created.append(warm.image_id)
    size = client.images.get(warm.image_id).attrs["Size"] - base_size
    return Figures(name, cold, warm, size)


def remove_images(client: Any, image_ids: list[str]) -> None:
    """Removes the images this run built (newest first) and their untagged build layers."""
    import docker

    for image_id in reversed(dict.fromkeys(image_ids)):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.images.remove(image_id, force=True)


def table(dashscale: Figures, naive: Figures) -> Table:
    rows = tuple(
        (
            figures.builder,
            seconds(figures.cold.seconds),
            seconds(figures.warm.seconds),
            percent(figures.warm.seconds, figures.cold.seconds),
            str(figures.warm.cached_steps),
            megabytes(figures.size_added),
        )
        for figures in (dashscale, naive)
    )
    compared = (
        "dashscale / naive",
        ratio(dashscale.cold.seconds, naive.cold.seconds),
        ratio(dashscale.warm.seconds, naive.warm.seconds),
        "",
        "",
        ratio(dashscale.size_added, naive.size_added),
    )
    met = "met" if dashscale.warm_over_cold <= GOAL_WARM_OVER_COLD else "NOT met"
    return Table(
        title="Build: the example app, dashscale vs a naive Dockerfile, same base image",
        columns=(
            "builder",
            "cold build",
            "warm rebuild",
            "warm / cold",
            "steps cached (warm)",
            "size added",
        ),
        rows=(*rows, compared),
        notes=(
            f"dashscale warm rebuild = {percent(dashscale.warm.seconds, dashscale.cold.seconds)} "
            f"of its cold build (goal at most {GOAL_WARM_OVER_COLD:.0%}: {met}); naive: "
            f"{percent(naive.warm.seconds, naive.cold.seconds)}. dashscale / naive: a factor "
            "below 1 means dashscale is faster or smaller.",
            "cold: the base image is present, nothing else is reused (docker build nocache), and "
            "pip downloads every package from the index through the machine's network: there "
            "is no pip cache in the base image nor in the build.",
            "warm: one line of src/app.py changed, rebuilt with the layer cache of the cold build.",
            "size added: image size minus the base image's, MB = 10^6 bytes. dashscale's build "
            "includes making its tar context and tagging; timings are wall-clock on this machine.",
        ),
    )


def run() -> Table:
    client = docker_client()
    created: list[str] = []
    try:
        dashscale = measure(client, "dashscale", build_with_dashscale, created)
        naive = measure(client, "naive", build_naive, created)
    finally:
        progress("build: removing the images this benchmark built")
        remove_images(client, created)
    return table(dashscale, naive)


if __name__ == "__main__":
    from benchmarks.common import main

    main(["build"])
