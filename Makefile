# Two commands do all the set-up on a fresh machine:
#   make run    create .venv on first use, run the whole default workflow on all cores,
#               then write the self-contained HTML report results/report.html
#   make test   create .venv on first use (and, as root on Debian, install chromium for the
#               report test), then run the test suite
PYTHON ?= python3.11
VENV ?= .venv
CORES ?= all
BIN := $(VENV)/bin
# CONFIG=path/to/config.yaml: a config file over config/config.yaml, for every target that runs
# Snakemake (make run CONFIG=tests/tiny.yaml, then make audit CONFIG=tests/tiny.yaml, …);
# make repair follows the config its run's manifest recorded, whatever is given.
CONFIG ?=
CFG := $(if $(CONFIG),--configfile $(CONFIG))  # last on each line: it takes every word after it

.PHONY: help run resume test test-fast audit verify clean-stale repair report lint clean-results browser bundle compare show readme-figure
.DEFAULT_GOAL := help

help: ## list every target with what it does (this list)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)$$/  \1\t\2/' | expand -t 18

$(BIN)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

run: $(BIN)/.installed ## set up .venv on first use, run the whole default workflow, write results/report.html
	$(BIN)/snakemake --cores $(CORES) $(CFG)
	$(BIN)/snakemake --report results/report.html $(CFG)

# After a run was killed (SIGKILL, node reclaimed, power loss): remove the lock it left, then
# continue; incomplete jobs are rerun. Refuses while a Snakemake process works in this folder.
resume: $(BIN)/.installed ## after a killed run: remove its lock (refused while one runs), then continue
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.guard --no-running-snakemake .
	$(BIN)/snakemake --unlock
	$(MAKE) run

report: $(BIN)/.installed ## write the self-contained HTML report results/report.html
	$(BIN)/snakemake --report results/report.html $(CFG)

audit: $(BIN)/.installed ## verify every output, then retrain a sample of training jobs and compare bytes
	$(BIN)/snakemake --cores $(CORES) audit $(CFG)

# Pack this run for another person to compare with: results/bundle.tar.gz (+ .sha256).
bundle: $(BIN)/.installed ## pack this run for another person to compare with: results/bundle.tar.gz
	$(BIN)/snakemake --cores $(CORES) bundle $(CFG)

# This run against another run's bundle or results folder: make compare WITH=path/to/bundle.tar.gz
compare: $(BIN)/.installed ## compare this run with another: make compare WITH=path/to/bundle.tar.gz
	@test -n "$(WITH)" || { echo "make compare needs WITH=path/to/bundle.tar.gz (or another run's results folder)"; exit 2; }
	$(BIN)/snakemake --cores $(CORES) compare --config compare_with=$(WITH) $(CFG)

# The run's key results as tables in the terminal (a setting × activation row, its metrics with
# their 95 % intervals); WITH=path/to/bundle.tar.gz: compare first, then list what differs.
show: $(BIN)/.installed ## the run's key results as tables; WITH=bundle: also what differs from that run
	$(if $(WITH),$(BIN)/snakemake --cores $(CORES) compare --config compare_with=$(WITH) $(CFG))
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.show $(if $(WITH),--comparison)

# Every output against the manifest: missing, changed and unlisted files (rebuilds nothing).
verify: $(BIN)/.installed ## every output against the manifest: missing, changed, unlisted (rebuilds nothing)
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.audit verify

clean-stale: $(BIN)/.installed ## delete the outputs of variants no longer in the config (make verify lists them)
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.audit clean-stale

# Rebuild what verify finds missing or changed, then everything that depends on it.
repair: $(BIN)/.installed ## rebuild what verify finds missing or changed, and what depends on it
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.audit repair --snakemake $(BIN)/snakemake --cores $(CORES)

# The README's figure (Figure 1, analytic): redraw it after changing an activation or Figure 1's
# plotting; tests/test_registry.py fails while the committed picture differs from a fresh draw.
readme-figure: $(BIN)/.installed ## redraw the README's figure (Figure 1, analytic) into docs/img/
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.jobs

# Debian's chromium renders the HTML report in tests/test_report.py.
browser: ## install Debian's chromium for the report test (as root), if missing
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else echo "chromium is not installed (apt-get install chromium): the report test will be skipped"; fi; }

test: $(BIN)/.installed browser ## set up .venv on first use, then run the test suite
	$(BIN)/python -m pytest

test-fast: $(BIN)/.installed ## the fast lane: the unit tests only (pytest -m "not slow"), about half a minute
	$(BIN)/python -m pytest -m "not slow"

lint: $(BIN)/.installed ## snakemake --lint and snakefmt --check
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

clean-results: ## delete results/ and .snakemake/ (every output and Snakemake's records)
	rm -rf results .snakemake
