"""The image's WSGI entry on real Flask and flask-compress: what each client gets back."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import brotli
import pytest

from dashscale.steps.build import WSGI_ENTRY

BIG_JSON = json.dumps({"x": [f"2024-01-01T00:{i % 60:02d}:00" for i in range(2000)]})
BUNDLE = "/_dash-component-suites/dash/dcc/big.v1_0_0m1.js"
APP = f"""
from flask import Flask, Response

server = Flask(__name__)
# SETUP

@server.post("/_dash-update-component")
def callback():
    return Response({BIG_JSON!r}, mimetype="application/json")

@server.get("{BUNDLE}")
def bundle():
    return Response("var a = 1;\\n" * 500, mimetype="application/javascript")

@server.get("/small")
def small():
    return Response("{{}}", mimetype="application/json")
"""


@pytest.fixture
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Loads the entry point in front of APP with `setup` after its Flask server (or `source`)."""

    def load(setup: str = "", source: str | None = None) -> ModuleType:
        (tmp_path / "app.py").write_text(
            source if source is not None else APP.replace("# SETUP", setup)
        )
        spec = importlib.util.spec_from_file_location("dashscale_wsgi", WSGI_ENTRY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("app", None)
    yield load
    sys.modules.pop("app", None)


def post(module: ModuleType, encoding: str | None) -> tuple[str | None, bytes]:
    headers = {"Accept-Encoding": encoding} if encoding is not None else {}
    response = module.server.test_client().post("/_dash-update-component", headers=headers)
    assert response.status_code == 200
    assert "Accept-Encoding" in response.headers["Vary"]
    return response.headers.get("Content-Encoding"), response.get_data()


def test_each_client_gets_the_encoding_it_asks_for(entry: Callable[..., ModuleType]) -> None:
    module = entry()
    encoding, body = post(module, "gzip, deflate, br")
    assert encoding == "br" and brotli.decompress(body).decode() == BIG_JSON
    encoding, body = post(module, "gzip, deflate")
    assert encoding == "gzip" and gzip.decompress(body).decode() == BIG_JSON
    assert len(body) * 3 < len(BIG_JSON)
    assert post(module, None) == (None, BIG_JSON.encode())
    assert post(module, "identity") == (None, BIG_JSON.encode())


def test_small_answers_are_left_alone(entry: Callable[..., ModuleType]) -> None:
    response = entry().server.test_client().get("/small", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers and response.get_data() == b"{}"


def test_bundles_are_compressed_once_per_encoding(entry: Callable[..., ModuleType]) -> None:
    module = entry()
    client = module.server.test_client()
    bodies = [client.get(BUNDLE, headers={"Accept-Encoding": "gzip"}).get_data() for _ in "ab"]
    assert bodies[0] == bodies[1]
    assert gzip.decompress(bodies[0]).decode() == "var a = 1;\n" * 500
    post(module, "gzip")  # callbacks are never cached: each answer is its own
    compressors = [h.__self__ for h in module.server.after_request_funcs[None]]
    assert list(compressors[0].cache._data) == ["gzip;/_dash-component-suites/dash/dcc/big.js"]


def test_made_up_fingerprints_share_one_entry_and_the_cache_is_bounded(
    entry: Callable[..., ModuleType],
) -> None:
    """Dash serves a bundle whatever its fingerprint says: asking for many made-up ones must not
    grow a worker's memory."""
    module = entry()
    cache = module.BundleCache()
    request = type("Request", (), {"method": "GET"})
    keys = set()
    for fingerprint in ("v1_0_0m1", "v9m9", "v1-2m0abc"):
        request.path = f"/_dash-component-suites/dash/dcc/big.{fingerprint}.js"
        keys.add(module.bundle_key(request))
    assert keys == {"/_dash-component-suites/dash/dcc/big.js"}
    for number in range(module.MAX_BUNDLES + 10):
        cache.set(f"gzip;{module.BUNDLES}file{number}.js", b"x")
    assert len(cache._data) == module.MAX_BUNDLES


def test_a_key_without_its_encoding_is_never_cached(entry: Callable[..., ModuleType]) -> None:
    """An older flask-compress (pinned by the app) keys by path alone: caching that would hand
    one client the encoding another asked for."""
    cache = entry().BundleCache()
    cache.set("/_dash-component-suites/dash/dcc/big.js", b"brotli bytes")
    assert cache.get("/_dash-component-suites/dash/dcc/big.js") is None
    cache.set("br;/_dash-component-suites/dash/dcc/big.js", b"brotli bytes")
    assert cache.get("gzip;/_dash-component-suites/dash/dcc/big.js") is None


def test_an_app_that_compresses_itself_is_compressed_once(
    entry: Callable[..., ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    # what Dash(compress=True) does: flask-compress on the server, gzip only
    module = entry(
        "from flask_compress import Compress\n"
        "server.config['COMPRESS_ALGORITHM'] = ['gzip']\n"
        "Compress(server)\n"
    )
    assert len(module.server.after_request_funcs[None]) == 1
    encoding, body = post(module, "br, gzip")
    assert encoding == "gzip" and gzip.decompress(body).decode() == BIG_JSON
    assert "compresses its own responses" in capsys.readouterr().err


def test_the_apps_own_settings_win(entry: Callable[..., ModuleType]) -> None:
    module = entry("server.config['COMPRESS_MIN_SIZE'] = 10**6\n")
    assert post(module, "gzip") == (None, BIG_JSON.encode())


def test_an_app_without_server_is_served_through_app_server(
    entry: Callable[..., ModuleType],
) -> None:
    source = APP.replace("server = Flask", "flask_app = Flask").replace("@server.", "@flask_app.")
    module = entry(source=source + "\nclass Dash:\n    server = flask_app\n\napp = Dash()\n")
    assert post(module, "gzip")[0] == "gzip"
