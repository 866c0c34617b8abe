"""Claim verdicts: the interval against the threshold, on hand-made tables."""

import re

import numpy as np
import pandas as pd
import pytest

from actflow import claims
from conftest import ROOT

CLAIM = {"id": "c", "statement": "s", "quote": "q", "table": "t", "column": "v"}


def table(values):
    return pd.DataFrame({"seed": range(len(values)), "v": values})


@pytest.mark.parametrize(
    "values,test,verdict",
    [
        ([0.10, 0.11, 0.12, 0.09, 0.10], {"op": "<", "value": 0.5}, "holds"),
        ([0.10, 0.11, 0.12, 0.09, 0.10], {"op": ">", "value": 0.5}, "does not hold"),
        ([0.1, 0.9, 0.2, 0.8, 0.5], {"op": "<", "value": 0.5}, "inconclusive"),
        ([0.065, 0.066, 0.067], {"op": "approx", "value": 0.066, "tolerance": 0.02}, "holds"),
        ([0.87, 0.88, 0.86], {"op": "approx", "value": 0.066, "tolerance": 0.02}, "does not hold"),
        ([0.2, 0.3, 0.25], {"op": "between", "range": [0, 1]}, "holds"),
    ],
)
def test_verdict_compares_the_interval_with_the_region(values, test, verdict):
    res = claims.evaluate_value(CLAIM | {"test": test}, table(values))
    assert res["verdict"] == verdict, res
    assert res["n_seeds"] == len(values)
    assert res["ci_low"] <= res["measured_mean"] <= res["ci_high"]


def test_diverged_seeds_are_left_out_and_counted():
    df = table([0.1, 0.1, 0.2, np.nan]).assign(diverged=[False, False, False, True])
    res = claims.evaluate_value(CLAIM | {"test": {"op": "<", "value": 1}}, df)
    assert res["n_seeds"] == 3 and res["n_left_out"] == 1 and "1 seed(s) without a finite value" in res["reason"]


def test_filters_by_value_list_last_and_fraction():
    df = pd.DataFrame({"seed": np.repeat([0, 1], 100), "epoch": np.tile(np.arange(1, 101), 2),
                       "layer": 3, "v": np.tile(np.arange(1, 101), 2).astype(float)})
    claim = CLAIM | {"test": {"op": ">", "value": 0},
                     "filter": {"epoch": {"from_fraction": 0.9, "to_fraction": 1.0}, "layer": "last"}}
    res = claims.evaluate_value(claim, df)
    assert res["measured_mean"] == pytest.approx(np.mean(np.arange(90, 101)))
    assert "epoch 90–100" in res["condition"]
    assert claims.evaluate_value(claim | {"filter": {"layer": 7}}, df)["verdict"] == "inconclusive"


def test_filters_by_a_range_of_values_bounds_excluded():
    df = pd.DataFrame({"x": np.linspace(-2, 2, 9), "v": np.linspace(-2, 2, 9)})
    claim = CLAIM | {"test": {"op": ">", "value": -10}}
    above = claims.evaluate_value(claim | {"filter": {"x": {"above": 0}}}, df)
    assert above["measured_mean"] == pytest.approx(np.mean([0.5, 1, 1.5, 2]))
    assert "x > 0" in above["condition"]
    both = claims.evaluate_value(claim | {"filter": {"x": {"above": -1, "below": 1}}}, df)
    assert both["measured_mean"] == pytest.approx(0.0) and "x < 1" in both["condition"]


def test_malformed_claims_file_is_refused_with_the_claim_named(tmp_path):
    f = tmp_path / "claims.yaml"
    f.write_text("claims:\n  - id: a\n    statement: s\n    quote: q\n"
                 "    table: metrics/loss.parquet\n    column: loss\n    test: {op: '~', value: 1}\n")
    with pytest.raises(claims.ClaimError, match="claim 'a': test.op must be one of"):
        claims.load(f)
    f.write_text("claims: []\n")
    with pytest.raises(claims.ClaimError, match="non-empty list"):
        claims.load(f)


