"""Bad configuration stops before any job, naming the key and the reason."""

import hashlib
import re
import shutil

import pytest
import yaml

from actflow.config import ConfigError, validate
from conftest import ROOT, TINY, copy_workflow, snakemake

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
BAD = [
    ({"activations": ["sigmoid", "swish"]}, "activations[1]", "'swish' is not one of .*'gelu'"),
    ({"activations": []}, "activations", "should be non-empty|too short"),
    ({"exp1": {"epochs": 0}}, "exp1.epochs", "less than the minimum of 1"),
    ({"exp1": {"epochs": -5}}, "exp1.epochs", "minimum"),
    ({"exp1": {"hidden_layers": 0}}, "exp1.hidden_layers", "minimum"),
    ({"exp1": {"width": 0}}, "exp1.width", "minimum"),
    ({"exp1": {"epochs": 10.5}}, "exp1.epochs", "not of type 'integer'"),
    ({"exp1": {"learning_rate": 0}}, "exp1.learning_rate", "less than or equal to the minimum of 0"),
    ({"exp1": {"learning_rate": -0.1}}, "exp1.learning_rate", "less than or equal"),
    ({"exp1": {"learning_rate": float("nan")}}, "exp1.learning_rate", "not a finite number"),
    ({"exp1": {"learning_rate": "fast"}}, "exp1.learning_rate", "not of type 'number'"),
    ({"exp1": {"optimizer": "rmsprop"}}, "exp1.optimizer", "not one of \\['adam', 'sgd'\\]"),
    ({"exp1": {"lr": 0.1}}, "exp1", "'lr' was unexpected.*known keys here: .*learning_rate"),
    ({"data": {"n_samples": 0}}, "data.n_samples", "minimum"),
    ({"data": {"x_min": 2.0, "x_max": 1.0}}, "data.x_min", "below data.x_max"),
    ({"data": {"noise_std": -1}}, "data.noise_std", "minimum"),
    ({"seeds": [0, 1, 1]}, "seeds", "non-unique"),
    ({"seeds": "0,1"}, "seeds", "not of type 'array'"),
    ({"device": "tpu"}, "device", "not one of \\['auto', 'cpu', 'cuda'\\]"),
    ({"figures": {"dpi": 0}}, "figures.dpi", "minimum"),
    ({"train": {"compile": "yes"}}, "train.compile", "not of type 'boolean'"),
    ({"exp9": {}}, "(top level)", "'exp9' was unexpected"),
    ({"data": None}, "data", "not of type 'object'"),
]


@pytest.mark.parametrize("override,key,reason", BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_config_names_key_and_reason(override, key, reason):
    with pytest.raises(ConfigError) as err:
        validate(override, SCHEMA)
    msg = str(err.value)
    assert f"config key '{key}'" in msg
    assert re.search(reason, msg), msg
    assert "fix config/config.yaml" in msg


def test_config_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="must be a mapping"):
        validate(["sigmoid"], SCHEMA)


def _digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


CLI_CASES = [(yaml.safe_dump(o), re.escape(f"config key '{k}'") + ".*" + r) for o, k, r in BAD] + [
    ("exp1: {epochs: 5\n", "not valid JSON or YAML"),  # YAML that does not parse (Snakemake's message)
]


@pytest.fixture(scope="module")
def shared_copy(tmp_path_factory, tiny_run):
    """One copy of the finished tiny run; each bad config must leave it untouched."""
    wd = tmp_path_factory.mktemp("bad-config") / "wf"
    shutil.copytree(tiny_run, wd, symlinks=True)
    return wd


@pytest.mark.parametrize("text,expected", CLI_CASES, ids=[b[1] for b in BAD] + ["yaml-does-not-parse"])
def test_snakemake_stops_before_any_job_and_results_are_untouched(shared_copy, tmp_path, text,
                                                                  expected):
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


def test_numbers_given_as_text_on_the_command_line_are_numbers():
    cfg = validate({"figures": {"dpi": "120"}, "exp1": {"learning_rate": "1e-2"}}, SCHEMA)
    assert cfg["figures"]["dpi"] == 120 and cfg["exp1"]["learning_rate"] == 0.01
    with pytest.raises(ConfigError, match="exp1.learning_rate.*not a finite number"):
        validate({"exp1": {"learning_rate": "nan"}}, SCHEMA)
