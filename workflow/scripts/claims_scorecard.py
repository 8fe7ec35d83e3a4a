"""Snakemake adapter: the claims scorecard from metrics.csv."""

import logging

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.report.claims import write_scorecard  # noqa: E402

card = write_scorecard(snakemake.input.metrics, snakemake.input.claims, snakemake.params.columns,  # noqa: F821
                       snakemake.params.study, snakemake.output.csv, snakemake.output.md,  # noqa: F821
                       snakemake.input.published)  # noqa: F821
logging.info("verdicts: %s", card["verdict"].value_counts().to_dict())
