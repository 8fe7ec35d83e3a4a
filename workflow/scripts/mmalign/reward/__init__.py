"""Reward models for LLaVA-family models: a scalar head on the multimodal backbone, trained on preference pairs
with the Bradley-Terry loss (the paper's Eq. 1) and judged by pairwise accuracy (its Table 7)."""
