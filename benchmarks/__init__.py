"""Benchmarks of issue 9: `benchmarks/run` runs every module here that defines `run() -> Table`."""
