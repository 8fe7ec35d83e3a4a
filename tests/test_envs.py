"""Every conda env of envs/ pins exactly the versions pyproject.toml pins (and CI installs), and the installed
versions are those pins."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def pinned_requirements() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    return {name.lower(): version for name, version in re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', text)}


def test_env_files_pin_exact_versions_matching_the_project_pins():
    pins = pinned_requirements()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for path in envs:
        env = yaml.safe_load(path.read_text())
        assert env["channels"] == ["conda-forge", "nodefaults"], path.name
        conda = [d for d in env["dependencies"] if isinstance(d, str)]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        for dep in conda:
            assert re.fullmatch(r"[\w.-]+=\d[\w.]*", dep), (
                f"{path.name}: conda dependency {dep!r} is not pinned exactly"
            )
        for dep in pip:
            name, _, version = dep.partition("==")
            assert version, f"{path.name}: pip dependency {dep!r} is not pinned exactly"
            assert pins.get(name.lower()) == version, f"{path.name}: {name}=={version} drifts from pyproject.toml"


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for name, pinned in pinned_requirements().items():
        if name in ("pytest", "snakefmt", "ruff"):  # the test extra: not in the envs
            continue
        assert version(name).split("+")[0] == pinned, f"{name}: installed {version(name)}, pinned {pinned}"
