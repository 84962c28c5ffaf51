"""The shell helpers of scripts/lib.sh, run by bash with a stand-in for pip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def install_with(tmp_path: Path, pip_says: str, pip_exits: int) -> subprocess.CompletedProcess:
    """Runs `install_dashscale test` as scripts/test does, with a `python3` that only answers
    as pip would."""
    fake = tmp_path / "bin"
    fake.mkdir()
    python = fake / "python3"
    python.write_text(f"#!/bin/sh\nprintf '%s\\n' {pip_says!r} >&2\nexit {pip_exits}\n")
    python.chmod(0o755)
    script = "set -euo pipefail; source scripts/lib.sh; install_dashscale test; echo went-on"
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_failed_pip_install_stops_the_script_and_shows_why(tmp_path: Path) -> None:
    result = install_with(tmp_path, "error: externally-managed-environment", 1)
    assert result.returncode == 1
    assert "externally-managed-environment" in result.stdout + result.stderr
    assert "went-on" not in result.stdout


@pytest.mark.parametrize("said", ["WARNING: Running pip as the 'root' user", ""])
def test_a_good_install_goes_on_without_pips_warnings(tmp_path: Path, said: str) -> None:
    result = install_with(tmp_path, said, 0)
    assert result.returncode == 0, result.stderr
    assert "went-on" in result.stdout and "WARNING" not in result.stdout + result.stderr
