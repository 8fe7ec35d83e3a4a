"""Snakemake adapter: the BDHS_noise diffusion schedule (beta_k and alpha_bar_k for k = 1..1000) as a table."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

import pandas as pd
import torch

from mmalign.bdhs import beta_schedule

beta = beta_schedule()
alpha_bar = torch.cumprod(1 - beta, dim=0)  # Eq. 9: alpha_bar_N = prod_{k<=N} (1 - beta_k)
pd.DataFrame({"k": range(1, len(beta) + 1), "beta": beta.numpy(), "alpha_bar": alpha_bar.numpy()}).to_csv(
    snakemake.output[0],
    index=False,
)
