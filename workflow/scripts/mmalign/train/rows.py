"""A pair table as the rows a trainer reads: TRL's conversational vision preference format (prompt, chosen,
rejected, image), with the rejected answers the variant's ``rejected`` setting picks."""

from __future__ import annotations

from pathlib import Path

from mmalign.schema import read_pairs


def rejected_answers(row, mode: str) -> list[str]:
    """Which rejected answers a pair contributes. 'both' is Avg-DPO (Eq. 5) with gamma = 0.5: the pair enters
    once with the external and once with the policy-derived rejected answer, so the mean loss over the data is
    0.5 L(y+, y-) + 0.5 L(y+, y~-), the average POVID's public code takes (two rows instead of one pair)."""
    if mode == "external":
        return [row.rejected]
    if not row.rejected_policy:
        raise ValueError(
            f"pair {row.id!r} has no policy-derived rejected answer (rejected: {mode} needs a BDHS pair set)"
        )
    return [row.rejected_policy] if mode == "policy" else [row.rejected, row.rejected_policy]


def distortion_answers(row, mode: str) -> list[tuple[str, bool]]:
    """(rejected text, made by image distortion?) per row a pair contributes to the image-distortion baseline:
    a distortion row carries y+ as its text (its labels are replaced during training, see distortion.py)."""
    return ([(row.rejected, False)] if mode == "both" else []) + [(row.chosen, True)]


def preference_dataset(
    pairs_path: str | Path, max_pairs: int | None, seed: int, rejected: str = "external", distortion: bool = False
):
    """The pair table as a TRL vision preference dataset (conversational prompt/chosen/rejected + image)."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    frame = read_pairs(pairs_path)
    if max_pairs is not None and len(frame) > max_pairs:
        frame = frame.sample(n=max_pairs, random_state=seed)
    rows = []
    for row in frame.itertuples():
        answers = (
            distortion_answers(row, rejected) if distortion else [(a, False) for a in rejected_answers(row, rejected)]
        )
        for answer, distort in answers:
            rows.append(
                {
                    "image": row.image,
                    "prompt": [{"role": "user", "content": row.prompt}],
                    "chosen": [{"role": "assistant", "content": row.chosen}],
                    "rejected": [{"role": "assistant", "content": answer}],
                    **({"distort": distort} if distortion else {}),
                }
            )
    return Dataset.from_list(rows).cast_column("image", ImageFeature())
