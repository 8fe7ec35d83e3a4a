"""Stage 5 (workflow/rules/report.smk): metrics.csv (``metrics``), the paper's tables (``tables``), the claims
scorecard (``claims``) and every figure (``figures``, in the one ``style``), all made from metrics.csv alone."""
