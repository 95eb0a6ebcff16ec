"""The din-engagement benchmark: `din run` beside bare DuckDB, a checked DuckDB script and dlt.

Run from the repository root: `python -m bench.run` (or `./dev bench`). See bench/README.md.
"""
