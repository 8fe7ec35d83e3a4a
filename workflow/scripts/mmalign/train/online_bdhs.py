"""Online BDHS (method ``online_bdhs``, paper §4.6): every step, the rejected answer of each example is regenerated
by BDHS (``mmalign.bdhs``) from the *current* policy; chosen = the pair set's SFT answer. With ``rejected: both`` the
pair set's external rejected answer enters as a second row (Avg-DPO, Eq. 5, gamma 0.5). Everything else (steps,
counts, checkpoints, the trainer) is ``mmalign.train.online``'s.
"""

from __future__ import annotations

from mmalign.bdhs import DEFAULT_EMBEDDER, BDHSSettings, Example, load_embedder, run_bdhs
from mmalign.seeding import stable_seed

from . import online
from .online import RAW_ROWS, build_dataset, run_metrics  # noqa: F401 (the method hooks)


class BDHSPairMaker(online.PairMaker):
    """Makes one step's rows with BDHS instead of sampling two answers and asking a judge."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._embedder = None

    def online_rows(self, model, examples: list[dict], step: int) -> list[dict]:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder or DEFAULT_EMBEDDER)
        settings = BDHSSettings(**{**self.settings.bdhs, "seed": stable_seed(self.seed, "bdhs", step, bits=32)})
        bdhs_examples = [Example(ex["pair_id"], ex["image"], ex["prompt_text"], ex["chosen_text"]) for ex in examples]
        results = run_bdhs(model, self.processor, bdhs_examples, settings, self._embedder)
        rows = []
        for ex, result in zip(examples, results):
            if not result.rejected.strip():
                self.counts["dropped_empty_bdhs"] += 1
                continue
            self.counts["online_pairs"] += 1
            rows.append(self._row(ex, ex["chosen_text"], result.rejected))
            if self.rejected == "both":  # Avg-DPO (Eq. 5, gamma 0.5): the external rejected answer as a second row
                rows.append(self._row(ex, ex["chosen_text"], ex["rejected_text"]))
        return rows


def build_trainer(common: dict, settings, judge=None, scenes=None):
    return online.build_trainer(common, settings, judge, scenes, pair_maker_class=BDHSPairMaker)
