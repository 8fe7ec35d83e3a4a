"""The benchmark kinds (config ``benchmarks.<name>.kind``): each module says, in one place, how a prompt is formed,
how an answer is parsed and how predictions are scored, for items in the common schema (``mmalign.schema``).

Every module exposes ``DEFAULTS`` (prompt suffix, decoding), ``JUDGED``, ``prompt(item, suffix)`` and
``score(items, predictions, ...) -> (rows, judgments)``, where rows are ``{"subset", "metric", "value"}`` dicts and
judgments keep one verdict per item. A ``JUDGED`` module is scored by a judge (``mmalign.judges``):
``score(items, predictions, judge)``. A module whose parse rule depends on the items' language has a ``Reader``
(``score(..., reader=...)``): the default reads real data, a registered source brings its own.
Where items come from is the benchmark's ``source``: ``mmalign.evaluate.items``.
"""

from __future__ import annotations

from . import gqa, llavaw, mmhal, mmhalv, mmvet, objhal, pope, vqat

# The paper's columns: POPE, MMHAL, MMHALv, LLaVAW, VQAT, GQA, MMVet, Recall (objhal, with CHAIR).
REGISTRY = {
    "pope": pope,
    "mmhal": mmhal,
    "mmhalv": mmhalv,
    "llavaw": llavaw,
    "vqat": vqat,
    "gqa": gqa,
    "mmvet": mmvet,
    "objhal": objhal,
}
JUDGED_KINDS = [kind for kind, module in REGISTRY.items() if module.JUDGED]


def get(kind: str):
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown benchmark kind {kind!r}; known: {sorted(REGISTRY)}") from None
