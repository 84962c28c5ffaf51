"""`python -m benchmarks [NAME...]`: every benchmark module (or the named ones), a table each."""

from benchmarks.common import main

main()