# ------------------------------------------------------------------ the claims file, checked first
GOOD = {"id": "c", "statement": "s", "quote": "q", "table": "metrics/dead_neurons.parquet",
        "filter": {"experiment": "exp2", "activation": "relu"}, "column": "dead_fraction",
        "test": {"op": "<", "value": 0.5}}


@pytest.mark.parametrize("change,message", [
    ({"table": "../config/claims.yaml"}, "must be a path relative to results/ .* inside it"),
    ({"table": "../../../etc/passwd"}, "inside it"),
    ({"table": "/etc/passwd"}, "inside it"),
    ({"table": "metrics/exp1/no_such_table.parquet"}, "is not a table the workflow writes"),
    ({"table": "metrics"}, "is not a table the workflow writes"),  # a directory
    ({"table": None}, "table must be a path"),
    ({"column": "dead_fractoin"}, "column 'dead_fractoin' is not a column of metrics/dead_neurons"),
    ({"filter": {"experimnt": "exp2"}}, "filter column 'experimnt' is not a column"),
    ({"test": {"op": "approx", "value": 0.1}}, "takes exactly the keys .*missing \\['tolerance'\\]"),
    ({"test": {"op": "<", "value": "0.5"}}, "test.value must be a number"),
    ({"test": {"op": "between", "range": [1, 0]}}, "low < high"),
    ({"test": {"op": "~", "value": 1}}, "test.op must be one of"),
    ({"per_seed": "sum"}, "per_seed must be one of"),
    ({"filter": {"dead_fraction": {"above": "0"}}}, "a range of values is \\{above: a"),
    ({"filter": {"dead_fraction": {"above": 0, "to_fraction": 1}}}, "a range of values is"),
    ({"colour": "red"}, "unknown key\\(s\\) \\['colour'\\]"),
    ({"requires": {"depth": {"op": ">=", "value": 2}}}, "'depth' is not a column of runs.parquet"),
])
def test_a_malformed_claim_is_refused_naming_file_and_claim(change, message):
    with pytest.raises(claims.ClaimError) as err:
        claims.check([dict(GOOD) | change], "my_claims.yaml")
    assert str(err.value).startswith("my_claims.yaml: claim 'c'")
    assert re.search(message, str(err.value)), str(err.value)


def test_the_fast_schema_check_and_jsonschema_agree_on_every_claim_and_every_malformed_one():
    """The claims file is checked by fastjsonschema first (valid or not), by jsonschema for the
    words of an error: the two must agree, on the study's claims and all their readings and on
    claims malformed in every way the schema catches, so that the fast check never lets through
    what jsonschema refuses."""
    good = [{k: v for k, v in m.items() if not k.startswith("_")}  # every reading's claim
            for c in claims.load(ROOT / "config/claims.yaml") for m in claims.reading_claims(c)]
    assert len(good) > 300
    bad = [dict(GOOD) | change for change in (
        {"test": {"op": "approx", "value": 0.1}}, {"test": {"op": "<", "value": "0.5"}},
        {"test": {"op": "~", "value": 1}}, {"per_seed": "sum"}, {"colour": "red"},
        {"filter": {"dead_fraction": {"above": "0"}}}, {"kind": "winner"}, {"test": None},
        {"filter": {"dead_fraction": {"above": 0, "to_fraction": 1}}}, {"statement": 3},
        {"transform": "cube"}, {"test": {"op": "between", "range": [1]}})]
    bad += [{k: v for k, v in GOOD.items() if k != key} for key in ("id", "quote", "test")]
    for claim, valid in [(c, True) for c in good] + [(c, False) for c in bad]:
        reference = not list(claims._validator("claim").iter_errors(claim))
        try:
            claims._fast_validator("claim")(claim)
            fast = True
        except Exception:
            fast = False
        assert fast == reference == valid, (claim, fast, reference)


