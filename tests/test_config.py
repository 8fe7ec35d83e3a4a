"""Config defaults: variant_defaults and pairset_defaults fill entries, and an entry's own keys win; the schema
reads the method registry and holds no defaults; references a pair set's corrupter needs."""

from pathlib import Path

import pytest
import yaml

from mmalign.config import (
    ConfigError,
    apply_defaults,
    check_references,
    expand_base_replicates,
    expand_replicates,
    load_schema,
    trigger_spec,
)
from mmalign.overrides import merge
from mmalign.train.methods import METHODS
from mmalign.train.settings import resolved_spec

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


def default_config():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    apply_defaults(config)
    return config


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["variants"]["ppo_povid_rm"].pop("reward_model"),
         "'variants.ppo_povid_rm.reward_model': ppo needs a reward_models entry, got None"),
        (lambda c: c["variants"]["rloo_povid_rm"].update(reward_model="rm_nope"),
         "'variants.rloo_povid_rm.reward_model': rloo needs a reward_models entry, got 'rm_nope'"),
        (lambda c: c["variants"]["rloo_povid_rm"].update(rl={"num_generation": 4}),
         "'variants.rloo_povid_rm.rl': unknown RL settings ['num_generation']"),
        (lambda c: c["variants"]["rloo_povid_rm"].update(rl={"batch_size": 6, "num_generations": 4}),
         "'variants.rloo_povid_rm.rl': batch_size must be a multiple of num_generations"),
        (lambda c: c["variants"]["dpo_povid"].update(reward_model="rm_povid"),
         "'variants.dpo_povid': reward_model and rl are settings of rloo / ppo only"),
        (lambda c: c["reward_models"]["rm_povid"].update(pairsets=["povdi"]),
         "'reward_models.rm_povid.pairsets': no pair set named 'povdi'"),
        (lambda c: c["report"]["reward_table"]["rows"].update(X="rm_nope"),
         "'report.reward_table.rows': row 'X' names no reward model 'rm_nope'"),
        (lambda c: c["report"]["reward_table"]["columns"].update(X="nope"),
         "'report.reward_table.columns': column 'X' names no pair set 'nope'"),
    ],
)  # fmt: skip
def test_a_bad_reward_model_or_rl_setting_fails_naming_the_key(edit, message):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError) as err:
        check_references(config)
    assert message in str(err.value)


def test_reward_model_defaults_fill_every_reward_model_and_the_schema_accepts_anchor_keys():
    from mmalign.config import validate_config

    config = default_config()
    assert config["reward_models"]["rm_vlfeedback"]["steps"] == config["reward_model_defaults"]["steps"]
    assert "x-rl-settings" in config  # YAML anchors of the RL settings: allowed, read by nothing
    validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    config["reward_models"]["rm_povid"]["stpes"] = 3
    with pytest.raises(ConfigError, match="'reward_models.rm_povid.stpes': unknown key"):
        validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_an_rl_variant_reads_its_settings_from_rl_only():
    from mmalign.train.rl_settings import RLSettings
    from mmalign.train.settings import resolved_spec

    variant = {**default_config()["variants"]["ppo_vlfeedback_rm"], "variant": "ppo_vlfeedback_rm", "seed": 4}
    settings = RLSettings.from_variant(variant)
    assert settings.method == "ppo" and settings.seed == 4 and settings.learning_rate == variant["rl"]["learning_rate"]
    assert settings.beta == variant["rl"]["beta"] != variant["beta"]  # not the DPO beta of variant_defaults
    spec = resolved_spec(variant)
    assert spec["rl"]["ppo_epochs"] == 2 and "loss_type" not in spec and spec["reward_model"] == "rm_vlfeedback"


def test_base_model_replicates_rebuild_what_the_base_model_generates_and_leave_run_0_alone():
    """replicates.base_model: run k starts from base model k; a pair set generated with the base model (RLHF-V
    analog, BDHS, and the sets derived from them) gets a copy per base seed whose sources are the copies too; a
    pair set of fixed answers (the POVID analog) is shared; the base model is evaluated once per seed."""
    config = default_config()
    before = {name: dict(spec) for name, spec in config["variants"].items()}
    groups = expand_replicates(config)
    seeds = expand_base_replicates(config, groups)
    assert groups["base"] == ["base/seed0", "base/seed1", "base/seed2"]
    assert seeds.runs["base/seed2"] == 2 and "base/seed0" not in seeds.runs
    assert seeds.models("tinyllava") == ["tinyllava", "tinyllava-seed1", "tinyllava-seed2"]
    assert config["variants"]["dpo_rlhfv/seed0"] == {**before["dpo_rlhfv"], "seed": 0}  # run 0: unchanged
    assert "dpo_rlhfv/seed0" not in seeds.runs
    assert config["variants"]["dpo_rlhfv/seed1"]["pairset"] == "rlhfv/seed1" and seeds.runs["dpo_rlhfv/seed1"] == 1
    assert config["variants"]["dpo_povid/seed2"]["pairset"] == "povid" and seeds.runs["dpo_povid/seed2"] == 2
    # derived sets follow their sources: BDHS on VLFeedback's 5k subsample of base model 2's VLFeedback analog
    assert config["variants"]["dpo_bdhs_vlfeedback/seed2"]["pairset"] == "bdhs_vlfeedback/seed2"
    assert config["pairsets"]["bdhs_vlfeedback/seed2"]["source"] == "vlfeedback_5k/seed2"
    assert config["pairsets"]["vlfeedback_5k/seed2"]["source"] == "vlfeedback/seed2"
    assert config["pairsets"]["vlfeedback/seed2"] == config["pairsets"]["vlfeedback"]
    # BDHS on the POVID analog: the set is generated by the base model, its source is not
    assert config["pairsets"]["bdhs_attn/seed1"]["source"] == "povid_5k" and "povid_5k/seed1" not in config["pairsets"]
    assert seeds.pairsets["vlfeedback/seed2"] == 2 and "povid" not in seeds.pairsets
    # sets no replicated variant reads are not copied (the size series trains once, on base model 0)
    assert "vlfeedback_n100/seed1" not in config["pairsets"]


