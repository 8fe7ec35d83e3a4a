"""Config defaults: variant_defaults and pairset_defaults fill entries, and an entry's own keys win."""

from mmalign.config import apply_defaults


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
