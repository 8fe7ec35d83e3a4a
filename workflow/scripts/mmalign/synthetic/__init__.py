"""The synthetic world of the default study: a small but real experiment that runs on a laptop CPU.

Scenes of coloured shapes with strong priors (``world``), a templated language with a parser that maps any answer
back to claims (``language``), a tiny LLaVA built and SFT-trained on them (``tinyllava``), analogs of the paper's
preference data sets (``povid_analog``, ``analogs``, ``prior_corrupter``), an exact judge (``exact_judge``) and the
analogs of the eight benchmarks (``benchmarks``).

This package plugs into the study's machinery only through ``mmalign.registry`` (entries keyed by config
values); nothing in the general wing imports it, so the paper study never runs (or hashes) its code.
"""
