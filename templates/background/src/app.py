"""Example Dash app with a background callback and a shared cache (`dashscale init --template
background`).

With REDIS_URL set (dashscale sets it on every task when CACHE=redis), background callbacks run
on the Celery workers (WORKERS=N) and memoized results live in Redis, so every task sees the same
jobs and the same cache. Without it (on a laptop), DiskcacheManager and a cache folder do the
same on one machine. The worker command: celery -A app:celery_app worker --loglevel=INFO
"""

import os
import secrets
import time

from dash import Dash, Input, Output, dcc, html
from flask_caching import Cache

REDIS_URL = os.environ.get("REDIS_URL")
# A folder the app's (non-root) user can write; only used without REDIS_URL.
CACHE_DIR = os.environ.get("CACHE_DIR", "/tmp/dash-cache")
STEPS = int(os.environ.get("STEPS", "5"))  # progress updates of the background callback
STEP_SECONDS = float(os.environ.get("STEP_SECONDS", "1"))
SLOW_SECONDS = float(os.environ.get("SLOW_SECONDS", "1"))  # the memoized computation's time
SECRET_KEY_NAME = "dash-app-secret-key"

if REDIS_URL:
    import redis
    from celery import Celery
    from dash import CeleryManager

    celery_app = Celery(__name__, broker=REDIS_URL, backend=REDIS_URL)
    background_callback_manager = CeleryManager(celery_app)
    cache_config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": REDIS_URL}
    store = redis.Redis.from_url(REDIS_URL)
    # One secret for every task and process: the first to start sets it, the rest read it.
    store.set(SECRET_KEY_NAME, secrets.token_hex(32), nx=True)
    secret_key = store.get(SECRET_KEY_NAME)
else:
    import diskcache
    from dash import DiskcacheManager

    disk = diskcache.Cache(CACHE_DIR)
    background_callback_manager = DiskcacheManager(disk)
    cache_config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": f"{CACHE_DIR}/memo"}
    disk.add(SECRET_KEY_NAME, secrets.token_hex(32))
    secret_key = disk.get(SECRET_KEY_NAME)

app = Dash(
    __name__,
    title="dashscale background example",
    background_callback_manager=background_callback_manager,
)
server = app.server  # gunicorn serves this WSGI application in the container
server.secret_key = secret_key
cache = Cache(server, config={"CACHE_DEFAULT_TIMEOUT": 600, **cache_config})

app.layout = html.Main(
    [
        html.H1("Background callbacks and a shared cache"),
        html.Button("Run the slow job", id="run"),
        html.P(id="progress"),
        html.P(id="result"),
        html.Label("A number to square (slowly, once):", htmlFor="number"),
        dcc.Input(id="number", type="number", value=7),
        html.P(id="squared"),
    ]
)


@app.callback(
    Output("result", "children"),
    Input("run", "n_clicks"),
    background=True,
    progress=[Output("progress", "children")],
    prevent_initial_call=True,
)
def slow_job(set_progress, n_clicks):
    """Runs on a worker; the browser polls any task for its progress and its result."""
    total = 0
    for step in range(1, STEPS + 1):
        time.sleep(STEP_SECONDS)
        total += step
        set_progress(f"step {step} of {STEPS}")
    return f"run {n_clicks}: the sum of 1..{STEPS} is {total}"


@cache.memoize()
def slow_square(number):
    """Computed once for every task: the next request, on any task, reads it from the cache."""
    time.sleep(SLOW_SECONDS)
    return number * number


@app.callback(Output("squared", "children"), Input("number", "value"))
def show_square(number):
    if number is None:
        return ""
    return f"{number} squared is {slow_square(number)}"


if __name__ == "__main__":
    app.run(debug=True)