def test_every_operator_reducer_and_transform_the_schema_allows_is_evaluated():
    """The claims schema is the one list of operators, reducers and transforms: each it
    allows must evaluate (a value added to the schema alone fails here)."""
    definitions = claims.schema()["definitions"]
    props = definitions["claim"]["properties"]
    tests = {"<": {"value": 5}, "<=": {"value": 5}, ">": {"value": 0}, ">=": {"value": 0},
             "approx": {"value": 2, "tolerance": 5}, "between": {"range": [0, 10]}}
    assert set(definitions["test"]["properties"]["op"]["enum"]) == set(tests)
    df = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "v": [1.0, 3.0, 2.0, 4.0, 1.5, 2.5]})
    for op, params in tests.items():
        r = claims.evaluate_value(CLAIM | {"test": {"op": op, **params}}, df)
        assert r["verdict"] == "holds", (op, r["reason"])
    for reducer in props["per_seed"]["enum"]:
        r = claims.evaluate_value(CLAIM | {"per_seed": reducer, "test": {"op": ">", "value": 0}}, df)
        assert r["n_seeds"] == 3 and np.isfinite(r["measured_mean"]), reducer
    for transform in props["transform"]["enum"]:
        r = claims.evaluate_value(CLAIM | {"transform": transform, "test": {"op": ">", "value": -9}},
                                  df)
        assert np.isfinite(r["measured_mean"]), transform


def test_a_claim_without_a_table_key_is_named():
    with pytest.raises(claims.ClaimError, match="my.yaml: claim 1 'c': lacks the key 'table'"):
        claims.check([{"id": "c", "statement": "s", "quote": "q"}], "my.yaml")
    with pytest.raises(claims.ClaimError, match="my.yaml: claim 1 'c': lacks the key 'quote'"):
        claims.check([{"id": "c", "statement": "s", "table": "metrics/loss.parquet"}], "my.yaml")


def test_the_project_s_claims_file_passes_and_ratio_claims_require_two_layers():
    cl = claims.load(ROOT / "config/claims.yaml")
    ratio = [c for c in cl if "gradient_ratio" in c["table"]]
    assert all(c["quote"] and c["source"] for c in cl)
    assert ratio and all(c["requires"]["hidden_layers"]["value"] >= 2 for c in ratio)


def test_a_ratio_claim_on_a_single_layer_net_is_not_applicable(tmp_path):
    from actflow import io

    ratio = pd.DataFrame({"experiment": "exp1", "activation": "relu", "seed": [0, 1], "epoch": 1,
                          "weight_grad_ratio": 1.0, "preact_grad_ratio": 1.0,
                          "log10_weight_grad_ratio": 0.0})
    runs = pd.DataFrame({"experiment": "exp1", "activation": "relu", "seed": [0, 1],
                         "hidden_layers": 1, "outcome": "trained"})
    io.write_parquet(ratio, tmp_path / "r.parquet")
    io.write_parquet(runs, tmp_path / "runs.parquet")
    claim = claims.check([{"id": "r", "statement": "s", "quote": "q",
                           "table": "metrics/gradient_ratio.parquet",
                           "filter": {"experiment": "exp1", "activation": "relu"},
                           "column": "log10_weight_grad_ratio",
                           "test": {"op": "between", "range": [-0.5, 0.5]},
                           "requires": {"hidden_layers": {"op": ">=", "value": 2}}}], "f")
    out = claims.evaluate(claim, {"metrics/gradient_ratio.parquet": tmp_path / "r.parquet"}, "f",
                          {"sine": tmp_path / "runs.parquet"}).iloc[0]
    assert out["verdict"] == "not applicable"
    assert "hidden_layers >= 2" in out["reason"] and "hidden_layers = 1" in out["reason"]


