"""Snakemake adapter: fetch a pinned Hugging Face repo (model or dataset), or copy a local mirror, into output.dir."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.hub import extract_archives, fetch_snapshot, repo_type_of

download = snakemake.params.download
local_only = "repo_id" not in download  # a local directory entry (e.g. COCO images): nothing on the Hub to pin
fetch_snapshot(
    repo_id=download.get("repo_id", f"local:{download.get('mirror')}"),
    revision=download.get("revision", "local"),
    out_dir=snakemake.output.dir,
    repo_type=repo_type_of(download),
    allow_patterns=download.get("allow_patterns"),
    mirror=download.get("mirror"),
    allow_unpinned=local_only,
)
extract_archives(snakemake.output.dir, download.get("extract") or [])
