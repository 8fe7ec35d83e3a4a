"""Snakemake adapter: fetch one `downloads` entry (a pinned Hub snapshot, or a local mirror) into output.dir, with
a manifest of the files read (output.manifest)."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.hub import fetch_download

fetch_download(
    snakemake.params.name,
    snakemake.params.download,
    snakemake.output.dir,
    snakemake.output.manifest,
    processor=snakemake.params.processor,
)
