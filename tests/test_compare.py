"""Comparing two runs (actflow.compare): bundles, the statistical comparison, bad bundles.

Real tiny runs: the session's tiny run (A), a run that differs only in its seeds (B), and a
copy of A rerun with another learning rate for Experiment 2 (C)."""

from __future__ import annotations

import hashlib
import html
import io as _io
import json
import os
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, copy_workflow, snakemake

from actflow import bundle, compare, layout


def _hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / layout.RESULTS).rglob("*")) if p.is_file()
            and not str(p.relative_to(root)).startswith(layout.UNCERTIFIED_DIRS)}


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """The tiny config with other seeds, bundled: independent samples of the same runs."""
    wd = copy_workflow(tmp_path_factory.mktemp("seeds"))
    other = wd / "seeds.yaml"
    other.write_text("seeds: [2, 3]\n")
    snakemake(wd, "bundle", configfiles=(TINY, other))
    return wd


@pytest.fixture(scope="module")
def own(tiny_run, tmp_path_factory):
    """A copy of the session's tiny run with its bundle (the reference for the tests below)."""
    dest = tmp_path_factory.mktemp("own") / "wf"
    shutil.copytree(tiny_run, dest, symlinks=True, copy_function=shutil.copy2)
    snakemake(dest, "bundle")
    return dest


def _compare(wd, other, configfiles=(TINY,), check=True):
    return snakemake(wd, "compare", "--config", f"compare_with={other}",
                     configfiles=configfiles, check=check)


def _read(wd):
    out = {k: wd / v for k, v in layout.COMPARISON.items()}
    return (pd.read_parquet(out["comparison_parquet"]),
            pd.read_parquet(out["comparison_claims"]),
            pd.read_parquet(out["comparison_settings"]),
            out["comparison_markdown"].read_text())


def test_bundle_holds_what_a_comparison_needs_with_checksums_and_is_reproducible(own):
    archive = own / layout.BUNDLE["archive"]
    line = (own / layout.BUNDLE["checksum"]).read_text().split()
    assert line == [hashlib.sha256(archive.read_bytes()).hexdigest(), "bundle.tar.gz"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile(f"{bundle.ROOT}/{bundle.INDEX}").read())
        assert names[0] == f"{bundle.ROOT}/{bundle.INDEX}"
        for rel, rec in index["files"].items():
            data = tar.extractfile(f"{bundle.ROOT}/{rel}").read()
            assert hashlib.sha256(data).hexdigest() == rec["sha256"] == hashlib.sha256(
                (own / layout.RESULTS / rel).read_bytes()).hexdigest()
    rels = set(index["files"])
    assert {"audit/manifest.json", "audit/claims.parquet", "audit/sensitivity.parquet",
            "metrics/runs.parquet", "metrics/exp1/loss_summary.parquet"} <= rels
    assert not any(r.endswith(".safetensors") for r in rels)  # no weights unless asked
    assert index["format"] == bundle.FORMAT and index["weights"] is False
    # packing again gives the same bytes
    again = own / "again.tar.gz"
    cwd = os.getcwd()
    try:
        os.chdir(own)
        bundle.make_bundle([f"{layout.RESULTS}/{r}" for r in index["files"]], again,
                            own / "again.sha256")
    finally:
        os.chdir(cwd)
    assert again.read_bytes() == archive.read_bytes()


def test_a_run_against_itself_is_identical_as_bundle_and_as_folder(own, tmp_path):
    archive = tmp_path / "self.tar.gz"
    shutil.copy(own / layout.BUNDLE["archive"], archive)
    shutil.copy(own / layout.BUNDLE["checksum"], tmp_path / "self.tar.gz.sha256")
    manifest = (own / layout.AUDIT["manifest"]).read_bytes()
    for other in (archive, own / layout.RESULTS):
        _compare(own, other)
        met, claims, settings, md = _read(own)
        assert len(met) > 20 and set(met["status"]) == {"identical"}
        assert set(claims["status"]) == {"same"} and len(claims) > 30
        assert not settings[settings["section"] == "config"]["differs"].any()
        assert "agree in every setting that changes results" in md
        # the Markdown and the HTML page are one document: the same sections, the same claims
        page = (own / layout.COMPARISON["comparison_html"]).read_text()
        headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
        assert len(headings) >= 5
        assert [h for h in headings if f"<h2>{html.escape(h)}</h2>" not in page] == []
        assert all(f"<td>{c}</td>" in page for c in claims["claim"])
        assert (own / layout.COMPARISON["comparison_pdf"]).read_bytes()[:4] == b"%PDF"
    # setting compare_with reruns nothing of the run itself: the manifest is untouched
    assert (own / layout.AUDIT["manifest"]).read_bytes() == manifest


