"""The audit on the tiny run: claim verdicts, manifest, determinism, re-execution."""

import hashlib
import json

import yaml

from actflow import claims, io, layout
from conftest import ROOT, TINY, figures_reading, planned_job_list, snakemake, study_files


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_every_claim_gets_a_verdict(tiny_run):
    df = io.read_parquet(tiny_run / "results/audit/claims.parquet")
    listed = [c["id"] for c in yaml.safe_load((ROOT / "config/claims.yaml").read_text())["claims"]]
    assert list(df["claim"]) == listed
    assert set(df["verdict"]) <= set(claims.VERDICTS) - {"not applicable"}
    assert df["reason"].str.len().gt(10).all()
    sig = df.set_index("claim").loc["sigmoid_max_derivative"]
    assert sig["verdict"] == "holds" and abs(sig["measured_mean"] - 0.25) < 1e-3
    md = (tiny_run / "results/audit/claims.md").read_text()
    assert all(f"`{c}`" in md for c in listed)


def test_manifest_hashes_every_output(tiny_run):
    doc = json.loads((tiny_run / "results/audit/manifest.json").read_text())
    assert {"config", "config_sha256", "versions", "platform", "cpu", "git", "files",
            "training_devices"} <= set(doc)
    assert doc["config"]["seeds"] == [0, 1] and doc["training_devices"] == ["cpu"]
    assert {"python", "snakemake", "torch", "pandas", "pyarrow", "matplotlib"} <= set(doc["versions"])
    files = doc["files"]
    for rel in ("results/metrics/loss.parquet", "results/figures/fig10_capacity_heatmap.png",
                "results/train/exp3/relu/weights.safetensors", "results/audit/claims.parquet",
                "results/audit/sensitivity.parquet", "results/train/exp3_clean/relu/loss.parquet"):
        assert files[rel]["sha256"] == _sha(tiny_run / rel) and files[rel]["bytes"] > 0
    assert (tiny_run / "results/audit/config.yaml").exists()


def test_manifest_lists_exactly_the_files_of_a_finished_run(tiny_run):
    """Every file under results/ but logs, benchmarks and the manifest's own outputs is
    certified, and nothing else."""
    doc = json.loads((tiny_run / layout.AUDIT["manifest"]).read_text())
    on_disk = set()
    for p in (tiny_run / "results").rglob("*"):
        rel = str(p.relative_to(tiny_run))
        if p.is_file() and not rel.startswith(layout.UNCERTIFIED_DIRS) \
                and rel not in layout.UNCERTIFIED_FILES:
            on_disk.add(rel)
    assert set(doc["files"]) == on_disk
    assert {f"results/metrics/exp1/{t}.parquet" for t in layout.job_tables("weights")} <= on_disk


def test_two_runs_from_clean_give_byte_identical_tables(tiny_run, cold_run):
    # the same config from clean (cold_run without the variants), one run in place, the other
    # as a module: the study's data, weights and tables are the same bytes
    files = study_files(tiny_run)
    assert len([f for f in files if f.endswith(".parquet")]) > 40
    assert files == study_files(cold_run)
    different = [f for f in files if _sha(tiny_run / f) != _sha(cold_run / f)]
    assert different == []
    # the wall-clock timings (layout.TIMED_FILES) differ between any two runs: left out above
    timing = f"results/train/exp1/relu/{layout.TRAIN_FILES['timing']}"
    assert (tiny_run / timing).is_file() and (cold_run / timing).is_file()


def test_user_adds_a_claim_by_editing_the_yaml_alone(tiny_copy):
    f = tiny_copy / "config/claims.yaml"
    doc = yaml.safe_load(f.read_text())
    doc["claims"].append({"id": "relu_loss_drops", "statement": "ReLU's loss ends below its start",
                          "quote": "ReLU converges quickly",
                          "table": "metrics/runs.parquet",
                          "filter": {"experiment": "exp1", "activation": "relu"},
                          "column": "final_loss", "test": {"op": "<", "value": 10.0}})
    f.write_text(yaml.safe_dump(doc))
    plan = planned_job_list(tiny_copy)
    assert {r for r, _ in plan} - {"all"} == {"audit_claims", "manifest", "figure",
                                                "reading_figures", "summary"}
    assert {wc["figure"] for r, wc in plan if r == "figure"} == figures_reading(
        layout.AUDIT["sensitivity_parquet"])
    proc = snakemake(tiny_copy)
    df = io.read_parquet(tiny_copy / "results/audit/claims.parquet").set_index("claim")
    assert df.loc["relu_loss_drops", "verdict"] == "holds"
    # the run ends on its findings, the new claim counted
    out = proc.stdout + proc.stderr
    assert "What this run found" in out and f"  {len(df)} claims: " in out


