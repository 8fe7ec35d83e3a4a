"""Check a config's ``downloads`` pins against the Hugging Face Hub: each revision exists, and each entry's
``allow_patterns`` selects files at that revision.

Run as ``snakemake verify_pins --configfile config/paper.yaml`` (or ``python -m mmalign.pins config/paper.yaml``).
Where the Hub cannot be reached (no network, ``HF_HUB_OFFLINE=1``), every Hub entry is reported as
``unreachable`` and the check fails saying so: an unverified pin is never reported as good.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from mmalign.hub import is_pinned, repo_type_of


@dataclass
class PinCheck:
    name: str  # the downloads entry
    status: str  # ok | local | unpinned | missing | unmatched | unreachable
    detail: str = ""

    @property
    def good(self) -> bool:
        return self.status in {"ok", "local"}


def check_download(name: str, download: dict, api=None) -> PinCheck:
    """One entry: ``local`` for a mirror-only entry (nothing on the Hub), else ask the Hub for the revision."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import filter_repo_objects

    if "repo_id" not in download:
        return PinCheck(name, "local", f"local directory {download.get('mirror')}")
    repo, revision = download["repo_id"], download.get("revision")
    if not is_pinned(revision):
        return PinCheck(name, "unpinned", f"{repo}: revision {revision!r} is not a 40-hex commit sha")
    api = api or HfApi(token=os.environ.get("HF_TOKEN") or None)
    try:
        info = api.repo_info(repo, revision=revision, repo_type=repo_type_of(download), timeout=30)
    except GatedRepoError:
        return PinCheck(name, "unreachable", f"{repo} is gated: set HF_TOKEN to an account that has access")
    except RevisionNotFoundError:
        return PinCheck(name, "missing", f"{repo} has no revision {revision}")
    except RepositoryNotFoundError:
        return PinCheck(name, "missing", f"repository {repo} not found (moved, private, or a typo)")
    except OfflineModeIsEnabled:
        return PinCheck(name, "unreachable", "HF_HUB_OFFLINE is set")
    except Exception as err:  # network errors come from the HTTP client's own classes
        return PinCheck(name, "unreachable", f"cannot reach the Hub: {type(err).__name__}: {err}")
    files = [s.rfilename for s in info.siblings or []]
    patterns = download.get("allow_patterns") or []
    unmatched = [p for p in patterns if not list(filter_repo_objects(files, allow_patterns=[p]))]
    if unmatched:
        return PinCheck(name, "unmatched", f"{repo}@{revision[:7]}: no file matches {unmatched} ({len(files)} files)")
    return PinCheck(name, "ok", f"{repo}@{revision[:7]}: {len(files)} files")


def verify_pins(downloads: dict, api=None) -> list[PinCheck]:
    return [check_download(name, spec, api) for name, spec in downloads.items()]


def summary(checks: list[PinCheck]) -> str:
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"{c.name:<{width}}  {c.status:<11}  {c.detail}" for c in checks]
    unreachable = sum(c.status == "unreachable" for c in checks)
    bad = sum(not c.good for c in checks)
    if unreachable:
        lines.append(f"{unreachable} pin(s) NOT verified: the Hugging Face Hub could not be reached from here.")
    lines.append("all pins verified" if not bad else f"{bad} of {len(checks)} downloads entries failed the check")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configfile")
    args = parser.parse_args(argv)
    with open(args.configfile) as fh:
        downloads = (yaml.safe_load(fh) or {}).get("downloads") or {}
    checks = verify_pins(downloads)
    print(summary(checks))
    return 0 if all(c.good for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
