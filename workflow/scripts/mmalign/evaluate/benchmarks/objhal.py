"""Object hallucination in detailed descriptions: Recall (the paper's Recall_coco column) with
CHAIR_s and CHAIR_i beside it (Rohrbach et al. 2018; Object HalBench recall, Yu et al. 2023).

The reader (``Reader.mentions``) lists the objects an answer claims to see; over a corpus of descriptions:

* CHAIR_i = hallucinated mentions / all mentions (repeats counted, over the whole corpus);
* CHAIR_s = share of descriptions with at least one hallucinated shape;
* recall  = sum over images of |mentioned ∩ present| / sum of |present| (unique objects).
A description that mentions no object at all is counted in ``no_mentions`` (it still scores 0 recall).

Object HalBench (Yu et al. 2023: COCO val2014 images, "describe in detail" prompts): mentions are the COCO
categories named in the answer (``coco_objects``: CHAIR-style synonyms,
two-word phrases first), the truth per image is CHAIR's: the categories of its COCO instance annotations and
those named in its five COCO captions. RLHF-V's script extracts objects with GPT-3.5 instead; we use the
deterministic synonym match of CHAIR (and lmms-eval's ``coco_cap_chair``). A registered source brings its own
reader (the synthetic world's shapes: ``mmalign.synthetic.benchmarks.objhal``).
"""

from __future__ import annotations

from ..coco_objects import mentioned_objects

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 64}
JUDGED = False


class Reader:
    """Which objects a description names: COCO categories (Object HalBench)."""

    def mentions(self, text: str) -> list[str]:
        return mentioned_objects(text)


READER = Reader()


def prompt(item: dict, suffix: str) -> str:
    return f"{item['question']} {suffix}".strip()


def score(items: list[dict], predictions: list[str], reader: Reader = READER) -> tuple[list[dict], list[dict]]:
    mentions_total = hallucinated_total = captions_with_hallucination = 0
    recalled = present_total = no_mentions = words = 0
    judgments = []
    for item, text in zip(items, predictions):
        truth = set(item["meta"]["objects"])
        mentions = reader.mentions(text)
        hallucinated = [m for m in mentions if m not in truth]
        mentions_total += len(mentions)
        hallucinated_total += len(hallucinated)
        captions_with_hallucination += bool(hallucinated)
        recalled += len(truth & set(mentions))
        present_total += len(truth)
        no_mentions += not mentions
        words += len(text.split())
        judgments.append({"id": item["id"], "mentions": mentions, "hallucinated": hallucinated, "truth": sorted(truth)})
    n = len(items)
    metrics = {
        "recall": recalled / present_total if present_total else float("nan"),
        "chair_i": hallucinated_total / mentions_total if mentions_total else 0.0,
        "chair_s": captions_with_hallucination / n if n else float("nan"),
        "mean_words": words / n if n else float("nan"),
        "no_mentions": float(no_mentions),
        "n": float(n),
    }
    return [{"subset": "all", "metric": k, "value": v} for k, v in metrics.items()], judgments
