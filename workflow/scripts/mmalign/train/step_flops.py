"""The floating-point operations of one DPO step of a LLaVA-NeXT policy, counted analytically from the model's
configuration and the shapes of the step's micro-batches: what ``benchmarks/gpu_dpo_step.py`` divides by the step
time for MFU, and what ``torch.utils.flop_counter.FlopCounterMode`` counts when it watches the same step
(``tests/test_gpu_benchmark.py`` holds the two to each other).

The step is TRL's ``DPOTrainer`` (1.16) with a PEFT LoRA adapter on every linear layer of the language model, the
multimodal projector trained in full and the vision tower frozen (``mmalign.train.lora``), and the reference
policy computed inline, one extra forward without gradient. Which reference: given a ``PeftModel`` (as
``mmalign.train.dpo`` and the benchmark give it), TRL 1.16 adds a second adapter, ``ref``, a copy of the initial
one, and runs the reference forward with it, LoRA products included (``reference="adapter"``); given a base model
and a ``peft_config`` it disables the adapter instead (``reference="disabled"``: no LoRA products).

Counted are matrix products, 2 FLOPs per multiply-add, as the counter counts them: linear layers, the vision
tower's patch convolution, and attention. Norms, activations, softmax, rotary embeddings and the loss are not
counted (neither does the counter; at these widths they are well under 1% of the work).

Notation. Vision tower: width ``Dv``, MLP width ``Fv``, ``Lv`` layers, ``np = (image_size / patch)^2`` patches
and ``v = np + 1`` positions (CLS) per tile, ``c = 3`` channels. Projector: input ``Di`` (``Dv`` times the number
of feature layers), ``f`` features per tile (``np``: the ``default`` strategy drops CLS). Language model: width
``D``, MLP width ``F``, ``L`` layers, ``H`` query heads and ``Hkv`` key/value heads of width ``dh``, vocabulary
``V``; ``W = D*H*dh + 2*D*Hkv*dh + H*dh*D + 3*D*F`` weights in the matrix products of one layer; LoRA rank ``r``
on all seven of them adds ``R = r*(Σ in + out) = r*(2*D + 2*H*dh + 2*(D + Hkv*dh) + 3*(D + F))`` per layer.
A micro-batch of ``P`` pairs is ``N = 2P`` sequences (chosen and rejected, each with its own copy of the image)
padded to ``S`` positions, ``T = N*S`` positions in all, ``K`` vision tiles (AnyRes: 5 per 672x672 image), and
``M`` positions scored by the LM head (below).

Forward pieces::

    vision(K)     = K * (2*np*c*patch^2*Dv + Lv * (2*v*(4*Dv^2 + 2*Dv*Fv) + 4*v^2*Dv))   every layer runs, even the
                                                                                       ones past the feature layer
    projector(K)  = proj1 + proj2,  proj1 = 2*K*f*Di*D,  proj2 = 2*K*f*D^2
    lm_linear(T)  = 2*T*L*W
    attention     = 4*N*S^2*L*H*dh          full S^2: QK^T and AV over every (query, key) pair, as the counter
                                            counts SDPA; a causal kernel skips about half of it (see below)
    lora(T)       = 2*T*L*R
    lm_head(M)    = 2*M*D*V

Model FLOPs of one micro-batch (what the step needs; MFU's numerator)::

    policy forward    = vision + projector + lm_linear + attention + lora + lm_head
    policy backward   = lm_head                       activation gradient only: the head is frozen
                      + lm_linear                     activation gradients through the frozen weights (~1x forward)
                      + 2 * attention                 dQ, dK from dScores; dScores, dV from dOut
                      + 2 * lora                      activation gradients and the A, B weight gradients
                      + proj1 + 2 * proj2             weight gradients of both projector layers, the activation
                                                      gradient of the second (the first's input is frozen output)
                      (no vision backward: the tower is frozen and nothing before it trains)
    reference forward = vision + projector + lm_linear + attention + lm_head
                      + lora                          with TRL's ``ref`` adapter (a copy whose B is still 0)

Per position, the language model's linear layers give 6*L*W (2 policy forward + 2 backward + 2 reference): the
usual "6 x parameters per token" of training, with the third 2 spent on the reference instead of weight gradients.
The ``ref`` adapter's LoRA products in the reference forward (2*L*R per position, about 1% of the step at r128)
are counted as model FLOPs: they run, though with B = 0 they change nothing.

Hardware FLOPs add what the implementation recomputes (MFU leaves it out; HFU counts it):

* attention kernels (SDPA's flash and memory-efficient kernels, FlashAttention-2, CPU flash) recompute QK^T in the
  backward: ``0.5 * attention`` more (none with ``eager`` attention, which keeps the probabilities);
* TRL's chunked log-prob head never materialises the logits, so its backward recomputes them: ``lm_head`` more;
* gradient checkpointing recomputes every decoder layer's forward in the backward (``lm_linear + attention +
  lora``), except the layer's last product (``down_proj``'s LoRA B, ``2*T*L*r*D``): PyTorch's non-reentrant
  checkpoint stops recomputing once it has every tensor the backward needs, and the last product's output is not
  one. With checkpointing TRL also calls ``enable_input_require_grads``, which hooks the vision tower's patch
  embedding too: the backward then runs through the vision layers up to the feature layer (activation gradients:
  1x their products, 2x their attention, 0.5x more in a fused kernel), recomputing them first (all but the last
  product, ``fc2``), and the projector's first layer computes its input gradient (``proj1``). Work nothing
  needs, reported as hardware FLOPs.

``M``, the positions the head scores: TRL projects only the completion positions (labels not -100) where Triton
runs (CUDA), and every position but the last elsewhere (``N*(S-1)``), keeping tile shapes fixed.

Attention convention: full ``S^2``, as ``FlopCounterMode`` counts ``scaled_dot_product_attention`` (it does not
look at the causal mask). A causal kernel (FlashAttention-2, SDPA with ``is_causal``) does about half of that, so
at LLaVA-1.6's ~3,000-position sequences (attention 10% of a forward, 13% of a step's model FLOPs) the MFU here
reads about 6% higher than a causal-halved count would.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

CHANNELS = 3  # RGB: the patch convolution's input channels


@dataclass(frozen=True)
class Architecture:
    """The widths of a LLaVA-NeXT model that decide its FLOPs."""

    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    vision_layers_used: int  # layers up to the feature layer: the ones a vision backward would run through
    patches_per_tile: int
    patch_size: int
    projector_in: int
    features_per_tile: int
    text_hidden: int
    text_intermediate: int
    text_layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> Architecture:
        """From a ``LlavaNextConfig``."""
        vision, text = config.vision_config, config.text_config
        feature_layers = config.vision_feature_layer
        if isinstance(feature_layers, int):
            feature_layers = [feature_layers]
        # hidden_states[i] is the output of i layers (0: the embeddings); negative indices count from the end
        used = max(i if i >= 0 else vision.num_hidden_layers + 1 + i for i in feature_layers)
        patches = (vision.image_size // vision.patch_size) ** 2
        return cls(
            vision_hidden=vision.hidden_size,
            vision_intermediate=vision.intermediate_size,
            vision_layers=vision.num_hidden_layers,
            vision_layers_used=used,
            patches_per_tile=patches,
            patch_size=vision.patch_size,
            projector_in=vision.hidden_size * len(feature_layers),
            features_per_tile=patches if config.vision_feature_select_strategy == "default" else patches + 1,
            text_hidden=text.hidden_size,
            text_intermediate=text.intermediate_size,
            text_layers=text.num_hidden_layers,
            heads=text.num_attention_heads,
            kv_heads=text.num_key_value_heads,
            head_dim=getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads,
            vocab=text.vocab_size,
        )

    @property
    def layer_weights(self) -> int:
        """W: weights in the matrix products of one decoder layer."""
        d, q, kv = self.text_hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return d * q + 2 * d * kv + q * d + 3 * d * self.text_intermediate

    def lora_weights(self, rank: int) -> int:
        """R: LoRA weights of one decoder layer, rank ``rank`` on q, k, v, o, gate, up and down."""
        d, f = self.text_hidden, self.text_intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return rank * ((d + q) + 2 * (d + kv) + (q + d) + 2 * (d + f) + (f + d))


@dataclass(frozen=True)
class MicroBatch:
    """The shapes of one micro-batch as the model computes it."""

    sequences: int  # N = 2 x pairs: chosen and rejected
    length: int  # S: padded positions per sequence
    tiles: int  # K: vision tiles, all images of the micro-batch
    scored: int  # M: positions the LM head projects

    @property
    def positions(self) -> int:
        return self.sequences * self.length


@dataclass(frozen=True)
class Flops:
    """FLOPs by part: ``model`` (what the step needs) and the recomputation on top (``hardware`` adds it)."""

    vision: int = 0
    projector: int = 0
    lm_linear: int = 0
    attention: int = 0
    lora: int = 0
    lm_head: int = 0
    attention_recompute: int = 0  # QK^T again in a fused attention kernel's backward
    lm_head_recompute: int = 0  # the chunked log-prob head's logits again in its backward
    checkpointing: int = 0  # gradient checkpointing's recomputed forwards, and the vision backward it brings

    RECOMPUTE = ("attention_recompute", "lm_head_recompute", "checkpointing")

    def __add__(self, other: Flops) -> Flops:
        return Flops(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def model(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self) if f.name not in self.RECOMPUTE)

    @property
    def hardware(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "model": self.model, "hardware": self.hardware}


# ------------------------------------------------------------------------------------------- forward pieces


def vision_layer(arch: Architecture, tiles: int) -> int:
    """One vision encoder layer on ``tiles`` tiles: q, k, v, o, the MLP, and full attention over v positions."""
    v, d = arch.patches_per_tile + 1, arch.vision_hidden
    return tiles * (2 * v * (4 * d * d + 2 * d * arch.vision_intermediate) + 4 * v * v * d)


def vision_attention(arch: Architecture, tiles: int) -> int:
    v = arch.patches_per_tile + 1
    return tiles * 4 * v * v * arch.vision_hidden


def vision(arch: Architecture, tiles: int) -> int:
    """The patch convolution and every encoder layer (the tower runs all of them, whatever the feature layer)."""
    patch_conv = 2 * arch.patches_per_tile * CHANNELS * arch.patch_size**2 * arch.vision_hidden
    return tiles * patch_conv + arch.vision_layers * vision_layer(arch, tiles)


def projector_layers(arch: Architecture, tiles: int) -> tuple[int, int]:
    """(first layer, second layer) of the projector on every tile's features."""
    rows = tiles * arch.features_per_tile
    return 2 * rows * arch.projector_in * arch.text_hidden, 2 * rows * arch.text_hidden**2