def test_base_model_replicates_alone_replicate_the_build_and_nothing_else():
    """replicates.variants: [] with base_model: the base model is built and evaluated once per seed (the screen of a
    build recipe, benchmarks/recipe_spread.py), every variant trains once from base model 0 on the shared pairs."""
    config = default_config()
    before = {name: dict(spec) for name, spec in config["variants"].items()}
    pairsets = set(config["pairsets"])
    config["replicates"] = {"seeds": 4, "base_model": True, "variants": []}
    groups = expand_replicates(config)
    seeds = expand_base_replicates(config, groups)
    assert groups == {"base": ["base/seed0", "base/seed1", "base/seed2", "base/seed3"]}
    assert seeds.models("tinyllava") == ["tinyllava", "tinyllava-seed1", "tinyllava-seed2", "tinyllava-seed3"]
    assert config["variants"] == before and set(config["pairsets"]) == pairsets
    assert set(seeds.runs) == {"base/seed1", "base/seed2", "base/seed3"} and not seeds.pairsets


def test_base_model_replicates_of_a_downloaded_model_fail_naming_the_key():
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    apply_defaults(paper)
    paper["replicates"] = {"seeds": 2, "base_model": True, "variants": [next(iter(paper["variants"]))]}
    groups = expand_replicates(paper)
    with pytest.raises(ConfigError, match="'replicates.base_model': only a built base model"):
        expand_base_replicates(paper, groups)
    config = default_config()
    config["replicates"] = {"seeds": 1, "base_model": True}
    with pytest.raises(ConfigError, match="'replicates.base_model': needs replicates.seeds of 2 or more"):
        expand_base_replicates(config, expand_replicates(config))


def _filled_variants(raw: dict) -> dict:
    config = merge(raw, {})
    apply_defaults(config)
    return {name: {**variant, "seed": 0, "variant": name} for name, variant in config["variants"].items()}


def test_a_dpo_default_edit_reruns_the_variants_it_reaches_and_no_rl_run():
    """variant_spec's params (a rerun trigger) carry an RL variant's resolved settings, so the DPO keys it inherits
    from variant_defaults (min_steps, learning_rate: the shipped offline-800-steps overlay) do not retrain it; an
    offline variant that takes them from the defaults reruns, one that sets its own does not; an RL variant's own
    settings still rerun it; and spec.json (resolved in the job) is what it was before."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / "config" / "overlays" / "offline-800-steps.yaml").read_text())
    assert overlay == {"variant_defaults": {"min_steps": 800}}
    before = _filled_variants(raw)
    after = _filled_variants(merge(raw, merge(overlay, {"variant_defaults": {"learning_rate": 1.0e-3}})))
    rerun = {name for name in before if trigger_spec(before[name]) != trigger_spec(after[name])}
    rl = {name for name, v in before.items() if METHODS[v["method"]].reward_model}
    own = {name for name, v in raw["variants"].items() if "min_steps" in v and "learning_rate" in v}
    assert rl and own and "dpo_povid" in rerun and "dpo_imgdistort_povid" in rerun
    assert rerun == set(before) - rl - own
    assert after["dpo_povid"]["min_steps"] == 800 and after["online_bdhs"]["min_steps"] == 200
    rl_edit = _filled_variants(merge(raw, {"variants": {"rloo_povid_rm": {"rl": {"learning_rate": 5.0e-4}}}}))
    assert trigger_spec(rl_edit["rloo_povid_rm"]) != trigger_spec(before["rloo_povid_rm"])
    for name in ("rloo_povid_rm", "ppo_vlfeedback_rm", "dpo_povid"):
        assert resolved_spec(trigger_spec(before[name])) == resolved_spec(before[name])


def test_length_grouped_batching_on_a_method_that_makes_its_rows_fails_naming_the_key():
    config = default_config()
    config["variants"]["dpo_povid"]["batching"] = "length_grouped"  # fixed pair rows: accepted
    config["variants"]["ppo_povid_rm"]["batching"] = "length_grouped"  # RL reads no DPO key: accepted
    check_references(config)
    config["variants"]["online_dpo_povid"]["batching"] = "length_grouped"
    with pytest.raises(ConfigError, match="'variants.online_dpo_povid.batching': length_grouped groups fixed pair"):
        check_references(config)


def test_the_bucketed_800_step_overlay_loads_and_buckets_every_fixed_row_variant_and_no_other():
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / "config" / "overlays" / "offline-800-bucketed.yaml").read_text())
    config = merge(raw, overlay)
    apply_defaults(config)
    check_references(config)  # no method that makes its rows is bucketed
    for name, variant in config["variants"].items():
        method = METHODS[variant["method"]]
        if method.reward_model:
            continue
        assert variant["batching"] == ("length_bucketed" if method.precomputed_reference else "random"), name
        offline = not method.online
        assert (variant["min_steps"] == 800) == offline, name
