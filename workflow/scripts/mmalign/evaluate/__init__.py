"""Stage 4 (workflow/rules/evaluate.smk): benchmark items (``items``), every variant on every benchmark (``run``),
scored by each benchmark kind's own rule or judge (``benchmarks``)."""
