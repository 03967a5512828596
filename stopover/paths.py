"""Where stopover keeps caches on disk.

One root for every cache (embedded-model conversion, tokenised datasets,
typology matrices, diversity profiles): `$STOPOVER_CACHE` if set, else the
platform's user cache directory. Tests point it at a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("STOPOVER_CACHE")
    if env:
        root = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("stopover"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-directory of the cache root, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
