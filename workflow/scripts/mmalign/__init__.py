"""mmalign: the library behind the study workflow, in two wings (docs/architecture.md).

The study's machinery, one package per Snakemake stage (``pairs``, ``train``, ``evaluate``, ``report``) with what
they share (``schema``, ``config``, ``models``, ``bdhs``, ``judges``, ``hub``); and the synthetic world of the
default study (``synthetic``), which the machinery reaches only through ``registry``.
"""

from __future__ import annotations
