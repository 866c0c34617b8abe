"""What a configuration makes before any job runs: its datasets (shared where equal), the
training jobs' priorities and settings, the captions' fields, the tables the claims read and
the reading figures' jobs. The rules (workflow/rules/common.smk) only call these package
functions; here they are checked without Snakemake."""

import copy

import pytest

from actflow import budget, claims, figures, variants
from actflow.config import hyper, load_yaml, training_keys, validate
from conftest import ROOT

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def resolved(extra_variants=(), **changes):
    cfg = copy.deepcopy(load_yaml(ROOT / "config/config.yaml")) | changes
    cfg["variants"] = list(extra_variants)
    cfg = validate(cfg, SCHEMA)
    return cfg, variants.resolve(cfg, variants.expand_entries(cfg["variants"]))


def test_variants_with_equal_data_share_one_dataset_and_others_get_their_own():
    cfg, vs = resolved([
        {"name": "fast", "of": "exp1", "question": "q", "learning_rate": 0.01},
        {"name": "own", "of": "exp1", "question": "q", "data": {"per_seed": True}},
        {"name": "own2", "of": "exp2", "question": "q", "data": {"per_seed": True}},
        {"name": "noisy", "of": "exp3", "question": "q", "noise_std": 0.3},
        {"name": "noisy2", "of": "exp3", "question": "q", "noise_std": 0.3, "width": 8},
    ])
    ds = variants.datasets(vs)
    # exp1, exp2 and a variant changing only training share the study's sine data
    assert ds.of["exp1"] == ds.of["exp2"] == ds.of["fast"] == "study"
    # per-seed data: one dataset named after the first variant that needs it, shared by the next
    assert ds.of["own"] == ds.of["own2"] == "own"
    assert ds.settings[("sine", "own")]["seeds"] == list(cfg["seeds"])
    assert "seeds" not in ds.settings[("sine", "study")]
    # Experiment 3's noise is its data: a variant changing it draws its own, shared by its twin
    assert ds.of["exp3"] == "study" and ds.of["noisy"] == ds.of["noisy2"] == "noisy"
    assert ds.settings[("capacity", "noisy")]["noise_std"] == 0.3
    assert ds.settings[("capacity", "study")]["targets"] == cfg["exp3"]["targets"]
    assert ds.names("sine") == ["study", "own"] and ds.names("capacity") == ["study", "noisy"]


def test_a_training_job_gets_its_experiment_s_training_settings_and_costlier_ones_go_first():
    _, vs = resolved([{"name": "wide", "of": "exp1", "question": "q", "width": 128},
                      {"name": "short", "of": "exp1", "question": "q", "epochs": 10}])
    by = {v.name: v for v in vs}
    assert set(hyper(by["exp1"])) == set(training_keys())
    assert "n_samples" not in hyper(by["exp1"]) and "targets" not in hyper(by["exp3"])
    assert hyper(by["wide"])["width"] == 128
    prio = budget.priorities(vs)
    p = prio.training
    assert set(p) == set(by)
    assert p["wide"] > p["exp1"] > p["short"] >= 1  # every training job above priority 0
    assert prio.tables > prio.figures > max(p.values())  # and below every other job


def test_captions_list_the_layers_for_reading_and_name_every_variant():
    cfg, vs = resolved([{"name": "fast", "of": "exp1", "question": "quicker?",
                         "learning_rate": 0.01}])
    fields = figures.caption_fields(cfg | {"neurons": cfg["neurons"] | {"show_layers": [1, 5, 10]}}, vs)
    assert fields["neurons"]["show_layers"] == "1, 5 and 10"
    one = figures.caption_fields(cfg | {"neurons": cfg["neurons"] | {"show_layers": [3]}}, vs)
    assert one["neurons"]["show_layers"] == "3"
    assert fields["variant_list"] == "fast\\: learning\\_rate\\=0\\.01 \\(quicker\\?\\)"
    assert fields["variant_list"] in figures.sensitivity_caption(cfg, vs)
    _, none = resolved()
    assert "none configured" in figures.sensitivity_caption(cfg, none)


def test_the_claims_read_their_table_under_the_study_and_every_variant_of_its_experiment():
    _, vs = resolved([{"name": "fast", "of": "exp1", "question": "q", "learning_rate": 0.01},
                      {"name": "deep", "of": "exp2", "question": "q", "hidden_layers": 12}])
    cs = claims.load(ROOT / "config/claims.yaml")
    read = claims.tables_read(cs, vs)
    assert read == sorted(set(read)) and "metrics/gradient_flow.parquet" in read  # a union table
    assert set(read) == {m["table"] for c in cs for m in claims.reading_claims(c)}
    # a claim on a per-experiment table reads that table in each variant's own folder
    own = [{"id": "x", "table": "metrics/exp1/gradient_flow.parquet"},
           {"id": "y", "table": "metrics/activation_curves.parquet"}]
    assert claims.tables_read(own, vs) == [
        "metrics/activation_curves.parquet", "metrics/exp1/gradient_flow.parquet",
        "metrics/fast/gradient_flow.parquet"]


@pytest.mark.parametrize("n,parts", [(0, 4), (3, 4), (9, 4), (4, 1)])
def test_the_reading_figures_deal_each_claim_to_exactly_one_job(n, parts):
    items = [f"c{i}" for i in range(n)]
    dealt = claims.deal(items, parts)
    assert len(dealt) == min(n, parts) and all(dealt)
    assert sorted(x for p in dealt for x in p) == sorted(items)
    assert max(map(len, dealt), default=0) - min(map(len, dealt), default=0) <= 1
