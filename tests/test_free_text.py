"""Free text from the config reaches the report as plain text, whatever it holds.

Snakemake renders each caption with docutils' defaults (``raw`` and ``include`` enabled):
the captions' variant list (each variant's name, settings and question) goes through
``actflow.figures.rst_plain``. Checked here with the probe's payloads, through the same
docutils call Snakemake makes, on the captions the workflow builds from a validated config;
a question of more than one line is refused by the schema."""

from html import unescape

import pytest
import yaml
from docutils.core import publish_parts

from actflow import figures as figreg
from actflow import variants as varreg
from actflow.config import ConfigError, validate
from conftest import ROOT, TINY

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
SECRET = "TOKEN-7f3a-local-file"


def payloads(secret_path):
    return [".. raw:: html <script>window.PWNED = 1</script>",
            "see `here <javascript:window.PWNED=2>`_ or javascript:alert(3) and |sub| *x*",
            f".. include:: {secret_path}",
            "<img src=x onerror=alert(4)> &amp; ``code`` [#]_ name_ :math:`x`"]


def _variants(questions):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["variants"] = [{"name": f"q{i}", "of": "exp1", "question": q, "learning_rate": 0.01 * (i + 1)}
                       for i, q in enumerate(questions)]
    cfg = validate(cfg, SCHEMA)
    return list(varreg.resolve(cfg, varreg.expand_entries(cfg["variants"]))), cfg


def test_variant_questions_render_as_their_own_words_in_every_caption(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    questions = payloads(secret)
    variants, cfg = _variants(questions)
    listed = figreg.variant_list(variants, cfg["seeds"])
    caption = figreg.FIGURES[figreg.by_experiment("sensitivity")[0]].caption_for(cfg | {"variant_list": listed})
    html = publish_parts(caption, writer="html")["body"]  # as snakemake.report does
    assert SECRET not in html  # nothing included
    assert "<script" not in html and "<img" not in html and "href=" not in html
    assert "system-message" not in html and "problematic" not in html  # no markup read
    # each question is shown as written (HTML-escaped by docutils, nothing dropped)
    shown = unescape(html)
    for q in questions:
        assert q in shown, q


@pytest.mark.parametrize("question", ["two\n\n.. raw:: html\n\n   <script>x</script>",
                                      "tab\there", "bell\x07"])
def test_a_question_of_more_than_one_printable_line_is_refused(question):
    with pytest.raises(ConfigError, match=r"variants\[0\]\.question"):
        _variants([question])