def test_reasons_name_exploded_and_collapsed_runs_and_never_contradict_the_runs(tmp_path):
    from actflow import io, tables

    runs = pd.DataFrame({"experiment": "exp2", "activation": "leaky_relu", "seed": range(5),
                         "diverged": [False, False, False, False, True],
                         "final_loss": [0.01, 1e5, 0.5, 0.02, float("nan")],
                         "baseline_mse": 0.5})
    runs["outcome"] = tables.outcomes(runs, collapse_rtol=0.02, explode_factor=10)
    assert list(runs["outcome"]) == ["trained", "exploded", "collapsed", "trained", "non-finite"]
    dead = pd.DataFrame({"experiment": "exp2", "activation": "leaky_relu", "seed": range(5),
                         "diverged": runs["diverged"], "dead_fraction": [0, 0, 0.5, 0, np.nan]})
    io.write_parquet(dead, tmp_path / "d.parquet")
    io.write_parquet(runs, tmp_path / "runs.parquet")
    claim = claims.check([GOOD | {"filter": {"experiment": "exp2", "activation": "leaky_relu"}}], "f")
    out = claims.evaluate(claim, {GOOD["table"]: tmp_path / "d.parquet"}, "f",
                          {"sine": tmp_path / "runs.parquet"}).iloc[0]
    assert out["n_seeds"] == 4 and out["n_left_out"] == 1
    assert "5 runs: 2 trained, 1 collapsed, 1 exploded, 1 non-finite" in out["reason"]
    # all seeds without a value: the reason counts the outcomes instead of guessing
    dead["dead_fraction"] = np.nan
    io.write_parquet(dead, tmp_path / "d.parquet")
    out = claims.evaluate(claim, {GOOD["table"]: tmp_path / "d.parquet"}, "f",
                          {"sine": tmp_path / "runs.parquet"}).iloc[0]
    assert "no seed has a finite value (5 runs: 2 trained" in out["reason"]


def test_claim_text_is_escaped_in_the_html():
    df = pd.DataFrame([{"claim": "x", "statement": "<script>alert(1)</script> & more",
                        "measured_mean": 1.0, "ci_low": 0.5, "ci_high": 1.5, "n_seeds": 2,
                        "verdict": "holds", "reason": "a < b"}])
    page = claims.html(df)
    from actflow import render

    # the page's one script is the table's own (filter and sort); the claim's text is data
    assert page.count("<script") == 1 and f"<script>{render.SCRIPT}</script>" in page
    page = page.replace(f"<script>{render.SCRIPT}</script>", "")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "a &lt; b" in page


def test_every_quote_is_the_study_s_own_words():
    """Each claim quotes the study verbatim (its text lies beside the project, as in CI)."""
    text_file = ROOT.parent / "shared" / "reference" / "000_d5beb3bd2f61714f.txt"
    if not text_file.exists():
        pytest.skip("the study's text is not beside the project")
    text = text_file.read_text()
    for c in claims.load(ROOT / "config/claims.yaml"):
        assert c["quote"] in text, (c["id"], c["quote"])


def test_the_coverage_table_names_every_claim_and_only_claims():
    ids = {c["id"] for c in claims.load(ROOT / "config/claims.yaml")}
    doc = (ROOT / "docs/coverage.md").read_text()
    checked = doc.split("## Checked", 1)[1].split("## Not checked", 1)[0]
    named = set(re.findall(r"`([a-z0-9_]+)`", checked))
    assert named == ids


def test_a_compare_claim_pairs_the_two_selections_seed_by_seed(tmp_path):
    from actflow import io

    df = pd.DataFrame({"experiment": "exp1", "activation": np.repeat(["sigmoid", "relu"], 4),
                       "seed": np.tile(range(4), 2),
                       "epoch_below": [501, 501, 501, 501, 120, 131, 125, 140]})
    io.write_parquet(df, tmp_path / "c.parquet")
    claim = claims.check([{
        "id": "k", "statement": "s", "quote": "q", "kind": "compare",
        "table": "metrics/convergence.parquet", "filter": {"experiment": "exp1"},
        "left": {"activation": "relu"}, "right": {"activation": "sigmoid"},
        "column": "epoch_below", "combine": "difference", "test": {"op": "<=", "value": -100}}],
        "f")
    out = claims.evaluate(claim, {"metrics/convergence.parquet": tmp_path / "c.parquet"}).iloc[0]
    assert out["measured_mean"] == pytest.approx(np.mean([120, 131, 125, 140]) - 501)
    assert out["verdict"] == "holds" and out["n_seeds"] == 4
    assert "activation = relu" in out["condition"] and "activation = sigmoid" in out["condition"]
    ratio = claim[0] | {"combine": "log10_ratio", "test": {"op": "<", "value": 0}}
    out = claims.evaluate([ratio], {"metrics/convergence.parquet": tmp_path / "c.parquet"}).iloc[0]
    assert out["measured_mean"] == pytest.approx(np.mean(np.log10(np.array([120, 131, 125, 140]) / 501)))
