"""Bad configuration stops before any job, naming the key, the value and the fix.

Every malformed value is checked in-process against the validation the Snakefile runs
(``actflow.config.validate``: the same code path); a few representative cases go through a
real Snakemake process to show that the message reaches the user before any job and that no
finished result changes.
"""

import hashlib
import re
import shutil

import pytest
import yaml

from actflow.config import ConfigError, load_yaml, validate
from conftest import ROOT, TINY, snakemake

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
BAD = [
    ({"activations": ["sigmoid", "swish"]}, "activations[1]", "'swish' is not one of .*'gelu'"),
    ({"activations": []}, "activations", "should be non-empty|too short"),
    ({"exp1": {"epochs": 0}}, "exp1.epochs", "less than the minimum of 1"),
    ({"exp1": {"epochs": -5}}, "exp1.epochs", "minimum"),
    ({"exp1": {"hidden_layers": 0}}, "exp1.hidden_layers", "minimum"),
    ({"exp1": {"width": 0}}, "exp1.width", "minimum"),
    ({"exp1": {"epochs": 10.5}}, "exp1.epochs", "not of type 'integer'"),
    # whole-valued floats are refused, not converted (the value a job gets is the value written)
    ({"exp1": {"epochs": 13.0}}, "exp1.epochs", r"13\.0 is not of type 'integer'.*\(13\)"),
    ({"exp1": {"epochs": "1e3"}}, "exp1.epochs", r"1000\.0 is not of type 'integer'.*\(1000\)"),
    ({"exp2": {"width": 8.0}}, "exp2.width", "not of type 'integer'.*whole number"),
    ({"exp1": {"epochs": True}}, "exp1.epochs", "not of type 'integer'"),
    ({"exp1": {"learning_rate": 0}}, "exp1.learning_rate", "less than or equal to the minimum of 0"),
    ({"exp1": {"learning_rate": -0.1}}, "exp1.learning_rate", "less than or equal"),
    ({"exp1": {"learning_rate": float("nan")}}, "exp1.learning_rate", "not a finite number"),
    ({"exp1": {"learning_rate": "fast"}}, "exp1.learning_rate", "not of type 'number'"),
    ({"exp1": {"optimizer": "rmsprop"}}, "exp1.optimizer", "not one of \\['adam', 'sgd'\\]"),
    ({"exp1": {"lr": 0.1}}, "exp1", "'lr' was unexpected.*known keys here: .*learning_rate"),
    ({"data": {"n_samples": 0}}, "data.n_samples", "minimum"),
    ({"figures": {"formats": ["pdf"]}}, "figures.formats", r"\['pdf'\] lacks 'png', which it must list"),
    ({"figures": {"formats": ["png", "svg"]}}, "figures.formats[1]",
     "'svg' is not one of \\['png', 'pdf'\\]"),
    ({"data": {"x_min": 2.0, "x_max": 1.0}}, "data.x_min", "below data.x_max"),
    ({"data": {"noise_std": -1}}, "data.noise_std", "minimum"),
    ({"seeds": [0, 1, 1]}, "seeds", "non-unique"),
    ({"seeds": "0,1"}, "seeds", "not of type 'array'"),
    # torch keeps the low 32 bits of a seed: 2^32 would train the same run as 0
    ({"seeds": [0, 4294967296]}, "seeds[1]", "greater than the maximum of 4294967295"),
    ({"seeds": [0, 2**64 + 3]}, "seeds[1]", "greater than the maximum"),
    ({"device": "tpu"}, "device", "not one of \\['auto', 'cpu', 'cuda'\\]"),
    ({"figures": {"dpi": 0}}, "figures.dpi", "minimum"),
    ({"train": {"compile": True}}, "train", "'compile' was unexpected"),
    ({"exp9": {}}, "(top level)", "'exp9' was unexpected"),
    ({"data": None}, "data", "not of type 'object'"),
    # cross-field and size checks: what training and the metrics would fail on after starting
    ({"neurons": {"show_layers": [1, 99]}}, "neurons.show_layers",
     "layer 99 is deeper than exp1.hidden_layers = 10: list layers between 1 and 10"),
    ({"exp2": {"width": 1000000}}, "exp2", r"would need about [\d,]+ MB .*width 1000000.*"
                                           r"train.mem_mb is 4,000"),
    ({"exp1": {"epochs": 1000000000}}, "exp1", r"would need about [\d,]+ MB .*1000000000 epochs"),
    ({"exp3": {"n_test": 10000000}}, "exp3", "capacity-metrics job would need"),
    ({"outcomes": {"explode_factor": 0.5}}, "outcomes.explode_factor", "minimum"),
]


