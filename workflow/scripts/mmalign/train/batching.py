"""Which pairs share a batch (config ``variants.<name>.batching``).

TRL pads the chosen and rejected sequences of a batch to its longest one, and every padded position is computed:
with pairs drawn at random, 46% of the positions of a batch of the POVID analog are padding (lengths 25-92 tokens,
median 32). Two choices put pairs of about the same length in a batch (4% padding on the POVID analog, 1.6x
faster steps on the tiny model), both from transformers' grouping (``get_length_grouped_indices``, behind the
Trainer's ``train_sampling_strategy="group_by_length"``): the pairs are shuffled, cut into mega-batches of 50
batches (fewer for a small set) and each mega-batch is sorted by length.

* ``length_grouped``: transformers' ``LengthGroupedSampler`` as it is. It returns each mega-batch's batches
  longest first, so every stretch of 50 steps runs from long pairs to short ones; on the default study DPO and
  IPO lost 4 POPE points against random batches at 400 steps, DPO 6.5 at 800 (docs/performance.md).
* ``length_bucketed``: the same batches in random order (``bucketed_indices``): measured as good as random
  batches.

Each epoch still shows every pair once; what changes is which pairs share a step, so the run follows another
trajectory, as under another seed. It is a recipe setting: ``random`` (the default) keeps the study's numbers.

The Trainer's own switch cannot be used as is: it reads lengths from a ``length`` column (which TRL's vision
signature drops before the sampler is built) or from ``input_ids`` (which a vision dataset does not have until
its collator runs). The lengths here are counted from the rows' texts with the processor's tokenizer: the prompt
and the longer answer. Image tokens are left out; they are the same for every row of the tiny LLaVA, and for
LLaVA-NeXT they only coarsen the grouping.
"""

from __future__ import annotations

from .chat_format import message_text

BATCHING = ("random", "length_grouped", "length_bucketed")
DEFAULT_BATCHING = "random"


def pair_lengths(dataset, tokenizer) -> list[int]:
    """Tokens of each row's prompt plus its longer answer: what its chosen/rejected sequences are padded to."""

    def count(column: str) -> list[int]:
        texts = [message_text(m) for m in dataset[column]]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    prompt, chosen, rejected = count("prompt"), count("chosen"), count("rejected")
    return [p + max(c, r) for p, c, r in zip(prompt, chosen, rejected)]


def bucketed_indices(lengths: list[int], batch_size: int, generator=None) -> list[int]:
    """``LengthGroupedSampler``'s groups with the batches in random order: transformers returns each mega-batch's
    batches longest first (and the longest of all first), so a run meets its long pairs, then its short ones, in
    every stretch of 50 steps. Only whole batches move: the dataloader cuts the index stream every `batch_size`
    indices, so the one short batch of an epoch stays last."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    indices = get_length_grouped_indices(lengths, batch_size, generator=generator)
    whole = len(indices) // batch_size
    batches = [indices[i * batch_size : (i + 1) * batch_size] for i in range(whole)]
    order = torch.randperm(whole, generator=generator).tolist()
    return [i for b in order for i in batches[b]] + indices[whole * batch_size :]


class LengthBucketedSampler:
    """Pairs of about the same length in each batch, the batches in random order (``batching: length_bucketed``).
    Like transformers' samplers it draws from torch's global generator when it is given none, so the Trainer's
    seeding and its checkpointed RNG state decide the order."""

    def __init__(self, batch_size: int, lengths: list[int], generator=None):
        self.batch_size, self.lengths, self.generator = batch_size, lengths, generator

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(bucketed_indices(self.lengths, self.batch_size, self.generator))


def group_by_length(trainer, batching: str) -> None:
    """Make ``trainer`` draw its training batches by length: transformers' ``LengthGroupedSampler``
    (``length_grouped``) or ``LengthBucketedSampler`` (``length_bucketed``), over the rows' lengths.

    Set on the instance: the trainers of the methods differ (TRL's ``DPOTrainer``, the precomputed-reference
    subclass), and this is the one method of theirs it replaces. The sampler takes the dataset the dataloader is
    built from (after TRL dropped its unused columns, row for row the training rows), so a row filtered out
    before training cannot shift the lengths against the rows."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    args = trainer.args

    kind = LengthBucketedSampler if batching == "length_bucketed" else LengthGroupedSampler

    def sampler(train_dataset=None):
        rows = trainer.train_dataset if train_dataset is None else train_dataset
        # the same global batch as the random sampler's (a process's share times the accumulated micro-batches)
        return kind(args.train_batch_size * args.gradient_accumulation_steps, lengths=pair_lengths(rows, tokenizer))

    trainer._get_train_sampler = sampler