def test_audit_reexecutes_exactly_and_reports_tampering_without_overwriting(tiny_copy, tmp_path):
    cfg = yaml.safe_load(TINY.read_text()) | {"audit": {"sample_jobs": 50}}
    conf = tmp_path / "audit.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    snakemake(tiny_copy, "audit", configfiles=(conf,))
    table = io.read_parquet(tiny_copy / "results/audit/reexecution.parquet")
    variants = yaml.safe_load(TINY.read_text())["variants"]
    assert len(table) == (3 + len(variants)) * 2 * len(layout.TRAIN_FILES)  # every training job
    assert (table["verdict"] == "match").all() and (table["mode"] == "exact").all()
    assert "0 missing, 0 changed" in (tiny_copy / "results/audit/reexecution.md").read_text()
    assert not (tiny_copy / "results/audit/scratch").exists()

    victim = tiny_copy / "results/train/exp1/relu/loss.parquet"
    df = io.read_parquet(victim)
    df.loc[0, "loss"] += 1.0
    io.write_parquet(df, victim, io.read_metadata(victim)["config"])
    # its job's log (which records what the job wrote) gone, so that the run's own check for
    # changed results (actflow.guard.edited) cannot trace it: the audit must find it by itself
    (tiny_copy / "results/logs/train/exp1/relu.log").unlink()
    tampered = _sha(victim)
    proc = snakemake(tiny_copy, "audit", "--forcerun", "reexecute", "--allowed-rules",
                     "reexecute", "audit", configfiles=(conf,), check=False)
    # a failed audit fails the run, naming the file
    assert proc.returncode != 0
    assert ("the re-execution audit failed: 2 file(s) differ from the manifest: "
            "results/train/exp1/relu/loss.parquet (changed)") in proc.stdout + proc.stderr
    table = io.read_parquet(tiny_copy / "results/audit/reexecution.parquet")
    bad = table[table["verdict"] != "match"]
    # verify (every output) names it, and the retrained job differs from it
    assert list(zip(bad["job"], bad["file"], bad["verdict"])) == [
        ("(every output)", "results/train/exp1/relu/loss.parquet", "changed"),
        ("results/train/exp1/relu", "loss.parquet", "mismatch")]
    assert _sha(victim) == tampered  # the audit never overwrites results
    md = (tiny_copy / "results/audit/reexecution.md").read_text()
    assert "2 mismatch" in md and "1 changed" in md


def test_the_summary_counts_what_the_claims_table_says_and_renders_as_plain_rst(tiny_run):
    from docutils.core import publish_parts

    from actflow import summary

    claims = io.read_parquet(tiny_run / layout.AUDIT["claims_parquet"])
    sens = io.read_parquet(tiny_run / layout.AUDIT["sensitivity_parquet"])
    manifest = json.loads((tiny_run / layout.AUDIT["manifest"]).read_text())
    f = summary.facts(claims, sens, manifest)
    assert sum(c["claims"] for c in f["counts"]) == len(claims) == f["total"]
    for verdict in summary.ORDER:
        assert sum(c[verdict] for c in f["counts"]) == (claims["verdict"] == verdict).sum()
    assert [c for c, *_ in f["failing"]] == list(claims.loc[claims["verdict"] == "does not hold",
                                                             "claim"])
    assert {c for c, *_ in f["variants"]} == set(claims.loc[claims["differs_under"].fillna("")
                                                            != "", "claim"])
    md = (tiny_run / layout.SUMMARY).read_text()
    assert md == summary.markdown(f) and manifest["cpu"] in md
    html = publish_parts((tiny_run / layout.FRONT_PAGE).read_text(), writer="html")["body"]
    assert "system-message" not in html and "What this run found." in html
    assert html.count("<table") == 1
    # the front page does not grow with the findings: Snakemake's report centres it, and a
    # page taller than the window loses its top out of reach of the scroll bar
    one = ("c", "s", "1 [0, 2]", "< 0")
    few = f | {"failing": [one], "variants": [("c", "holds", "v")], "depends": []}
    many = f | {"failing": [one] * 60, "variants": [("c", "holds", "v")] * 60,
                "depends": [("c", "holds", "2 holds")] * 60}
    assert len(summary.rst(many, "d")) < len(summary.rst(few, "d")) + 400
