"""verify_pins against a Hub API on loopback (huggingface_hub's real HfApi and error handling), and against no Hub."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from huggingface_hub import HfApi

from mmalign.pins import summary, verify_pins

SHA = "a6e72d6e1b912da88af8b2f9eba05d5ea8ec2dd8"
FILES = ["README.md", "testdev_balanced_instructions/testdev-00000.parquet", "testdev_balanced_images/x.parquet"]


@pytest.fixture
def fake_hub(monkeypatch):
    """GET /api/datasets/<org>/<name>/revision/<sha>: the repo's files at SHA, else 404 with the Hub's error code."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = self.path.split("?")[0].split("/")  # '', api, datasets, org, name, revision, sha
            known_repo = "/".join(parts[3:5]) == "lmms-lab/GQA"
            if known_repo and parts[6] == SHA:
                status, body, headers = 200, {"id": "lmms-lab/GQA", "sha": SHA, "siblings": []}, {}
                body["siblings"] = [{"rfilename": f} for f in FILES]
            elif known_repo:
                status, body, headers = 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
            else:
                status, body, headers = 401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    from huggingface_hub import constants

    # the tests run offline (conftest), and huggingface_hub froze that at import: online for this loopback Hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield HfApi(endpoint=f"http://127.0.0.1:{httpd.server_address[1]}", token=False)
    httpd.shutdown()
    httpd.server_close()


def gqa(**changes):
    entry = {"repo_type": "dataset", "repo_id": "lmms-lab/GQA", "revision": SHA}
    entry["allow_patterns"] = ["testdev_balanced_instructions/*", "testdev_balanced_images/*", "README.md"]
    return {**entry, **changes}


def test_pins_checked_against_the_hub(fake_hub):
    checks = verify_pins(
        {
            "gqa": gqa(),
            "gqa-bad-pattern": gqa(allow_patterns=["testdev_all_images/*"]),
            "gqa-old": gqa(revision="f" * 40),
            "gone": gqa(repo_id="lmms-lab/NoSuchRepo"),
            "branch": gqa(revision="main"),
            "coco": {"repo_type": "dataset", "mirror": "/datasets/coco"},
        },
        api=fake_hub,
    )
    status = {c.name: c.status for c in checks}
    assert status == {
        "gqa": "ok",
        "gqa-bad-pattern": "unmatched",
        "gqa-old": "missing",
        "gone": "missing",
        "branch": "unpinned",
        "coco": "local",
    }
    assert "3 files" in checks[0].detail and "testdev_all_images/*" in checks[1].detail
    assert summary(checks).endswith("4 of 6 downloads entries failed the check")


def test_offline_mode_is_said_plainly_and_fails():
    checks = verify_pins({"gqa": gqa()})  # conftest sets HF_HUB_OFFLINE=1
    assert checks[0].status == "unreachable" and "HF_HUB_OFFLINE" in checks[0].detail


def test_unreachable_hub_is_said_plainly_and_fails(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    api = HfApi(endpoint="http://127.0.0.1:9", token=False)  # nothing listens on the discard port
    checks = verify_pins({"gqa": gqa()}, api=api)
    assert checks[0].status == "unreachable" and "cannot reach the Hub" in checks[0].detail
    assert not checks[0].good
    assert "NOT verified: the Hugging Face Hub could not be reached" in summary(checks)


def test_paper_config_has_every_hub_entry_pinned():
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "paper.yaml").read_text())
    checks = verify_pins(config["downloads"], api=HfApi(endpoint="http://127.0.0.1:9", token=False))
    assert {c.status for c in checks} <= {"unreachable", "local"}  # never 'unpinned'
    assert sum(c.status == "unreachable" for c in checks) >= 11  # every Hub entry, the embedder included
