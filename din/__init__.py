"""din-engagement's lowest layer: the contract, the config, and what every other layer shares."""

import os

# polars' allocator (jemalloc) keeps freed pages for up to a second (polars' own setting, which it puts in
# front of this one; the last setting wins). A run's stages follow one another closely (read, validate,
# merge, publish), so each stage's peak would stack on the pages the last one freed; handed back at once,
# a 50 MB delivery's `din run` peaks ~60 MB lower (bench.memory). It must be in the environment before
# polars is loaded: every entry point imports `din` first (tests/din/test_allocator.py).
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