# Malformed variants: each is validated exactly like its experiment, before any job.
V = [{"name": "ok", "of": "exp2"}]
BAD += [
    ({"variants": [{"name": "x", "of": "exp9"}]}, "variants[0] (x).of", "'exp9' is not one of exp1"),
    ({"variants": [{"name": "x", "of": "exp2", "learning_rat": 0.1}]}, "variants[0] (x).learning_rat",
     "not a setting of exp2; its settings are .*learning_rate"),
    ({"variants": [{"name": "x", "of": "exp2", "learning_rate": -1}]},
     "variants[0] (x).learning_rate", "less than or equal to the minimum of 0"),
    ({"variants": [{"name": "x", "of": "exp1", "epochs": 12.0}]}, "variants[0] (x).epochs",
     "not of type 'integer'.*\\(12\\)"),
    ({"variants": [{"name": "x", "of": "exp1", "data": {"per_seed": "yes"}}]},
     "variants[0] (x).data.per_seed", "not of type 'boolean'"),
    ({"variants": [{"name": "x", "of": "exp1", "data": {"noise": 0}}]},
     "variants[0] (x).data.noise", "not a data setting"),
    ({"variants": [{"name": "x", "of": "exp1", "init": "orthogonal"}]}, "variants[0] (x).init",
     "'orthogonal' is not one of"),
    ({"variants": [{"name": "../up", "of": "exp1"}]}, "variants[0].name", "not a name of lower-case"),
    ({"variants": [{"name": "Big", "of": "exp1"}]}, "variants[0].name", "not a name of lower-case"),
    ({"variants": V + [{"name": "ok", "of": "exp1"}]}, "variants[1] (ok).name",
     "already the name of another variant"),
    ({"variants": [{"name": "exp2", "of": "exp2"}]}, "variants[0] (exp2).name",
     "already the name of the study's experiment"),
    ({"variants": [{"name": "lr", "of": "exp2", "grid": {"learning_rate": [0.01, 0.01]}}]},
     "variants[0] (lr-learning_rate=0.01).name", "already the name of another variant"),
    # two grid values written alike in the generated names (6 significant digits)
    ({"variants": [{"name": "lr", "of": "exp2", "grid": {"learning_rate": [1e-10, 1.0000001e-10]}}]},
     "variants[0] (lr).grid.learning_rate", r"1e-10 and 1.0000001e-10 are both written '1e-10'.*"
                                            r"give each its own variant"),
    ({"activations": ["relu"] * 3 + ["gelu"] * 397}, "activations",
     r"^(?!.*gelu.*gelu).*'relu' is listed more than once \(400 items, non-unique\): list each "
     r"once"),
    ({"variants": [{"name": "lr", "of": "exp2", "grid": {"learning_rate": 0.01}}]},
     "variants[0] (lr).grid", "non-empty lists of values"),
    ({"variants": [{"name": "lr", "of": "exp2", "learning_rate": 0.1,
                    "grid": {"learning_rate": [0.01]}}]},
     "variants[0] (lr).grid", "given both as a setting and in the grid"),
    ({"variants": [{"name": "deep", "of": "exp2", "hidden_layers": 2}]}, "neurons.show_layers",
     "layer 5 is deeper than variants\\[0\\] \\(deep\\).hidden_layers = 2"),
    ({"variants": [{"name": "huge", "of": "exp3", "width": 100000}]}, "variants[0] (huge)",
     "one training job would need about"),
]


def test_a_grid_expands_to_one_variant_per_combination_with_readable_names():
    from actflow import variants

    entries = [{"name": "g", "of": "exp2", "question": "q", "optimizer": "sgd",
                "grid": {"learning_rate": [0.1, 0.01], "data.per_seed": [True, False]}}]
    out = variants.expand_entries(entries)
    assert [v["name"] for v in out] == [  # keys in alphabetical order, values as written
        "g-per_seed=true-learning_rate=0.1", "g-per_seed=true-learning_rate=0.01",
        "g-per_seed=false-learning_rate=0.1", "g-per_seed=false-learning_rate=0.01"]
    assert out[1]["overrides"] == {"optimizer": "sgd", "learning_rate": 0.01,
                                   "data": {"per_seed": True}}
    cfg = validate({"variants": entries}, SCHEMA)
    resolved = {v.name: v for v in variants.resolve(cfg, variants.expand_entries(cfg["variants"]))}
    v = resolved["g-per_seed=true-learning_rate=0.01"]
    assert v.of == "exp2" and v.settings["learning_rate"] == 0.01 and v.data["per_seed"] is True
    assert v.settings["hidden_layers"] == cfg["exp2"]["hidden_layers"]  # inherited
    assert variants.describe(v) == "data.per_seed=true, learning_rate=0.01, optimizer=sgd"