def test_runs_differing_only_in_seeds_agree_statistically_and_differ_in_bytes(own, seeds_run):
    a, b = own / layout.RESULTS, seeds_run / layout.RESULTS
    runs = "metrics/runs.parquet"
    assert (a / runs).read_bytes() != (b / runs).read_bytes()
    _compare(own, seeds_run / layout.BUNDLE["archive"])
    met, claims, settings, md = _read(own)
    # every metric of every compared metric kind is there, none identical, none differs
    assert set(met["metric"]) == {m.name for m in compare.METRICS}
    assert "identical" not in set(met["status"]) and "differ" not in set(met["status"])
    assert (met["status"] == "agree").mean() > 0.8, met["status"].value_counts()
    assert met.loc[met["status"] == "agree", "p_holm"].ge(compare.ALPHA).all()
    # 2 seeds: wide intervals, kept inside what each value can take (a fraction in [0, 1])
    fractions = met[met["metric"].str.endswith("_fraction")]
    assert len(fractions) > 10 and (fractions["mean_a"] >= 0).all()
    for side in ("a", "b"):
        assert fractions[f"ci_low_{side}"].between(0, 1).all()
        assert fractions[f"ci_high_{side}"].between(0, 1).all()
    assert (met.loc[met["metric"] == "effective_rank", "ci_low_a"] >= 0).all()
    changed = settings[settings["differs"] & (settings["section"] == "config")]
    assert list(changed["setting"]) == ["seeds"] and not changed["changes_results"].any()
    assert "different seeds ([0, 1] in A, [2, 3] in B)" in md
    assert "agree in every setting that changes results" in md
    assert set(claims["status"]) <= {"same", "differs"}


def test_a_changed_learning_rate_is_named_first_and_localised(own, tmp_path):
    wd = tmp_path / "lr"
    shutil.copytree(own, wd, symlinks=True, copy_function=shutil.copy2)
    lr = tmp_path / "lr.yaml"
    lr.write_text("exp2:\n  learning_rate: 0.02\n")
    _compare(wd, own / layout.BUNDLE["archive"], configfiles=(TINY, lr))
    met, claims, settings, md = _read(wd)
    first = settings.iloc[0]
    assert (first["setting"], first["value_a"], first["value_b"]) == ("exp2.learning_rate",
                                                                      "0.02", "0.1")
    assert first["differs"] and first["changes_results"]
    # the Markdown says so before anything else
    body = md.split("## Summary")[0]
    assert "differ in settings that change results" in body and "exp2.learning_rate" in body
    # Experiment 2 and its variants (exp2_sgd derives from it) changed; nothing else did
    exp2 = met["experiment"] == "exp2"
    continuous = exp2 & met["metric"].isin(["final_loss", "gradient_ratio", "effective_rank"])
    assert continuous.sum() >= 12 and (met.loc[continuous, "status"] != "identical").all()
    assert (met.loc[continuous, "difference"] != 0).all()
    assert (met.loc[~exp2, "status"] == "identical").all()
    # make show WITH=… lists the same findings in the terminal
    from actflow import show

    text = show.render(show.differences(wd / layout.RESULTS), 300)
    n_differ = int((met["status"] == "differ").sum())
    assert f"Metrics that differ beyond the seed spread ({n_differ} of {len(met)})" in text
    assert "exp2.learning_rate" in text.split("Settings and machines that differ")[1]


def _bad_bundles(good, tmp):
    truncated = tmp / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        data = b"not a run\n"
        info = tarfile.TarInfo("notes/readme.txt")
        info.size = len(data)
        tar.addfile(info, _io.BytesIO(data))
    sidecar = tmp / "sidecar.tar.gz"
    shutil.copy(good, sidecar)
    (tmp / "sidecar.tar.gz.sha256").write_text("0" * 64 + "  sidecar.tar.gz\n")
    # a member changed after packing, the archive re-made around it (no sidecar to catch it)
    member = tmp / "member.tar.gz"
    with tarfile.open(good) as src, tarfile.open(member, "w:gz") as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read()
            if info.name.endswith("metrics/runs.parquet"):
                data = data[:-20] + bytes(20)
            dst.addfile(info, _io.BytesIO(data))
    return {truncated: "damaged, truncated", foreign: "not a bundle of this workflow",
            sidecar: "differs from the one in sidecar.tar.gz.sha256",
            member: "member metrics/runs.parquet is missing or differs from the SHA-256",
            tmp / "missing.tar.gz": "does not exist"}


