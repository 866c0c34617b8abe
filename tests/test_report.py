"""The HTML report, rendered in headless Chromium: figures by experiment and the claims table."""

import os
import shutil

import pytest

from actflow import claims as claimreg
from actflow import figures as figreg
from actflow import io, layout
from conftest import snakemake

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (make test installs it when run as root)")


def test_report_shows_every_figure_and_the_claims_table(tiny_copy, tmp_path):
    from playwright.sync_api import sync_playwright

    snakemake(tiny_copy, "--report", "results/report.html")
    report = tiny_copy / "results/report.html"
    assert report.stat().st_size > 100_000
    categories = {}
    for f in figreg.FIGURES.values():
        categories.setdefault(figreg.category(f.name), []).append(f)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        def row(name):
            return page.locator("tr").filter(has=page.get_by_role("cell", name=name, exact=True))

        def row_of(category, name):  # the report opened anew, at that category's list
            page.goto(report.as_uri())
            page.get_by_text(category).click()
            return row(name)

        # the front page opens on the run's findings (rule summary), as a table
        page.goto(report.as_uri())
        page.get_by_text("What this run found.").first.wait_for(timeout=10_000)
        body = page.inner_text("body")
        assert "Numbers that do not hold" in body and layout.EXPERIMENT_TITLES["exp1"] in body
        page.screenshot(path=str(tmp_path / "front.png"))
        # on a laptop's window the front page starts in view (the report centres it vertically:
        # a page taller than the window would lose its top, the counts, out of reach)
        page.set_viewport_size({"width": 1280, "height": 720})
        page.goto(report.as_uri())
        for start in ("Reproduction and audit of the study", "What this run found."):
            first = page.get_by_text(start).first
            first.wait_for(timeout=10_000)
            assert first.evaluate("e => e.getBoundingClientRect().top") >= 0, start
        page.set_viewport_size({"width": 1400, "height": 1000})
        for category, figs in categories.items():
            page.goto(report.as_uri())  # once per category: its list stays beside a figure
            for f in figs:  # listed with number and title
                page.get_by_text(category, exact=True).first.click()  # back to the list
                row(f.label).locator("a[iconname=eye]").click()
                img = page.locator(f"img[src*='{f.name}.']")
                img.wait_for(timeout=10_000)
                assert img.evaluate("i => i.naturalWidth") > 100
                row(f.label).locator("a[iconname=information-circle]").click()
                page.get_by_text("DESCRIPTION", exact=False).first.wait_for(timeout=10_000)
                assert f"Figure {f.number}. {f.title}." in page.inner_text("body")  # caption
        row_of("0. Audit", "claims table").locator("a[iconname=eye]").click()
        page.wait_for_timeout(1000)
        frame = next(f for f in page.frames if f != page.main_frame)
        text = frame.inner_text("body")
        assert "sigmoid_max_derivative" in text and "relu_dead_6_6_percent" in text
        assert "holds" in text
        # grouped by experiment, with units; the filter box and the verdict menu work
        claims_df = io.read_parquet(tiny_copy / layout.AUDIT["claims_parquet"])
        n = len(claims_df)
        assert frame.inner_text("p.count").startswith(f"showing {n} of {n}: ")
        groups = frame.locator("tr.group").all_inner_texts()
        assert [g.rsplit(" (", 1)[0] for g in groups] == [
            claimreg.group_title(e) for e in dict.fromkeys(sorted(
                claims_df["experiment"], key=lambda e: list(layout.EXPERIMENT_TITLES).index(e)
                if e else -1))]
        assert "fraction of units" in text
        frame.fill("input[type=search]", "dead")
        shown = [r for r in frame.locator("tbody tr:not(.group)").all() if r.is_visible()]
        want = sum("dead" in " ".join(map(str, r)).lower() for r in claims_df[
            ["claim", "statement", "quote", "reason", "condition"]].itertuples(index=False))
        assert 0 < len(shown) < n and len(shown) >= want
        assert all("dead" in r.inner_text().lower() for r in shown)
        assert frame.inner_text("p.count").startswith(f"showing {len(shown)} of {n}")
        frame.fill("input[type=search]", "")
        frame.select_option("select[aria-label=verdict]", "holds")
        verdicts = [r.locator("td").nth(5).inner_text() for r in
                    frame.locator("tbody tr:not(.group)").all() if r.is_visible()]
        assert len(verdicts) == (claims_df["verdict"] == "holds").sum()
        assert all(v.startswith("holds") for v in verdicts), verdicts
        page.screenshot(path=str(tmp_path / "claims.png"))

        # the sensitivity table: claims × settings, one table per experiment, readable labels
        row_of(layout.CATEGORIES["sensitivity"], "sensitivity table").locator(
            "a[iconname=eye]").click()
        page.wait_for_timeout(1000)
        frame = next(f for f in page.frames if f != page.main_frame)
        sens = io.read_parquet(tiny_copy / layout.AUDIT["sensitivity_parquet"])
        tables = frame.locator("table.pivot")
        assert tables.count() == sens["experiment"].nunique()
        for k, (exp, g) in enumerate(sens.groupby("experiment", sort=False)):
            t = tables.nth(k)
            assert t.locator("tbody tr").count() == g["claim"].nunique()
            heads = t.locator("thead th").all_inner_texts()
            assert len(heads) == 2 + g["variant"].nunique()
            assert heads[2].startswith(f"Exp {exp.removeprefix('exp')}, the study's setting")
            cells = t.locator("td.cell")
            assert cells.count() == len(g)
            first = cells.first
            assert first.inner_text().split()[0] in claimreg.SIGNS.values()
            assert "seeds" in first.get_attribute("title")
        page.screenshot(path=str(tmp_path / "sensitivity.png"))

        def inline(name, expect):  # the audit item's text, rendered inside the report
            row_of("0. Audit", name).locator("a[iconname=eye]").click()
            text = ""
            for _ in range(50):  # the item's frame loads after the click
                page.wait_for_timeout(200)
                text = " ".join(f.inner_text("body") for f in page.frames
                                if f != page.main_frame)
                if expect in text:
                    break
            return text

        text = inline("provenance manifest", "certified files")
        assert "certified files" in text and "version of torch" in text
        assert "results/metrics/runs.parquet" in text
        text = inline("resolved configuration", "activations:")
        assert "activations:" in text and "learning_rate:" in text
        # the audit category's column says what its entries are, not "figure"
        page.goto(report.as_uri())
        page.get_by_text("0. Audit").click()
        headers = page.locator("th").all_inner_texts()
        assert "FIGURE" not in [h.strip().upper() for h in headers], headers
        browser.close()
