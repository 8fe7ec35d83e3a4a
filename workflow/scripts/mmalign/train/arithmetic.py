"""The arithmetic of a training run: its floating-point operations, counted on one batch and scaled to all.

Counting cannot run inside the run: under ``torch.utils.flop_counter.FlopCounterMode`` every op is dispatched
through Python, and some take other kernels there (measured: a counted step changes the adapter in the 8th
digit), so a counted run would not be the run it counts. ``StepArithmetic`` therefore only tallies, per step,
the token positions of the batch (padding included: it is computed), and ``count`` runs, after training, one
forward and backward pass of the loss (the reference forward included when it runs inline) on a batch of the
run's own data under the counter. The run's total is the counted FLOPs per position times every step's
positions. ``benchmarks/default_study.py`` divides a run's wall time by this total at the machine's measured
matmul rate: how far the run is from the speed of its arithmetic.
"""

from __future__ import annotations


class StepArithmetic:
    """Wraps ``trainer.training_step`` (an instance attribute shadows the method) to tally steps and positions."""

    def __init__(self, trainer):
        self.steps = 0
        self.positions = 0
        self.padding = 0  # of those positions, the padded ones (attention_mask 0): computed, and thrown away
        self.unsized_steps = 0  # steps whose batch shows no input_ids (online steps make theirs inside)
        self.counted: dict | None = None
        inner = trainer.training_step

        def training_step(model, inputs, *args, **kwargs):
            if "input_ids" in inputs:
                self.positions += inputs["input_ids"].numel()
                if "attention_mask" in inputs:
                    self.padding += int((inputs["attention_mask"] == 0).sum())
            else:
                self.unsized_steps += 1
            self.steps += 1
            return inner(model, inputs, *args, **kwargs)

        trainer.training_step = training_step

    def count(self, trainer) -> None:
        """FLOPs of the loss's forward and backward on the first batch of the run's data; call it after training
        (it leaves gradients behind, and the weights untouched). Offline runs only: an online step generates and
        asks its annotator, which a count must not repeat."""
        from torch.utils.flop_counter import FlopCounterMode

        from .step_flops import counter_mapping

        if self.unsized_steps or not self.steps:
            return
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        model = trainer.model
        model.train()
        # with formulas for the CPU kernels the counter does not know (SDPA's CPU flash kernel, TRL's in-place head
        # backward): without them a CPU count leaves out attention
        with FlopCounterMode(display=False, custom_mapping=counter_mapping()) as counter:
            loss = trainer.compute_loss(model, batch)
            loss.backward()
        model.zero_grad(set_to_none=True)
        self.counted = {"flops": counter.get_total_flops(), "positions": batch["input_ids"].numel()}

    def summary(self) -> dict:
        total = None
        if self.counted and self.counted["positions"]:
            total = self.counted["flops"] / self.counted["positions"] * self.positions
        return {
            "steps": self.steps,
            "positions": self.positions or None,
            "padding_share": round(self.padding / self.positions, 4) if self.positions else None,
            "flops": round(total) if total is not None else None,
            "flops_per_step": round(total / self.steps) if total is not None else None,
        }
