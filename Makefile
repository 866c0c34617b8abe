# Two commands do all the set-up on a fresh machine:
#   make run    create .venv on first use, run the whole default workflow on all cores,
#               then write the self-contained HTML report results/report.html
#   make test   create .venv on first use (and, as root on Debian, install chromium for the
#               report test), then run the test suite
PYTHON ?= python3.11
VENV ?= .venv
CORES ?= all
BIN := $(VENV)/bin

.PHONY: run resume test audit verify repair report lint clean-results browser bundle compare

$(BIN)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

# After a run was killed (SIGKILL, node reclaimed, power loss): remove the lock it left, then
# continue; incomplete jobs are rerun. Refuses while a Snakemake process works in this folder.
resume: $(BIN)/.installed
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.guard --no-running-snakemake .
	$(BIN)/snakemake --unlock
	$(MAKE) run

report: $(BIN)/.installed
	$(BIN)/snakemake --report results/report.html

audit: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) audit

# Pack this run for another person to compare with: results/bundle.tar.gz (+ .sha256).
bundle: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) bundle

# This run against another run's bundle or results folder: make compare WITH=path/to/bundle.tar.gz
compare: $(BIN)/.installed
	@test -n "$(WITH)" || { echo "make compare needs WITH=path/to/bundle.tar.gz (or another run's results folder)"; exit 2; }
	$(BIN)/snakemake --cores $(CORES) compare --config compare_with=$(WITH)

# Every output against the manifest: missing, changed and unlisted files (rebuilds nothing).
verify: $(BIN)/.installed
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.audit verify

# Rebuild what verify finds missing or changed, then everything that depends on it.
repair: $(BIN)/.installed
	PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.audit repair --snakemake $(BIN)/snakemake --cores $(CORES)

# Debian's chromium renders the HTML report in tests/test_report.py.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else echo "chromium is not installed (apt-get install chromium): the report test will be skipped"; fi; }

test: $(BIN)/.installed browser
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

clean-results:
	rm -rf results .snakemake
