"""The image's WSGI entry: the app's Flask server, with compressed responses.

dashscale copies this file into the image as `dashscale_wsgi.py` and gunicorn serves
`dashscale_wsgi:server`; dashscale itself never imports it (it imports the user's `app`).
flask-compress answers each request in the encoding the client asks for (brotli, else gzip,
else none) for every compressible response above a small size: the page, the JavaScript
bundles, the layout and the callbacks' JSON.
"""

from __future__ import annotations

import re
import sys
from typing import Any

# Levels that cost little CPU: gzip 5 compresses JSON within 1 % of gzip 6 at about half its
# time; brotli 4 is flask-compress's own default. Below MIN_SIZE a response fits in one packet.
SETTINGS: dict[str, Any] = {
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    # flask-compress leaves gzip out for streamed responses (files of assets/) on purpose.
    "COMPRESS_ALGORITHM_STREAMING": ["br"],
    "COMPRESS_LEVEL": 5,
    "COMPRESS_BR_LEVEL": 4,
    "COMPRESS_MIN_SIZE": 1024,
}
BUNDLES = "/_dash-component-suites/"


MAX_BUNDLES = 256  # far more than any app loads; a bound, so no request can grow the cache


class BundleCache:
    """Compressed Dash bundles, kept for the life of the worker.

    A bundle's content cannot change while the process runs (it is a file of an installed
    package), and plotly.js alone takes 0.1-0.2 s of CPU to compress: do it once per encoding.
    Every other response (callbacks, the page, the layout) is compressed afresh.

    Only keys of the form "ENCODING;/_dash-component-suites/..." are kept: flask-compress 1.25
    puts the encoding in front of `bundle_key`'s path; an older release that an app pins would
    use one key for every encoding and hand a gzip client brotli bytes.
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    @staticmethod
    def _kept(key: str) -> bool:
        encoding, separator, path = key.partition(";")
        return bool(encoding and separator and path.startswith(BUNDLES))

    def get(self, key: str) -> bytes | None:
        return self._data.get(key) if self._kept(key) else None

    def set(self, key: str, value: bytes) -> None:
        if self._kept(key) and (key in self._data or len(self._data) < MAX_BUNDLES):
            self._data[key] = value


# Dash fingerprints a bundle's file name (`plotly.v3_1_0m1712345678.min.js`) and serves the same
# file whatever the fingerprint says.
FINGERPRINT = re.compile(r"\.v[\w-]+m[0-9a-fA-F]+(?=\.)")


def bundle_key(request: Any) -> str:
    """The cache key of a bundle request: its path without the fingerprint, so that made-up
    fingerprints of one file share one entry. Anything else gets a key the cache never stores."""
    if request.method != "GET" or not request.path.startswith(BUNDLES):
        return ""
    folder, _, name = str(request.path).rpartition("/")
    return f"{folder}/{FINGERPRINT.sub('', name, count=1)}"


def compresses_already(server: Any) -> bool:
    """True when the app registered flask-compress itself (Dash's `compress=True`)."""
    from flask_compress import Compress

    hooks = [hook for hooks in server.after_request_funcs.values() for hook in hooks]
    return any(isinstance(getattr(hook, "__self__", None), Compress) for hook in hooks)


def compress(server: Any) -> Any:
    """Registers flask-compress on a Flask server that does not compress yet; returns it.

    The app's own COMPRESS_* settings win over these defaults.
    """
    from flask import Flask
    from flask_compress import Compress

    if not isinstance(server, Flask):  # another backend (Dash on FastAPI): left as it is
        _say(f"the app's server is a {type(server).__name__}, not Flask: not compressing")
        return server
    if compresses_already(server):
        _say("the app compresses its own responses: leaving them as they are")
        return server
    for name, value in SETTINGS.items():
        server.config.setdefault(name, value)
    server.config.setdefault("COMPRESS_CACHE_BACKEND", BundleCache)
    server.config.setdefault("COMPRESS_CACHE_KEY", bundle_key)
    Compress(server)
    return server


def app_server() -> Any:
    """`server` from app.py, else `app.server` (dashscale's build checked one exists)."""
    import app as module

    found = getattr(module, "server", None)
    return found if found is not None else module.app.server


def _say(message: str) -> None:
    sys.stderr.write(f"dashscale: {message}\n")


server = compress(app_server())
