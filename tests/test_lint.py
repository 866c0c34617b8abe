"""The workflow stays lint-clean and formatted (the design guide's habit 3)."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SNAKEMAKE


@pytest.mark.slow
def test_snakemake_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr)


def test_snakefmt_check_passes():
    snakefmt = str(Path(sys.executable).with_name("snakefmt"))
    proc = subprocess.run([snakefmt, "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_make_help_lists_every_target_with_a_line_of_its_own():
    import re

    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split()
    for plain in ([], ["help"]):  # plain `make` is `make help`
        proc = subprocess.run(["make", "--no-print-directory", *plain], cwd=ROOT,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        listed = dict(re.findall(r"^  ([a-z-]+) +(\S.*)$", proc.stdout, re.M))
        assert sorted(listed) == sorted(phony), proc.stdout
        assert all(len(d) > 15 for d in listed.values()), listed
