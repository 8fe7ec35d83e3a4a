"""The paper study's VLFeedback and RLHF-V rules, run for real through Snakemake on local mirrors shaped like the
Hub repos: VLFeedback's images arrive as merged_images.zip and are unzipped by the download rule; RLHF-V's images
come inside its parquet. A mirror stands in for the network (the same path `mirror:` gives users offline)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from PIL import Image

from test_sources_rlhfv import ROWS as RLHFV_ROWS
from test_sources_rlhfv import write_parquet as write_rlhfv
from test_sources_vlfeedback import FIXTURE as VLF_FIXTURE
from test_sources_vlfeedback import GOOD_IMAGES

REPO = Path(__file__).resolve().parents[1]


def jpeg(i) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (30 * i, 90, 160)).save(buf, "JPEG")
    return buf.getvalue()


def test_vlfeedback_and_rlhfv_rules_on_mirrors(tmp_path):
    mirrors = tmp_path / "mirrors"
    (mirrors / "vlfeedback").mkdir(parents=True)
    shutil.copy(VLF_FIXTURE, mirrors / "vlfeedback" / VLF_FIXTURE.name)
    with zipfile.ZipFile(mirrors / "vlfeedback" / "merged_images.zip", "w") as zf:
        for i, name in enumerate(GOOD_IMAGES):
            zf.writestr(f"merged_images/{name}.jpg", jpeg(i))
    write_rlhfv(mirrors / "rlhfv" / "RLHF-V-Dataset.parquet", RLHFV_ROWS)
    for name in ("vlfeedback", "rlhfv"):
        (mirrors / name / "README.md").write_text(f"{name}\n")  # paper.yaml's allow_patterns name it
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    for name in ("vlfeedback", "rlhfv"):
        config["downloads"][name]["mirror"] = str(mirrors / name)
    config["pairsets"]["vlfeedback"]["max_drop_rate"] = 0.9  # the fixtures are mostly malformed on purpose
    config["pairsets"]["rlhfv"]["max_drop_rate"] = 0.8
    configfile = tmp_path / "paper-mirrored.yaml"
    configfile.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(configfile),
        "--cores",
        "1",
        "results/pairs/vlfeedback/pairs.parquet",
        "results/pairs/rlhfv/pairs.parquet",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert (work / "resources/datasets/vlfeedback/merged_images/LLaVA-detail-2.jpg").is_file()  # unzipped
    vlf = json.loads((work / "results/pairs/vlfeedback/manifest.json").read_text())
    assert (vlf["rows_read"], vlf["rows_kept"]) == (11, 2) and vlf["dropped"]["missing_image"] == 2  # 2 not in the zip
    rlhfv = json.loads((work / "results/pairs/rlhfv/manifest.json").read_text())
    assert (rlhfv["rows_read"], rlhfv["rows_kept"]) == (10, 3)
    assert len(list((work / "results/pairs/rlhfv/images").glob("*.jpg"))) == 2  # (+ Snakemake's timestamp file)
