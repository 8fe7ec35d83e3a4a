"""The POVID-style image-distortion baseline (paper §4.6; Table 6 "POVID-style image distortion"),
as in POVID's public code (``tool/dpo_trainer_inherent.py``): the dispreferred "response" is made token by
token under a noisy image. At every position t of the chosen answer y+, the model, shown the image after
``noise_steps`` of diffusion noise and teacher-forced on y+<t, predicts its top token; the rejected
log-probability is that token's log-probability under the *clean* image, given y+<t. Policy and reference
each use their own top tokens (as POVID's code does), recomputed at every step from the current weights.

With ``rejected: both`` every pair enters twice, once with the external rejected answer and once with the
distortion, so the mean loss is POVID's 0.5 L(y+, y-) + 0.5 L(y+, y~-) (Eq. 5, gamma 0.5).

Mechanics: a distortion row carries y+ as its rejected text, and a forward pre-hook on the model replaces that
row's labels by the noisy-image top tokens before TRL scores them, so TRL's loss code runs unchanged.
"""

from __future__ import annotations

import torch

from mmalign.bdhs import add_diffusion_noise
from mmalign.seeding import stable_seed

from .rows import preference_dataset

RAW_ROWS = True  # the trainer reads each row's `distort` flag


def noisy_top_tokens(module, kwargs: dict, rows: torch.Tensor, noise_steps: int, seed: int) -> torch.Tensor:
    """For the given batch rows: the top token the model predicts at every position under the noisy image,
    shifted to label positions (labels[t] = argmax logits[t - 1])."""
    batch = kwargs["input_ids"].shape[0]
    picked = {
        k: (v[rows] if torch.is_tensor(v) and v.dim() and v.shape[0] == batch else v)
        for k, v in kwargs.items()
        if k not in ("labels", "fused_lm_head", "shift_labels", "num_items_in_batch")
    }
    generator = torch.Generator().manual_seed(seed)
    picked["pixel_values"] = add_diffusion_noise(picked["pixel_values"], noise_steps, generator)
    plain = {"fused_lm_head": False} if "fused_lm_head" in kwargs else {}  # TRL's patched forward: give logits
    with torch.no_grad():
        logits = module.forward(**picked, **plain).logits
    top = logits.argmax(-1)
    return torch.cat([top.new_zeros(top.shape[0], 1), top[:, :-1]], dim=1)


class DistortionHook:
    """Swaps the labels of the rejected half's distortion rows for the noisy-image top tokens."""

    def __init__(self, noise_steps: int, seed: int):
        self.noise_steps, self.seed = noise_steps, seed
        self.rows: torch.Tensor | None = None  # indices into the [chosen; rejected] batch, set per step
        self.step = 0
        self._inside = False

    def __call__(self, module, args, kwargs):
        if self.rows is None or self._inside or kwargs.get("labels") is None or not len(self.rows):
            return None
        self._inside = True
        try:
            top = noisy_top_tokens(
                module, kwargs, self.rows, self.noise_steps, stable_seed(self.seed, "distortion", self.step, bits=32)
            )
        finally:
            self._inside = False
        labels = kwargs["labels"].clone()
        keep = labels[self.rows] != -100
        labels[self.rows] = torch.where(keep, top.to(labels.device), labels[self.rows])
        return args, {**kwargs, "labels": labels}


def distortion_trainer_class():
    """A DPOTrainer whose rows flagged ``distort`` get the noisy-image rejected tokens (built lazily)."""
    from trl import DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    class DistortionDPOTrainer(DPOTrainer):
        def __init__(self, *args, noise_steps: int, **kwargs):
            super().__init__(*args, data_collator=lambda examples: {"raw_examples": examples}, **kwargs)
            self.vision_collator = DataCollatorForVisionPreference(processor=self.processing_class, max_length=None)
            self.hook = DistortionHook(noise_steps, self.args.seed)
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            base.register_forward_pre_hook(self.hook, with_kwargs=True)

        def training_step(self, model, inputs, num_items_in_batch=None):
            examples = inputs["raw_examples"]
            flags = torch.tensor([bool(ex.pop("distort")) for ex in examples])
            n = len(examples)
            self.hook.rows = torch.nonzero(flags).flatten() + n  # the rejected half of [chosen; rejected]
            self.hook.step = self.state.global_step
            try:
                return super().training_step(model, self.vision_collator(examples), num_items_in_batch)
            finally:
                self.hook.rows = None

    return DistortionDPOTrainer


# ------------------------------------------------------------------ the method hooks (mmalign.train.dpo)


def build_dataset(pairs_path, settings):
    return preference_dataset(pairs_path, settings.max_pairs, settings.seed, settings.rejected, distortion=True)


def build_trainer(common: dict, settings, judge=None, scenes=None):
    return distortion_trainer_class()(**common, noise_steps=settings.distortion_noise_steps)


def run_metrics(trainer, seconds: float) -> dict:
    return {}
