"""One exception family: every failure a user can act on carries a message, a hint and an exit code.

The CLI's single error handler prints `message` and `hint` as one or two lines and exits with
`exit_code`; only `--debug` shows a traceback.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class DashscaleError(Exception):
    """A failure with a user-facing message and a hint on what to do next."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(DashscaleError):
    """A missing or invalid configuration value: refused before any AWS or Docker call."""

    exit_code = EXIT_USAGE


class DockerError(DashscaleError):
    """The Docker engine is unreachable, or a build, run or push failed."""


class AwsError(DashscaleError):
    """AWS refused or failed a request the user can act on."""


class NotOwnedError(AwsError):
    """A resource with one of our names exists but is not tagged as this app's."""


class WaitTimeout(DashscaleError):
    """A bounded wait ran out before AWS reached the state we need."""


class PushError(DockerError):
    """A push to the registry failed for good: fatal, refused login, or retries used up."""
