"""dashscale: a Plotly Dash app from a laptop to production on AWS, and back again."""

__version__ = "0.1.0"