def attention(arch: Architecture, batch: MicroBatch) -> int:
    return 4 * batch.sequences * batch.length**2 * arch.text_layers * arch.heads * arch.head_dim


def lm_linear(arch: Architecture, batch: MicroBatch) -> int:
    return 2 * batch.positions * arch.text_layers * arch.layer_weights


def lora(arch: Architecture, batch: MicroBatch, rank: int) -> int:
    return 2 * batch.positions * arch.text_layers * arch.lora_weights(rank)


def lm_head(arch: Architecture, rows: int) -> int:
    return 2 * rows * arch.text_hidden * arch.vocab


def forward(arch: Architecture, batch: MicroBatch, lora_rank: int = 0) -> Flops:
    """One forward of the model on a micro-batch (with the adapter's products when ``lora_rank``)."""
    return Flops(
        vision=vision(arch, batch.tiles),
        projector=sum(projector_layers(arch, batch.tiles)),
        lm_linear=lm_linear(arch, batch),
        attention=attention(arch, batch),
        lora=lora(arch, batch, lora_rank) if lora_rank else 0,
        lm_head=lm_head(arch, batch.scored),
    )


# ---------------------------------------------------------------------------------------------- the step

REFERENCES = (None, "adapter", "disabled")  # none computed (precomputed log-probs), TRL's ref adapter, no adapter