def test_damaged_or_foreign_bundles_are_refused_before_any_job_and_write_nothing(own, tmp_path):
    bad = _bad_bundles(own / layout.BUNDLE["archive"], tmp_path)
    # each bad bundle, through the check the Snakefile runs when it is read (compare.check)
    for path, words in bad.items():
        with pytest.raises(bundle.BundleError) as err:
            compare.check(path)
        assert words in str(err.value) and str(path) in str(err.value), (path, err.value)
    # and one through Snakemake: refused before the DAG, a finished comparison untouched
    _compare(own, own / layout.BUNDLE["archive"])
    before = _hashes(own)
    for path in (tmp_path / "truncated.tar.gz", tmp_path / "member.tar.gz"):
        proc = _compare(own, path, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, path
        assert bad[path] in out and str(path) in out, (path, out[-800:])
        assert "Building DAG" not in out  # refused when the workflow was read
    assert _hashes(own) == before


def test_compare_without_another_run_says_how_to_give_one(tiny_copy):
    proc = snakemake(tiny_copy, "compare", "--dry-run", check=False)
    assert proc.returncode != 0
    assert "compare_with=path/to/bundle.tar.gz" in proc.stdout + proc.stderr


def test_a_folder_whose_tables_changed_after_its_manifest_is_refused(own, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(own / layout.RESULTS, other)
    runs = other / "metrics" / "runs.parquet"
    runs.write_bytes(runs.read_bytes()[:-8] + bytes(8))
    with pytest.raises(bundle.BundleError, match="differs from what its manifest certifies"):
        bundle.open_run(other, verify=compare.needed_files())


def _welch_by_hand(a, b) -> float:
    """The hand-written Welch test compare.py had before it called SciPy (the reference that
    shows the change kept every p-value)."""
    from scipy.special import stdtr

    na, nb = len(a), len(b)
    va, vb = np.var(a, ddof=1) / na, np.var(b, ddof=1) / nb
    t = (np.mean(b) - np.mean(a)) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / ((va**2 / (na - 1) if va else 0) + (vb**2 / (nb - 1) if vb else 0))
    return float(2 * stdtr(dof, -abs(t)))


@pytest.mark.filterwarnings("error::RuntimeWarning")  # SciPy's on a side without spread
def test_welch_and_holm_match_the_hand_written_test_and_the_definition():
    rng = np.random.default_rng(0)
    for n_a, n_b in [(5, 4), (2, 2), (20, 3), (10, 10)]:
        for _ in range(10):
            a, b = rng.normal(0, 1, n_a), rng.normal(rng.normal(), rng.uniform(0.1, 3), n_b)
            assert compare._welch(a, b) == pytest.approx(_welch_by_hand(a, b), rel=1e-9)
    spread_on_one_side = (np.ones(3), np.array([1.0, 2.0, 4.0]))
    assert compare._welch(*spread_on_one_side) == pytest.approx(_welch_by_hand(*spread_on_one_side))
    assert compare._welch(np.ones(3), np.ones(3)) == 1.0
    assert compare._welch(np.ones(3), np.full(3, 2.0)) == 0.0
    assert np.isnan(compare._welch(np.ones(1), np.ones(3)))
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    # Holm: sorted p times (m - rank), running maximum, capped at 1
    np.testing.assert_allclose(compare.holm(p), [0.04, 0.09, np.nan, 0.09, 0.2])


def test_the_report_shows_the_comparison_table_and_figure(own, seeds_run):
    from test_report import ARGS, CHROMIUM

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    other = f"compare_with={seeds_run / layout.BUNDLE['archive']}"
    _compare(own, seeds_run / layout.BUNDLE["archive"])
    snakemake(own, "--report", "results/report.html", "--config", other)
    report = own / "results/report.html"
    category = layout.CATEGORIES["comparison"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def row(name):
            page.goto(report.as_uri())
            page.get_by_text(category).click()
            return page.locator("tr").filter(has=page.get_by_role("cell", name=name, exact=True))

        row("comparison table").locator("a[iconname=eye]").click()
        page.wait_for_timeout(1000)
        text = " ".join(f.inner_text("body") for f in page.frames if f != page.main_frame)
        assert "Claims whose verdicts differ" in text and "Settings and machines" in text
        assert "different seeds" in text
        row("comparison figure").locator("a[iconname=eye]").click()
        img = page.locator("img[src*='comparison.']")
        img.wait_for(timeout=10_000)
        assert img.evaluate("i => i.naturalWidth") > 100
        browser.close()
