"""The registries are the one source of each name; every derived copy is checked against them."""

import inspect
import subprocess
import sys

import pytest

from actflow import figures as figreg
from actflow import layout
from conftest import ROOT


def test_each_figure_entry_matches_its_plotting_function():
    from actflow import plotting

    # numbered 1 … n in order; a figure in parts numbered 12a, 12b, … in order
    numbers = [str(f.number) for f in figreg.FIGURES.values()]
    whole = list(dict.fromkeys(int(n.rstrip("abcdefgh")) for n in numbers))
    assert whole == list(range(1, len(whole) + 1)), numbers
    for n in whole:
        parts = [m.removeprefix(str(n)) for m in numbers if int(m.rstrip("abcdefgh")) == n]
        assert parts == [""] or parts == list("abcdefgh"[:len(parts)]), (n, parts)
    for name, fig in figreg.FIGURES.items():
        fn = getattr(plotting, fig.plotter)
        params = list(inspect.signature(fn).parameters)
        # its tables by keyword, its options, then optionally the study's numbers
        # (claims.study_values)
        assert [p for p in params if p not in ("study", "settings")] == list(fig.tables) + list(
            fig.options), name
        assert fig.settings == ("settings" in params), name
        assert fig.experiment in layout.CATEGORIES
        text = fig.caption_for(SETTINGS)
        assert text.startswith(f"**Figure {fig.number}. {fig.title}.** ") and "{" not in text
        for path in fig.tables.values():
            rel = path.removeprefix("results/")
            assert layout.table_columns(rel) is not None or path in layout.AUDIT.values(), \
                f"{name} reads {path}: no such table"


SETTINGS = {"exp1": {"hidden_layers": 7, "epochs": 99, "optimizer": "sgd", "learning_rate": 0.5},
            "exp2": {"learning_rate": 0.25}, "exp3": {"hidden_layers": 3, "width": 16},
            "neurons": {"show_layers": "1 and 7"}, "variant_list": "v1: lr=0.1"}


def test_captions_take_settings_from_the_config_not_literals():
    text = " ".join(f.caption_for(SETTINGS) for f in figreg.FIGURES.values())
    assert "7 hidden layers" in text and "learning rate 0.5" in text and "0.25" in text
    assert "3 hidden layers of 16 units" in text
    for literal in ("10 hidden", "10-layer", "lr 0.001", "5 hidden", "full-batch Adam"):
        assert literal not in text


def test_every_registered_table_is_documented_in_its_own_section():
    docs = (ROOT / "docs" / "outputs.md").read_text()
    for table in list(layout.TABLES.values()) + [layout.ACTIVATION_CURVES]:
        assert f"`{table.name}.parquet`" in docs or f"/{table.name}.parquet`" in docs, table.name
        for col in table.columns:
            assert f"`{col}`" in docs, (table.name, col)


def test_every_figure_and_every_audit_column_is_documented():
    from actflow import claims

    docs = (ROOT / "docs" / "outputs.md").read_text()
    for name in figreg.FIGURES:
        assert f"`{name}`" in docs, name
    for col in claims.COLUMNS + claims.SENSITIVITY_COLUMNS:
        assert f"`{col}`" in docs, col


def test_every_column_a_claim_reads_has_a_unit():
    from actflow import claims

    for c in claims.load(ROOT / "config" / "claims.yaml"):
        if c.get("kind") != "winner":
            assert c["column"] in layout.COLUMN_UNITS, (c["id"], c["column"])
        assert claims.unit_of(c), c["id"]


