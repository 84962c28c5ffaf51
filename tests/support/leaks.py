"""Leak checks: no piece of a secret shows, not only the whole value.

A test that looks for the whole value passes when the product prints `value[:4]` or the last
eight characters. `assert_no_leak` looks for every 4-character window of each secret, in the
text as printed and with whitespace removed (rich wraps long lines, splitting a value).

Windows that short only mean something when they cannot occur by chance, so the secrets the
tests choose come from `distinctive_secret`: random letters and digits with a `~` in every
run of three, so every window holds a `~` next to random characters, which no output,
ARN, hash or id holds naturally. `assert_no_leak` refuses a secret that is not of that shape
(a weak value would make the check mean nothing); for values the tests do not choose (a
client secret that Cognito generates) `window=` takes a longer window.
"""

from __future__ import annotations

import random
import re
import secrets as _secrets
import string
from collections.abc import Iterable

WINDOW = 4
MARK = "~"  # in every window of a distinctive secret; not in rich markup, JSON or URL escapes
_ALNUM = string.ascii_letters + string.digits
_DISTINCTIVE = re.compile(r"(?:~[A-Za-z0-9]{2})+~?")


def distinctive_secret(length: int = 24) -> str:
    """A random secret value whose every 4-character window is unlikely anywhere else."""
    rng = random.Random(_secrets.randbits(64))
    chars = [MARK if i % 3 == 0 else rng.choice(_ALNUM) for i in range(length)]
    return "".join(chars)


def windows(secret: str, size: int = WINDOW) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaked_windows(text: str, secret: str, size: int = WINDOW) -> list[str]:
    """The windows of `secret` that occur in `text`, as printed or with whitespace removed."""
    squeezed = "".join(text.split())
    return sorted(w for w in windows(secret, size) if w in text or w in squeezed)


def assert_no_leak(
    text: str | bytes, secrets: Iterable[str], where: str = "output", window: int = WINDOW
) -> None:
    """Fails when any `window`-character piece of any secret occurs in `text`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    values = list(secrets)
    assert values, "no secrets given: the leak check would check nothing"
    for secret in values:
        assert len(secret) >= window + 8, f"secret too short for a leak check: {len(secret)}"
        if window == WINDOW:
            assert _DISTINCTIVE.fullmatch(secret), (
                f"{secret!r} is not a distinctive_secret(): its 4-character windows could "
                "occur by chance"
            )
        found = leaked_windows(text, secret, window)
        assert not found, (
            f"pieces of a secret ({secret[:1]}…) in {where}: {found[:5]} "
            f"(at {text.find(found[0]) if found[0] in text else 'a wrapped line'})"
        )


def assert_no_leak_in_results(
    results: Iterable, secrets: Iterable[str], window: int = WINDOW
) -> None:
    """Checks stdout and stderr of click Results or CompletedProcesses."""
    values = list(secrets)
    for result in results:
        name = " ".join(getattr(result, "args", []) or []) or repr(result)
        assert_no_leak(result.stdout, values, f"stdout of {name}", window)
        assert_no_leak(result.stderr, values, f"stderr of {name}", window)
