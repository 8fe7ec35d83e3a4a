"""Config defaults: variant_defaults and pairset_defaults fill entries, and an entry's own keys win; the schema
reads the method registry and holds no defaults; references a pair set's corrupter needs."""

from pathlib import Path

import pytest
import yaml

from mmalign.config import ConfigError, apply_defaults, check_references, load_schema
from mmalign.train.methods import METHODS

REPO = Path(__file__).resolve().parents[1]


def test_variant_and_pairset_defaults_fill_entries_and_entries_win():
    config = {
        "variant_defaults": {"method": "dpo", "beta": 0.1, "epochs": 1},
        "pairset_defaults": {"bdhs": {"n_bdhs": 5, "rho_th": 0.99}},
        "variants": {"a": {"pairset": "p"}, "b": {"pairset": "p", "beta": 0.5}},
        "pairsets": {"p": {"kind": "povid_analog"}, "q": {"kind": "bdhs", "rho_th": 1.0}},
    }
    apply_defaults(config)
    assert config["variants"]["a"] == {"method": "dpo", "beta": 0.1, "epochs": 1, "pairset": "p"}
    assert config["variants"]["b"]["beta"] == 0.5 and config["variants"]["b"]["epochs"] == 1
    assert config["pairsets"]["q"] == {"kind": "bdhs", "n_bdhs": 5, "rho_th": 1.0}
    assert config["pairsets"]["p"] == {"kind": "povid_analog"}  # no defaults for its kind


def test_sweeps_add_one_variant_per_grid_point():
    from mmalign.config import expand_sweeps

    config = {
        "variants": {"dpo_povid": {"pairset": "povid", "beta": 0.1}},
        "sweeps": {"dpo_povid": {"variant": "dpo_povid", "grid": {"beta": [0.05, 0.5], "epochs": [1, 3]}}},
    }
    expand_sweeps(config)
    assert config["variants"]["dpo_povid_beta0.05_epochs3"] == {"pairset": "povid", "beta": 0.05, "epochs": 3}
    assert len(config["variants"]) == 1 + 4


def test_a_sweep_over_a_missing_variant_names_the_key():
    import pytest

    from mmalign.config import ConfigError, expand_sweeps

    with pytest.raises(ConfigError, match="sweeps.s.variant': no variant named 'nope'"):
        expand_sweeps({"variants": {}, "sweeps": {"s": {"variant": "nope", "grid": {"beta": [1]}}}})


def test_the_schema_takes_the_method_list_from_the_registry_and_sets_no_defaults():
    path = REPO / "workflow" / "schemas" / "config.schema.yaml"
    method = load_schema(path)["$defs"]["variant"]["properties"]["method"]
    assert method["enum"] == list(METHODS) and all(name in method["description"] for name in METHODS)
    assert "default:" not in "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
    assert "enum" not in yaml.safe_load(path.read_text())["$defs"]["variant"]["properties"]["method"]


def test_a_corrupted_pair_set_without_a_corrupter_or_world_fails_naming_the_key():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    apply_defaults(config)
    del config["pairsets"]["vlfeedback_corrupted"]["corrupter"]
    with pytest.raises(ConfigError, match="'pairsets.vlfeedback_corrupted.corrupter': a corrupted pair set needs"):
        check_references(config)
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    apply_defaults(paper)
    name = next(n for n, s in paper["pairsets"].items() if s["kind"] == "corrupted")
    paper["pairsets"][name]["corrupter"] = {"kind": "prior"}  # the world's corrupter in a study without a world
    with pytest.raises(ConfigError, match=f"'pairsets.{name}.corrupter.kind': the prior corrupter needs a 'world'"):
        check_references(paper)
