"""Seeds derived from names: the same in every process and on every machine (unlike ``hash()``), so a random
stream can be keyed by what it is for (a seed, a pair id, a step) rather than by the order things run in."""

from __future__ import annotations

import hashlib


def stable_seed(*parts, bits: int = 60) -> int:
    """A seed derived from its parts; 60 bits fit torch generators."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[: bits // 4], 16)
