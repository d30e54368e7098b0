"""Independent, seeded random streams: one per concern, so changing one feed never reshuffles another."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *stream: str) -> np.random.Generator:
    """A generator determined by the seed and a stream name (e.g. ``rng_for(seed, "registry", "defects")``)."""
    key = zlib.crc32("/".join(stream).encode("utf-8"))
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, key])