@pytest.mark.parametrize("override,key,reason", BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_config_names_key_and_reason(override, key, reason):
    with pytest.raises(ConfigError) as err:
        validate(override, SCHEMA)
    msg = str(err.value)
    assert f"config key '{key}'" in msg
    assert re.search(reason, msg), msg
    assert "fix config/config.yaml" in msg
    assert "\n" not in msg  # one line


def test_text_keys_stay_text_and_number_keys_given_as_text_become_numbers():
    cfg = validate({"exp1": {"learning_rate": "1e-2"},
                    "variants": [{"name": "a", "of": "exp1", "question": "2024"},
                                 {"name": "b", "of": "exp1", "question": "NaN",
                                  "learning_rate": "0.5"}]}, SCHEMA)
    assert cfg["exp1"]["learning_rate"] == 0.01
    assert [v["question"] for v in cfg["variants"]] == ["2024", "NaN"]
    assert cfg["variants"][1]["learning_rate"] == 0.5


def test_yaml_merge_keys_are_read_and_a_key_given_twice_is_still_refused(tmp_path):
    f = tmp_path / "merge.yaml"
    f.write_text("base: &b {hidden_layers: 3, width: 8, epochs: 12}\n"
                 "exp1: {<<: *b, epochs: 20}\nexp2:\n  <<: *b\n")
    doc = load_yaml(f)
    assert doc["exp1"] == {"hidden_layers": 3, "width": 8, "epochs": 20}  # own key wins
    assert doc["exp2"] == {"hidden_layers": 3, "width": 8, "epochs": 12}
    f.write_text("exp1:\n  <<: {width: 8}\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="'epochs' appears twice"):
        load_yaml(f)


def test_config_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="must be a mapping"):
        validate(["sigmoid"], SCHEMA)


def test_a_config_at_the_memory_limit_passes_and_raising_the_limit_admits_more():
    assert validate({"exp1": {"width": 256}}, SCHEMA)
    big = {"exp1": {"width": 2000}}
    with pytest.raises(ConfigError, match="train.mem_mb"):
        validate(dict(big), SCHEMA)
    assert validate(big | {"train": {"mem_mb": 64000}}, SCHEMA)


def test_numbers_given_as_text_on_the_command_line_are_numbers():
    cfg = validate({"figures": {"dpi": "120"}, "exp1": {"learning_rate": "1e-2"}}, SCHEMA)
    assert cfg["figures"]["dpi"] == 120 and cfg["exp1"]["learning_rate"] == 0.01
    with pytest.raises(ConfigError, match="exp1.learning_rate.*not a finite number"):
        validate({"exp1": {"learning_rate": "nan"}}, SCHEMA)


def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("exp1:\n  epochs: 10\n  width: 8\n  epochs: 20\n")
    with pytest.raises(ConfigError, match=r"dup.yaml: the key 'epochs' appears twice .*lines 2 and 4"):
        load_yaml(f)


# ------------------------------------------------------------------ through Snakemake
def _digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


CLI_CASES = {  # one per kind of check: schema, cross-field, size, YAML syntax, duplicate key
    "unknown-activation": ("activations: [sigmoid, swish]\n", r"config key 'activations\[1\]'"),
    "show-layers": ("neurons: {show_layers: [99]}\n", r"config key 'neurons.show_layers': layer 99"),
    "float-epochs": ("exp1: {epochs: 13.0}\n", r"config key 'exp1.epochs': 13.0 is not of type"),
    "yaml-does-not-parse": ("exp1: {epochs: 5\n", "not valid JSON or YAML"),
    "duplicate-key": ("exp1: {epochs: 5}\nexp1: {epochs: 6}\n", "the key 'exp1' appears twice"),
}


@pytest.fixture(scope="module")
def shared_copy(tmp_path_factory, tiny_run):
    """One copy of the finished tiny run; each bad config must leave it untouched."""
    wd = tmp_path_factory.mktemp("bad-config") / "wf"
    shutil.copytree(tiny_run, wd, symlinks=True)
    return wd


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_snakemake_stops_before_any_job_and_results_are_untouched(shared_copy, tmp_path, case):
    text, expected = CLI_CASES[case]
    wd = shared_copy
    before = _digest(wd / "results")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = snakemake(wd, configfiles=(TINY, bad), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(expected, out), out
    assert out.count("Invalid configuration") <= 1
    assert "Select jobs to execute" not in out and "rule train" not in out
    assert _digest(wd / "results") == before


def test_the_default_config_and_every_config_in_the_docs_validate():
    for text in (ROOT / "config/config.yaml", TINY):
        assert validate(yaml.safe_load(text.read_text()), SCHEMA)


def test_the_variants_seed_range_is_the_schemas():
    """variants.MAX_SEED (a variant's own seeds) and the schema's maximum of every seed agree."""
    import re

    from actflow import variants

    schema = (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text()
    maxima = {int(m) for m in re.findall(r"maximum: (\d{6,})", schema)}
    assert maxima == {variants.MAX_SEED}
