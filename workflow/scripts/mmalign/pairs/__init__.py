"""Stage 2 (workflow/rules/pairs.smk): preference pair sets, every source in one schema (``mmalign.schema``)."""
