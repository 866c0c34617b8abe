"""What the audit certifies is what is on disk, and no finished result is lost to a bad rerun.

Each case is one of the faults an adversarial user found (issue #13): the finished tiny run is
hashed before and after, and everything the case does not change on purpose must be identical.
"""

import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from actflow import audit, io, layout
from conftest import ROOT, SNAKEMAKE, TINY, copy_workflow, planned_jobs, snakemake

PY = [sys.executable, "-m"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "workflow" / "scripts"))


def _hashes(wd):
    return {str(p.relative_to(wd)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((wd / "results").rglob("*")) if p.is_file()
            and not str(p.relative_to(wd)).startswith(layout.UNCERTIFIED_DIRS)}


def _hashes_but_timings(wd):
    return {k: v for k, v in _hashes(wd).items() if not layout.is_timed(k)}


def _config(tmp_path, text):
    f = tmp_path / "extra.yaml"
    f.write_text(text)
    return (TINY, f)


def _flip_a_bit_keeping_mtime(path):
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _verify(wd):
    proc = subprocess.run(PY + ["actflow.audit", "verify"], cwd=wd, env=ENV, capture_output=True,
                          text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _named_lost(out: str) -> tuple[int, set[str]]:
    """How many results a failed run's last message says are gone, and those it names (the
    first ten; common.smk run_failed)."""
    line = next(ln for ln in out.splitlines() if "that the manifest certified are gone" in ln)
    count = int(line.split(" result(s) that", 1)[0].split()[-1])
    named = line.split("that failed): ", 1)[1].split(". Fix the cause", 1)[0]
    return count, set(named.removesuffix(" and more (make verify lists all)").split(", "))


def test_a_job_that_fails_after_it_started_names_what_snakemake_deleted(tiny_copy, tmp_path):
    """A config that passes validation but fails inside training (here: out of memory under an
    address-space limit, as on a smaller node): Snakemake deletes the old outputs of the jobs it
    reruns before it starts them. The workflow does not put them back behind Snakemake's back;
    the failed run names every one, with the two ways to rebuild them, and nothing else is
    touched."""
    before = _hashes(tiny_copy)
    big = _config(tmp_path, "exp1: {width: 8000}\ntrain: {mem_mb: 9000}\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3_500_000_000, 3_500_000_000))

    cmd = [SNAKEMAKE, "--cores", "2", "--configfile", *map(str, big)]
    proc = subprocess.run(cmd, cwd=tiny_copy, capture_output=True, text=True, preexec_fn=limit)
    out = proc.stdout + proc.stderr
    logs = "".join(p.read_text() for p in (tiny_copy / "results/logs/train").rglob("*.log"))
    assert proc.returncode != 0 and "can't allocate memory" in logs, out[-3000:]
    lost = {k for k in before if not (tiny_copy / k).exists()}
    assert lost and {k.split("/")[2] for k in lost} <= {"exp1", "exp1_he"}  # the failed jobs'
    count, named = _named_lost(out)
    assert count == len(lost) and named <= lost and len(named) == min(10, len(lost))
    assert "make repair" in out
    assert {k: v for k, v in _hashes(tiny_copy).items()} == {
        k: v for k, v in before.items() if k not in lost}
    code, text = _verify(tiny_copy)
    assert code == 1 and all(f"missing: {k}" in text for k in lost)


def test_under_the_database_persistence_a_failed_job_is_named_and_repair_restores_it(tiny_copy):
    """Snakemake's database persistence backend (``--persistence-backend db``): a training job
    forced to rerun fails (device: cuda on a machine without one); its deleted outputs are
    named, and make repair (the manifest's config) brings them back byte-identical."""
    every = set(_hashes(tiny_copy))
    before = _hashes_but_timings(tiny_copy)
    # Experiment 3's: the training job whose rebuild reruns the fewest jobs downstream
    target = layout.train_outputs("exp3", "relu")["weights"]
    proc = snakemake(tiny_copy, target, "--persistence-backend", "db", "--config", "device=cuda",
                     "--forcerun", "train", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    log = (tiny_copy / "results/logs/train/exp3/relu.log").read_text()
    assert "sees no CUDA device" in log and "set device: auto or cpu" in log
    lost = {k for k in every if not (tiny_copy / k).exists()}
    assert target in lost and _named_lost(out) == (len(lost), lost)
    assert lost == {str(Path(target).parent / f) for f in layout.TRAIN_FILES.values()}
    repair = PY + ["actflow.audit", "repair", "--snakemake", SNAKEMAKE, "--cores", "2"]
    proc = subprocess.run(repair, cwd=tiny_copy, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = _hashes_but_timings(tiny_copy)
    manifests = (layout.AUDIT["manifest"], layout.AUDIT["manifest_html"])
    assert {k: v for k, v in after.items() if k not in manifests} == {
        k: v for k, v in before.items() if k not in manifests}


def test_verify_names_a_deleted_a_bit_flipped_and_an_unlisted_file(tiny_copy):
    code, out = _verify(tiny_copy)
    assert code == 0 and "match the manifest" in out, out
    (tiny_copy / layout.sine_data()).unlink()
    _flip_a_bit_keeping_mtime(tiny_copy / layout.train_outputs("exp2", "relu")["loss"])
    (tiny_copy / "results/metrics/exp1/extra.parquet").write_bytes(b"PAR1")
    code, out = _verify(tiny_copy)
    assert code == 1
    assert f"missing: {layout.sine_data()}" in out
    assert "changed: results/train/exp2/relu/loss.parquet" in out
    assert "unlisted: results/metrics/exp1/extra.parquet" in out
    assert "make repair" in out


def test_repair_rebuilds_a_deleted_intermediate_whose_downstream_files_exist(tiny_copy):
    """Snakemake alone says 'Nothing to be done' here; repair rebuilds it and what depends on
    it, byte-identical to the certified run (but the wall-clock timings, layout.TIMED_FILES:
    Experiment 3's, which no table reads, so that every other file must come back the same;
    its training job also has the fewest jobs downstream)."""
    before = _hashes(tiny_copy)
    for p in (tiny_copy / layout.train_dir("exp3", "relu")).iterdir():
        p.unlink()
    assert planned_jobs(tiny_copy) == {}  # what the issue found
    # no --configfile: repair follows the tiny config the manifest recorded, not the default
    proc = subprocess.run(PY + ["actflow.audit", "repair", "--snakemake", SNAKEMAKE, "--cores",
                                "2"], cwd=tiny_copy, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "repairing with the config the manifest recorded" in proc.stdout
    assert f"rebuilding {len(layout.TRAIN_FILES)} file(s)" in proc.stdout
    assert _verify(tiny_copy)[0] == 0
    after = _hashes_but_timings(tiny_copy)
    manifests = (layout.AUDIT["manifest"], layout.AUDIT["manifest_html"])  # list the timings' hashes
    assert after == {k: v for k, v in before.items() if not layout.is_timed(k)
                     and k not in manifests} | {k: after[k] for k in manifests}


def test_a_bit_flip_with_its_mtime_kept_stops_the_run_before_a_job_reads_it(tiny_copy):
    victim = tiny_copy / layout.train_outputs("exp1", "relu")["loss"]
    _flip_a_bit_keeping_mtime(victim)
    before = _hashes(tiny_copy)
    rerun = _config(tiny_copy, "outcomes: {collapse_rtol: 0.03}\n")  # history tables recomputed
    assert planned_jobs(tiny_copy, configfiles=rerun)["history_metrics"] == 4  # every sine variant
    proc = snakemake(tiny_copy, "--workflow-profile", "none", configfiles=rerun, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "changed since the manifest certified them" in out and str(victim.relative_to(
        tiny_copy)) in out and "No job has read them" in out
    assert "rule history_metrics" not in out
    assert _hashes(tiny_copy) == before


def test_the_manifest_refuses_to_certify_a_file_that_does_not_read_back(tiny_copy, cold_run,
                                                                         tmp_path):
    doc = json.loads((tiny_copy / layout.AUDIT["manifest"]).read_text())
    pdf = cold_run / "results/figures/fig4_gradient_ratio.pdf"  # the tiny run makes PNGs only
    assert audit.unreadable(pdf) is None
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(pdf.read_bytes()[: pdf.stat().st_size // 2])
    assert "not a complete PDF" in audit.unreadable(cut)
    os.chdir(tiny_copy)
    try:
        png = "results/figures/fig1_activations.png"
        cases = {png: b"", "results/metrics/loss.parquet": b"PAR1 not really",
                 layout.train_outputs("exp1", "relu")["weights"]: b"\x00" * 64}
        for path, content in cases.items():
            good = (tiny_copy / path).read_bytes()
            (tiny_copy / path).write_bytes(content)
            with pytest.raises(audit.UncertifiableError, match=f"{path}: "):
                audit.manifest(list(doc["files"]), doc["config"], ROOT, tmp_path / "m.json",
                               tmp_path / "c.yaml")
            (tiny_copy / path).write_bytes(good)
        data = bytearray((tiny_copy / png).read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, damaged image data
        (tiny_copy / png).write_bytes(bytes(data))
        assert "PNG" in audit.unreadable(tiny_copy / png)
        with pytest.raises(audit.UncertifiableError, match="PNG"):
            audit.manifest([png], {}, ROOT, tmp_path / "m.json", tmp_path / "c.yaml")
    finally:
        os.chdir(ROOT)


def test_the_manifest_decodes_only_files_that_are_not_their_job_s_bytes(tiny_copy, tmp_path,
                                                                        monkeypatch):
    """A file with the SHA-256 its job's log records is certified without being decoded again;
    one rewritten since (here the same table, readable, in other bytes) is decoded and named."""
    import pyarrow.parquet as pq

    doc = json.loads((tiny_copy / layout.AUDIT["manifest"]).read_text())
    rewritten = "results/metrics/loss.parquet"
    pq.write_table(pq.read_table(tiny_copy / rewritten), tiny_copy / rewritten,
                   compression="gzip")
    decoded = []
    real = audit.unreadable
    monkeypatch.setattr(audit, "unreadable", lambda f: decoded.append(str(f)) or real(f))
    os.chdir(tiny_copy)
    try:
        from actflow import guard

        records = guard.recorded(".")
        with pytest.raises(audit.UncertifiableError,
                           match=f"{rewritten}: changed since its job wrote it"):
            audit.manifest(list(doc["files"]), doc["config"], ROOT, tmp_path / "m.json",
                           tmp_path / "c.yaml")
        assert decoded == [f for f in doc["files"] if f not in records or f == rewritten]
        assert len(decoded) < len(doc["files"]) / 10
        decoded.clear()
        kept = [f for f in doc["files"] if f != rewritten]
        certified = audit.manifest(kept, doc["config"], ROOT, tmp_path / "m.json",
                                   tmp_path / "c.yaml")
        assert decoded == [f for f in kept if f not in records]
        assert certified["files"] == {f: doc["files"][f] for f in kept}
    finally:
        os.chdir(ROOT)


def test_weights_of_another_experiment_are_refused_naming_both_and_a_run_rebuilds_them(tiny_copy):
    """Weights of another job copied over a finished one: a reader that expects this job's
    refuses them, naming both; the next run finds the copy (its job's log records another
    SHA-256), sets it aside and rebuilds the file, and nothing else changes."""
    before = _hashes_but_timings(tiny_copy)
    src = tiny_copy / layout.train_outputs("exp1", "relu")["weights"]
    # over Experiment 3's: the job whose rebuild reruns the fewest jobs downstream
    dst = tiny_copy / layout.train_outputs("exp3", "relu")["weights"]
    _, _, expect = io.load_weights(dst)
    dst.write_bytes(src.read_bytes())
    with pytest.raises(io.DamagedFileError, match="holds weights of another job "
                       "\\(experiment: the file holds 'exp1', the job expects 'exp3'"):
        io.load_weights(dst, expect={k: expect[k] for k in ("experiment", "variant",
                                                              "activation")})
    proc = snakemake(tiny_copy)
    rel = str(dst.relative_to(tiny_copy))
    assert f"{rel} changed after the job that wrote it" in proc.stdout + proc.stderr
    manifests = (layout.AUDIT["manifest"], layout.AUDIT["manifest_html"])  # list the timings
    after = {k: v for k, v in _hashes_but_timings(tiny_copy).items() if k not in manifests}
    assert after == {k: v for k, v in before.items() if not layout.is_timed(k)
                     and k not in manifests}


def test_a_failed_manifest_job_keeps_the_previous_manifest_and_repair_recovers(tiny_copy):
    """A 0-byte figure the run cannot trace to its job: the manifest job refuses it and fails;
    the previous manifest stays (its outputs are update()), so that verify names the figure and
    repair rebuilds it (also without any manifest)."""
    manifest = tiny_copy / layout.AUDIT["manifest"]
    previous = manifest.read_bytes()
    png = tiny_copy / "results/figures/fig1_activations.png"
    good = png.read_bytes()
    # without its job's log (which records what the job wrote, so that a run would set the
    # file aside and redraw it), the damage reaches the manifest job
    (tiny_copy / layout.log("figures/fig1_activations")).unlink()
    png.write_bytes(b"")
    proc = snakemake(tiny_copy, check=False)
    assert proc.returncode != 0
    assert manifest.read_bytes() == previous
    code, out = _verify(tiny_copy)
    assert code == 1 and "changed: results/figures/fig1_activations.png" in out
    repair = PY + ["actflow.audit", "repair", "--snakemake", SNAKEMAKE, "--cores", "2"]
    proc = subprocess.run(repair, cwd=tiny_copy, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert png.read_bytes() == good and _verify(tiny_copy)[0] == 0
    manifest.unlink()  # no manifest at all: repair rebuilds what Snakemake finds missing
    proc = subprocess.run(repair + ["--", "--configfile", str(TINY)], cwd=tiny_copy, env=ENV,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "repairing without one" in proc.stdout and _verify(tiny_copy)[0] == 0


def test_weights_trained_on_other_data_are_refused_naming_the_data(tiny_copy, tmp_path):
    """Weights of the same job trained on another noise draw (as with another data.seed) copied
    over a finished run's: the weights' identity holds the training data's SHA-256."""
    from actflow import jobs

    folder = (tiny_copy / layout.train_outputs("exp2", "relu")["weights"]).parent
    files = {n: folder / f for n, f in layout.TRAIN_FILES.items()}
    spec = jobs.TrainSpec.of_outputs(files["loss"])
    data = io.read_parquet(tiny_copy / spec.data)
    other = tmp_path / "other_draw.parquet"
    io.write_parquet(data.assign(y=data["y"] + 0.01), other, {})
    out = {n: str(tmp_path / "other" / f) for n, f in layout.TRAIN_FILES.items()}
    jobs.train_job(dataclasses.replace(spec, data=str(other), device="cpu"), out)
    # what a reader of this job's weights expects, from its own data file
    ident = jobs.weights_identity(spec.keys, spec.seeds, spec.hp,
                                  io.sha256(tiny_copy / spec.data), spec.targets)
    with pytest.raises(io.DamagedFileError,
                       match=r"holds weights of another job \(data_sha256: the file holds"):
        io.load_weights(out["weights"], expect=ident)
    io.load_weights(files["weights"], expect=ident)  # the job's own weights are accepted


@pytest.mark.slow
@pytest.mark.parametrize("where", ["results", "results/logs/metrics"])
def test_a_file_where_the_workflow_needs_a_folder_is_named(tmp_path, where):
    wd = copy_workflow(tmp_path / "wf")
    (wd / where).parent.mkdir(parents=True, exist_ok=True)
    (wd / where).write_text("not a folder")
    proc = snakemake(wd, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{where} is a file, but the workflow writes into a folder of that name" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("results", ["file", "none"])
def test_verify_without_a_run_folder_says_so_in_one_line(tmp_path, monkeypatch, capsys, results):
    monkeypatch.chdir(tmp_path)
    if results == "file":
        (tmp_path / layout.RESULTS).write_text("not a folder")
    assert audit.main(["verify"]) == 2
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "Traceback" not in out
    assert ("results is a file, not the folder of a run" if results == "file"
            else "does not exist: run the workflow first") in out


def test_outputs_of_removed_variants_are_named_so_and_clean_stale_removes_them(tmp_path,
                                                                               monkeypatch,
                                                                               capsys):
    """A manifest whose config has one variant, and results of another that was removed."""
    monkeypatch.chdir(tmp_path)
    kept, gone = "results/train/exp2_sgd/relu/loss.parquet", "results/train/exp2_old/relu/loss.parquet"
    for rel in (kept, gone, "results/metrics/exp2_old/dead_neurons.parquet",
                "results/metrics/exp2/extra.parquet"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    doc = {"files": {kept: {"bytes": 1, "sha256": io.sha256(tmp_path / kept)}},
           "config": {"variants": [{"name": "exp2_sgd", "of": "exp2"}]}}
    (tmp_path / layout.AUDIT["manifest"]).parent.mkdir(parents=True)
    (tmp_path / layout.AUDIT["manifest"]).write_text(json.dumps(doc))
    assert audit.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "2 outputs of variants no longer in the config (exp2_old):" in out
    assert "unlisted: results/metrics/exp2/extra.parquet" in out  # not a removed variant's
    assert "make clean-stale" in out
    assert audit.main(["clean-stale"]) == 0
    assert not (tmp_path / "results/train/exp2_old").exists()
    assert not (tmp_path / "results/metrics/exp2_old").exists()
    assert (tmp_path / kept).is_file() and (tmp_path / "results/metrics/exp2/extra.parquet").is_file()


def test_a_full_disk_leaves_no_partial_file_and_says_so_in_one_line(tmp_path, monkeypatch):
    """ENOSPC in the middle of a write (injected: the write raises as a full disk does): the
    previous file at the final path is untouched, no temporary file stays, and the job's error
    is one line naming the file and what to do."""
    import errno

    final = tmp_path / "figures" / "fig.png"
    final.parent.mkdir()
    final.write_bytes(b"the finished figure")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(final))

    with pytest.raises(OSError) as err:
        with io.atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            full()
    assert final.read_bytes() == b"the finished figure"
    assert [p.name for p in final.parent.iterdir()] == ["fig.png"]
    line = io.disk_full_message(err.value)
    assert "\n" not in line and str(final) in line and "make repair" in line
    # the job's hook prints that line instead of a traceback
    import logging

    log = tmp_path / "job.log"
    handlers = logging.getLogger().handlers[:]
    io.setup_logging(str(log), log_modules=False)
    try:
        import contextlib
        import io as stdio

        buf = stdio.StringIO()
        with contextlib.redirect_stderr(buf):
            sys.excepthook(OSError, err.value, err.value.__traceback__)
        assert buf.getvalue().strip() == line
        assert "Traceback" in log.read_text()  # the whole story stays in the job's log
    finally:
        sys.excepthook = sys.__excepthook__
        logging.getLogger().handlers[:] = handlers
        import gc

        gc.enable()  # a job's set-up turns the collector off (io.setup_logging); pytest's stays on


def test_a_run_removes_the_temporary_files_a_killed_job_left(tiny_copy):
    left = [tiny_copy / "results/figures/.fig1_activations.png.0a1b2c3d.tmp",
            tiny_copy / "results/metrics/exp1/.loss_summary.parquet.deadbeef.tmp"]
    for p in left:
        p.write_bytes(b"")
    proc = snakemake(tiny_copy, "--forcerun", "summary")
    assert not any(p.exists() for p in left)
    assert "a temporary file a killed job left behind" in proc.stdout + proc.stderr


def test_a_result_edited_by_hand_is_named_set_aside_and_rebuilt_never_certified(tiny_copy):
    """claims.md with a verdict changed by hand: the next run names it, keeps the edit aside,
    rebuilds the file from the tables (byte-identical to the job's), and verify passes; the
    manifest job alone refuses an edited file."""
    rel = layout.AUDIT["claims_markdown"]
    md = tiny_copy / rel
    good = md.read_bytes()
    assert b"does not hold" in good
    edit = good.replace(b"does not hold", b"holds", 1)
    md.write_bytes(edit)
    os.chdir(tiny_copy)
    try:
        from actflow import guard

        assert set(guard.edited(".")) == {rel}
        with pytest.raises(audit.UncertifiableError, match=f"{rel}: changed since its job wrote it"):
            audit.manifest([rel], {}, ".", str(tiny_copy / "m.json"), str(tiny_copy / "c.yaml"))
    finally:
        os.chdir(ROOT)
    proc = snakemake(tiny_copy)
    out = proc.stdout + proc.stderr
    assert f"{rel} changed after the job that wrote it" in out and "the default target rebuilds it" in out
    assert md.read_bytes() == good
    assert (tiny_copy / ".snakemake/actflow/edited" / rel).read_bytes() == edit
    assert _verify(tiny_copy)[0] == 0
