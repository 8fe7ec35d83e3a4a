"""The smallest PPO that reuses TRL 1.16's ``RLOOTrainer`` machinery (TRL 1.16 has no PPO, and its last
experimental PPO had no image path).

Kept from RLOO: the dataloader that repeats each prompt, generation from the policy with images, the reward
callables, the PEFT reference (adapter disabled), the buffering of a rollout over ``num_iterations`` passes, and
its logging (reward, completion lengths, entropy). Added here:

* a value head ``V``: an ``nn.Linear(hidden, 1)`` on the policy's last hidden states (the trunk is shared with the
  policy, as in TRL's old ``AutoModelForCausalLMWithValueHead``); it is trained, and is not part of the adapter;
* per-token rewards: ``r_t = -beta * (log pi(y_t) - log pi_ref(y_t))``, plus the reward model's (normalised) score
  on the last completion token;
* GAE (``gae``) from the values at rollout time;
* the clipped surrogate plus the clipped value loss, optimised over ``num_iterations`` passes (``ppo_epochs``).

Costs: the rollout runs the policy twice (once inside RLOO's scoring, for the sequence log-probs it keeps, once
here with the value head) and the reference once. Single process only (the rollout's rewards are not sliced
across processes).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from trl import RLOOTrainer
from trl.trainer.utils import use_adapter

from .stability import KL

MULTIMODAL_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
    "num_images",
)


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each completion's tokens (rows: sequences, columns: tokens).

    delta_t = r_t + gamma * V_{t+1} - V_t       (V after the last real token is 0: the episode ends there)
    A_t     = delta_t + gamma * lambda * A_{t+1}
    R_t     = A_t + V_t                          (the value target)
    Positions where ``mask`` is 0 (padding after the answer) get advantage and return 0.
    """
    mask = mask.to(rewards.dtype)
    values = values * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * mask[:, t]
        # a padded position passes nothing back: the previous real token sees the episode's end
        next_value = values[:, t]
        next_advantage = advantages[:, t]
    return advantages, (advantages + values) * mask


def whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-variance over the masked positions (TRL's old PPO did the same to advantages)."""
    mask = mask.to(values.dtype)
    mean = (values * mask).sum() / mask.sum().clamp(min=1)
    var = (((values - mean) * mask) ** 2).sum() / mask.sum().clamp(min=1)
    return (values - mean) * torch.rsqrt(var + 1e-8) * mask


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def token_rewards(
    score: torch.Tensor, logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """r_t = -beta * (log pi - log pi_ref) on every completion token, + the sequence's score on its last token."""
    rewards = -beta * (logps - ref_logps) * mask
    last = (mask.sum(1) - 1).clamp(min=0).long()
    rewards[torch.arange(rewards.size(0)), last] += score * (mask.sum(1) > 0)
    return rewards


class PPOTrainer(RLOOTrainer):
    """PPO on RLOO's rollout machinery. ``args`` is an ``RLOOConfig``: ``beta`` is PPO's per-token KL coefficient,
    ``epsilon`` its clip range, ``num_iterations`` its ppo_epochs; ``ppo`` holds vf_coef, gamma, gae_lambda and
    cliprange_value."""

    def __init__(self, *args, ppo: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.ppo = ppo
        # RLOO's scoring would fold a sequence-level KL into its own advantages and run the reference: switch that
        # off (beta 0 there) and do both per token here.
        self.kl_beta, self.beta = self.beta, 0.0
        hidden = self.accelerator.unwrap_model(self.model).config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1).to(self.accelerator.device)
        # values start at 0: the first rollout's advantages are its returns, not a random head's noise
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self._hidden: list[torch.Tensor] = []
        self._scores: torch.Tensor | None = None

    # --------------------------------------------------------------------------- value head plumbing

    def create_optimizer(self, model=None):
        """TRL's optimizer over the adapter, plus the value head (same learning rate, no weight decay). The
        Trainer clips the gradient norm of the model's parameters only: the value head's gradient is not clipped."""
        optimizer = super().create_optimizer(model)
        if not any(p is self.value_head.weight for group in optimizer.param_groups for p in group["params"]):
            optimizer.add_param_group({"params": list(self.value_head.parameters()), "weight_decay": 0.0})
        return optimizer

    @contextmanager
    def _values_from(self, model):
        """While active, every forward of ``model``'s backbone leaves its last hidden states in ``self._hidden``
        (TRL's fused LM head computes log-probs from the same states, so values and log-probs share a forward)."""
        base = self.accelerator.unwrap_model(model)
        backbone = (base.get_base_model() if hasattr(base, "get_base_model") else base).base_model
        handle = backbone.register_forward_hook(lambda _m, _a, out: self._hidden.append(out.last_hidden_state))
        self._hidden = []
        try:
            yield
        finally:
            handle.remove()

    def _values(self, logits_to_keep: int) -> torch.Tensor:
        """V(s_t) for each completion token t: the head on the state that predicts token t (one position left)."""
        hidden = torch.cat(self._hidden, dim=0)[:, -logits_to_keep - 1 : -1]
        self._hidden = []
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)

    def _forward(self, model, batch: dict, compute_entropy: bool = False):
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        extra = {k: batch[k] for k in MULTIMODAL_KEYS if batch.get(k) is not None}
        return self._get_per_token_logps_and_entropies(
            model, ids, mask, batch["completion_ids"].size(1), compute_entropy=compute_entropy, **extra
        )

    # --------------------------------------------------------------------------------- rollout

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._scores = (rewards * self.reward_weights.to(rewards.device)).nansum(dim=1)
        self._scores[torch.isnan(rewards).all(dim=1)] = torch.nan  # unscorable: masked out below
        return rewards

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)  # samples, scores; RLOO's advantages unused
        completion_mask = batch["completion_mask"]
        logits_to_keep = completion_mask.size(1)
        with torch.no_grad():
            with self._values_from(self.model):
                logps, _, _ = self._forward(self.model, batch)
                values = self._values(logits_to_keep)
            with use_adapter(self.accelerator.unwrap_model(self.model), adapter_name=None):
                ref_logps, _, _ = self._forward(self.model, batch)
        scorable = ~torch.isnan(self._scores)
        mask = completion_mask * scorable.unsqueeze(1)  # a completion no reward function scored does not train
        rewards = token_rewards(torch.nan_to_num(self._scores), logps, ref_logps, mask, self.kl_beta)
        advantages, returns = gae(rewards, values, mask, self.ppo["gamma"], self.ppo["gae_lambda"])
        mode = "train" if self.model.training else "eval"
        self._metrics[mode][KL].append(masked_mean(logps - ref_logps, completion_mask).item())
        self._metrics[mode]["ppo/value_mean"].append(masked_mean(values, mask).item())
        self._metrics[mode]["ppo/return_mean"].append(masked_mean(returns, mask).item())
        batch.update(
            old_per_token_logps=logps,
            old_values=values,
            advantages=whiten(advantages, mask),
            returns=returns,
            loss_mask=mask,
        )
        return batch

    # ------------------------------------------------------------------------------------- loss

    def _compute_loss(self, model, inputs):
        """L = mean_t max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps))
             + vf_coef * 0.5 * mean_t max((V_t - R_t)^2, (V_old_t + clip(V_t - V_old_t, -c, c) - R_t)^2),
        with rho_t = pi(y_t) / pi_old(y_t), means over the completion tokens of the batch."""
        mask = inputs["loss_mask"]
        with self._values_from(model):
            logps, entropies, _ = self._forward(model, inputs, compute_entropy=True)
            values = self._values(mask.size(1))
        advantages, returns, old_values = inputs["advantages"], inputs["returns"], inputs["old_values"]
        ratio = torch.exp(logps - inputs["old_per_token_logps"])
        clipped_ratio = torch.clamp(ratio, 1 - self.epsilon_low, 1 + self.epsilon_high)
        policy_loss = masked_mean(torch.max(-advantages * ratio, -advantages * clipped_ratio), mask)
        clip_value = self.ppo["cliprange_value"]
        clipped_values = old_values + torch.clamp(values - old_values, -clip_value, clip_value)
        value_loss = 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped_values - returns) ** 2), mask)
        loss = policy_loss + self.ppo["vf_coef"] * value_loss
        mode = "train" if self.model.training else "eval"
        completion_mask = inputs["completion_mask"]
        self._metrics[mode]["entropy"].append(masked_mean(entropies, completion_mask).item())
        self._metrics[mode]["ppo/policy_loss"].append(policy_loss.item())
        self._metrics[mode]["ppo/value_loss"].append(value_loss.item())
        clipped = ((ratio - 1).abs() > self.epsilon_low).float()
        self._metrics[mode]["ppo/clip_fraction"].append(masked_mean(clipped, mask).item())
        return loss
