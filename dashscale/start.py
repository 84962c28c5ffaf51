"""The `dashscale` command's entry point: guards Ctrl-C before anything else is imported.

Only `os`, `signal`, `sys` (loaded by Python itself) and dashscale's import-free errors module
come before the guard, so the unguarded moment is Python's own start-up.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from dashscale.errors import EXIT_INTERRUPTED  # a module with no imports of its own


def interrupted_before_start(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C while Python imports click, rich and boto3: nothing has changed yet."""
    words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    command = f"dashscale {words[0]}" if words else "dashscale"
    message = (
        f"error: interrupted: `{command}` stopped before it started\n"
        "hint: nothing was changed; run it again when you are ready\n"
    )
    try:
        os.write(2, message.encode())
    finally:
        os._exit(EXIT_INTERRUPTED)


def main() -> None:
    signal.signal(signal.SIGINT, interrupted_before_start)
    from dashscale import stopping
    from dashscale.cli import main as run_cli

    try:
        run_cli()
    except SystemExit as done:
        if done.code == EXIT_INTERRUPTED:
            stopping.finish_interrupted()
        raise