@pytest.mark.slow
def test_figure_jobs_and_the_snakefile_s_registries_never_import_torch():
    code = ("import sys; sys.path.insert(0, 'workflow/scripts'); "
            "import actflow.plotting, actflow.figures, actflow.layout, actflow.activations, "
            "actflow.config, actflow.codedeps; "
            "bad = [m for m in ('torch',) if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_formats_after_the_first_reuse_its_layout_and_keep_the_tight_box(tmp_path):
    """plotting.save lays a figure out once and saves every format with that layout and tight
    bounding box: the PNG's size and the PDF's page equal those matplotlib computes on its own,
    a legend outside the axes included."""
    import re

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from actflow import plotting

    def figure():
        plotting.style()
        fig, axes = plt.subplots(1, 2, figsize=(6, 3))
        for ax in axes:
            ax.plot([0, 1], [0, 10 ** 4], label="a long label for the legend")
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle("a title")
        return fig

    def page(path):
        box = re.search(rb"MediaBox \[ ?([0-9. ]+) ?\]", path.read_bytes()).group(1).split()
        return [float(v) for v in box]

    plotting.save(figure(), {"png": tmp_path / "a.png", "pdf": tmp_path / "a.pdf"}, dpi=80)
    plain = figure()
    plain.savefig(tmp_path / "b.png", format="png", dpi=80, metadata={"Software": None})
    plain.savefig(tmp_path / "b.pdf", format="pdf", dpi=80, metadata={"CreationDate": None})
    plt.close(plain)
    from PIL import Image

    assert Image.open(tmp_path / "a.png").size == Image.open(tmp_path / "b.png").size
    ours, theirs = page(tmp_path / "a.pdf"), page(tmp_path / "b.pdf")
    assert theirs[2] > 6 * 72  # the legend outside the axes widened the tight box
    assert all(abs(a - b) < 2 for a, b in zip(ours, theirs)), (ours, theirs)


def test_figure_7_draws_the_study_numbers_of_the_claims_file(tiny_run):
    """Figure 7's dotted marks are the claims file's numbers (claims.study_values), not numbers
    of its own: the study's file gives ReLU 6.6 % and Leaky ReLU 0 %; another value is drawn."""
    import matplotlib.pyplot as plt

    from actflow import claims, io, plotting

    study = claims.study_values(claims.load(ROOT / "config" / "claims.yaml"), 7)
    overall = {s["filter"]["activation"]: s["value"] for s in study
               if "layer" not in s["filter"] and s["filter"].get("definition") == "zero"}
    assert overall == {"relu": 0.066, "leaky_relu": 0.0}
    tables = {kw: io.read_parquet(tiny_run / p)
              for kw, p in figreg.FIGURES["fig7_dead_neurons"].tables.items()}
    changed = [s | {"value": 0.5} if s["filter"].get("activation") == "relu" else s for s in study]
    fig = plotting.fig7_dead_neurons(**tables, study=changed)
    labels = [t.get_text() for ax in fig.axes for t in (ax.get_legend().get_texts()
                                                        if ax.get_legend() else [])]
    plt.close(fig)
    assert any(t.startswith("the study:") and "ReLU 50 %" in t and "6.6" not in t
               for t in labels), labels


def test_the_readme_figure_is_a_fresh_draw_of_its_registry_figure(tmp_path):
    """The README shows one figure, analytic (no run behind it); the committed picture must be
    what `make readme-figure` draws now from the default configuration, and the README must
    show it."""
    import matplotlib.image as mpimg
    import numpy as np

    from actflow import figures, jobs

    assert figures.README_FIGURE in figures.FIGURES
    assert f"]({figures.README_FIGURE_PATH})" in (ROOT / "README.md").read_text()
    fresh = tmp_path / "fresh.png"
    jobs.readme_figure(fresh, ROOT / "config" / "config.yaml")
    committed = mpimg.imread(ROOT / figures.README_FIGURE_PATH)
    drawn = mpimg.imread(fresh)
    assert committed.shape == drawn.shape, "the README's figure changed size: run make readme-figure"
    differing = float((np.abs(committed - drawn) > 1 / 255).any(axis=-1).mean())
    assert differing < 1e-3, (f"{differing:.2%} of the README figure's pixels differ from a fresh "
                              "draw: run make readme-figure and commit docs/img")


def test_the_suite_s_longest_files_exist():
    """conftest.LONGEST_FILES orders the suite: a renamed or removed file must not linger there."""
    from conftest import LONGEST_FILES

    assert len(set(LONGEST_FILES)) == len(LONGEST_FILES)
    assert [n for n in LONGEST_FILES if not (ROOT / "tests" / n).is_file()] == []


@pytest.mark.parametrize("lo, hi", [(-0.15, 3000.0), (-30.0, 150.0), (0.0, 25.0), (-2.0, 2.0)])
def test_asinh_axis_ticks_keep_zero_and_never_crowd_it(lo, hi):
    """Figure 8's asinh axes (a long tail of activation values): matplotlib's AsinhLocator puts
    ±10⁻¹ right beside 0, where their labels overlapped; the figure's ticks keep 0 and leave
    a gap of at least ``min_gap`` (12 %) of the axis between any two."""
    import matplotlib.ticker
    import numpy as np

    from actflow import plotting

    lw = 0.1
    ticks = plotting._asinh_ticks(lw, lo, hi).tick_values(lo, hi)
    pos = np.arcsinh(np.asarray(ticks) / lw)
    min_gap = inspect.signature(plotting._asinh_ticks).parameters["min_gap"].default
    gap = min_gap * (np.arcsinh(hi / lw) - np.arcsinh(lo / lw))
    assert 0 in ticks and len(ticks) >= 2 and all(lo <= t <= hi for t in ticks)
    assert np.all(np.diff(pos) >= gap - 1e-12), ticks
    if lo < -0.1 and hi > 1000:  # the case of the overlap: matplotlib's own ticks crowd 0
        own = matplotlib.ticker.AsinhLocator(lw, numticks=5, base=10).tick_values(lo, hi)
        own_pos = np.arcsinh(np.asarray([t for t in own if lo <= t <= hi]) / lw)
        assert np.min(np.diff(own_pos)) < gap
