"""mmalign: the library behind the study workflow (world, models, pairs, train, evaluate, report)."""

from __future__ import annotations
