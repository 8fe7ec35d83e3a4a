"""Snakemake adapter: check the config's downloads pins against the Hub; print the table, fail if any is not good."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

import logging

from mmalign.pins import summary, verify_pins

checks = verify_pins(snakemake.params.downloads)
report = summary(checks)
print(report, flush=True)
logging.getLogger("verify_pins").info("\n%s", report)
bad = [c.name for c in checks if not c.good]
if bad:
    raise SystemExit(f"verify_pins: not verified: {', '.join(bad)} (see the table above)")
