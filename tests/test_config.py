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
