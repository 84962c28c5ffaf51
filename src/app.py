"""Example Dash app deployed by dashscale: one page, one callback.

Its title comes from the environment: set APP_TITLE in app.env (next to .env) and `dashscale up`
gives it to the app's tasks. Secrets arrive the same way, as environment variables.
"""

import os

from dash import Dash, Input, Output, dcc, html

TITLE = os.environ.get("APP_TITLE", "dashscale example")

app = Dash(__name__, title=TITLE)

app.layout = html.Main(
    [
        html.H1("Hello from dashscale"),
        html.Label("How many points?", htmlFor="points"),
        dcc.Slider(id="points", min=1, max=50, step=1, value=10),
        html.P(id="summary"),
    ]
)


@app.callback(Output("summary", "children"), Input("points", "value"))
def summarise(points: int) -> str:
    """Squares the chosen number: small enough to read, real enough to test."""
    return f"{points} points squared is {points * points}"


# gunicorn serves this WSGI application in the container.
server = app.server

if __name__ == "__main__":
    app.run(debug=True)