def policy_backward(arch: Architecture, batch: MicroBatch, lora_rank: int) -> Flops:
    proj1, proj2 = projector_layers(arch, batch.tiles)
    return Flops(
        projector=proj1 + 2 * proj2,
        lm_linear=lm_linear(arch, batch),
        attention=2 * attention(arch, batch),
        lora=2 * lora(arch, batch, lora_rank),
        lm_head=lm_head(arch, batch.scored),
    )


def checkpointing_recompute(arch: Architecture, batch: MicroBatch, lora_rank: int, fused_attention: bool) -> int:
    """What gradient checkpointing (with TRL's input-gradient hooks) adds to the backward."""
    # each decoder layer again, but its last product: down_proj's LoRA B (down_proj itself without LoRA)
    last = 2 * batch.positions * (lora_rank if lora_rank else arch.text_intermediate) * arch.text_hidden
    decoder = lm_linear(arch, batch) + attention(arch, batch) + lora(arch, batch, lora_rank) - arch.text_layers * last
    # the vision layers up to the feature layer: recomputed but for fc2, then their activation gradients
    layer, attn = vision_layer(arch, batch.tiles), vision_attention(arch, batch.tiles)
    fc2 = 2 * batch.tiles * (arch.patches_per_tile + 1) * arch.vision_intermediate * arch.vision_hidden
    vision_backward = layer + attn + (attn // 2 if fused_attention else 0)
    proj1, _ = projector_layers(arch, batch.tiles)
    return decoder + arch.vision_layers_used * (layer - fc2 + vision_backward) + proj1


def dpo_step(
    arch: Architecture,
    batches: list[MicroBatch],
    lora_rank: int,
    *,
    reference: str | None = "adapter",
    checkpointing: bool = False,
    fused_attention: bool = True,
) -> Flops:
    """FLOPs of one optimizer step over ``batches`` (its micro-batches): the policy's forward and backward, the
    inline reference's forward (``reference``: one of ``REFERENCES``), and the recomputation of ``checkpointing``
    and of fused attention kernels (``fused_attention``: anything but ``eager``)."""
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, not {reference!r}")
    total = Flops()
    for batch in batches:
        total += forward(arch, batch, lora_rank) + policy_backward(arch, batch, lora_rank)
        if reference:
            total += forward(arch, batch, lora_rank if reference == "adapter" else 0)
        total += Flops(
            attention_recompute=attention(arch, batch) // 2 if fused_attention else 0,
            lm_head_recompute=lm_head(arch, batch.scored),
            checkpointing=checkpointing_recompute(arch, batch, lora_rank, fused_attention) if checkpointing else 0,
        )
    return total


def image_tiles(image_sizes, config) -> int:
    """Vision tiles of images of these (height, width) sizes: AnyRes's grid plus the base tile, each."""
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    return sum(
        image_size_to_num_patches(size, config.image_grid_pinpoints, config.vision_config.image_size)
        for size in image_sizes.tolist()
    )


def micro_batch(batch, config, compact_lm_head: bool) -> MicroBatch:
    """The shapes of a collated DPO batch (TRL's vision collator: input_ids, completion_mask, image_sizes).
    ``compact_lm_head``: the head scores only completion positions (TRL with Triton, i.e. on CUDA)."""
    sequences, length = batch["input_ids"].shape
    # labels are the input ids where completion_mask is 1, shifted by one: the head scores position t for token t+1
    scored = int(batch["completion_mask"][:, 1:].sum()) if compact_lm_head else sequences * (length - 1)
    return MicroBatch(sequences, length, image_tiles(batch["image_sizes"], config), scored)


def counter_mapping() -> dict:
    """FlopCounterMode formulas for the CPU kernels it has none for, so that it counts a CPU step completely: SDPA's
    CPU flash kernel and its backward (torch's own SDPA formulas, as for the CUDA kernels) and the in-place
    ``addmm_`` that TRL's chunked log-prob head accumulates its CPU backward with. Pass it as ``custom_mapping``
    (the counter hands these formulas shapes, not tensors)."""
    import torch
    from torch.utils import flop_counter

    def sdpa(query, key, value, *args, **kwargs):
        return flop_counter.sdpa_flop_count(query, key, value)

    def sdpa_backward(grad_out, query, key, value, *args, **kwargs):
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)

    def addmm(self, mat1, mat2, *args, **kwargs):
        return flop_counter.mm_flop(mat1, mat2)

    aten = torch.ops.aten
    return {
        aten._scaled_dot_product_flash_attention_for_cpu: sdpa,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: sdpa_backward,
        aten.addmm_: addmm,
    }
