"""The serving benchmarks' app: the example app's slider and callback, plus a time series graph.

A dashboard's first load brings plotly.js for the `dcc.Graph`; the button's callback answers
with a 20,000-point series of timestamps and full-precision values, as a pandas frame would.
"""

import datetime
import random

from dash import Dash, Input, Output, dcc, html

POINTS = 20_000
START = datetime.datetime(2024, 1, 1)

app = Dash(__name__, title="dashscale serving benchmark")

app.layout = html.Main(
    [
        html.H1("Serving benchmark"),
        html.Label("How many points?", htmlFor="points"),
        dcc.Slider(id="points", min=1, max=50, step=1, value=10),
        html.P(id="summary"),
        html.Button("Load the series", id="load"),
        dcc.Graph(id="series"),
    ]
)


@app.callback(Output("summary", "children"), Input("points", "value"))
def summarise(points: int) -> str:
    return f"{points} points squared is {points * points}"


@app.callback(Output("series", "figure"), Input("load", "n_clicks"), prevent_initial_call=True)
def series(clicks: int) -> dict:
    """A random walk sampled every minute; the same series for the same click count."""
    rng = random.Random(clicks)
    times, values, value = [], [], 100.0
    for minute in range(POINTS):
        value += rng.gauss(0, 1)
        times.append((START + datetime.timedelta(minutes=minute)).isoformat())
        values.append(value)
    return {"data": [{"type": "scattergl", "mode": "lines", "x": times, "y": values}]}


server = app.server
