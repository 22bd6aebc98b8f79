# Two commands do all set-up on a fresh machine: `make repro` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install repro test test-fast serve serve-dev bench clean-venv push pull report sweep

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

install: $(STAMP)

# stage commands call `python`: put the venv first on PATH
RUN := PATH="$(abspath $(BIN)):$$PATH"

repro: $(STAMP)
	$(RUN) $(BIN)/dvc repro

# DVC remote: .dvc/config's default (~/.cache/medqa-lora/dvc-remote, offline, shared by this user's clones);
# point a clone elsewhere with `dvc remote add -d --local NAME URL` (kept in the untracked .dvc/config.local)
push: $(STAMP)
	$(BIN)/dvc push

pull: $(STAMP)
	$(BIN)/dvc pull

# Markdown review report (params/metrics diff, per-tier + safety tables, PNG plots, experiments) of the
# working tree vs REV: artifacts/report/report.md
REV ?= HEAD
report: $(STAMP)
	$(RUN) $(BIN)/python -m stages.report --rev $(REV) --out artifacts/report

# queued LoRA-rank sweep (runs in temp workspaces; base model and base predictions come from the cache)
SWEEP ?= lora.r=4,8,16
sweep: $(STAMP)
	$(RUN) $(BIN)/dvc exp run --queue -S $(SWEEP)
	$(RUN) $(BIN)/dvc queue start
	@echo "follow with: $(BIN)/dvc queue status; then: make report"

test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -q -rs tests

test-fast: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -q -rs -m "not slow and not e2e" tests

serve: $(STAMP)
	$(BIN)/python -m serve --model models/merged --host 127.0.0.1 --port 8000

serve-dev: $(STAMP)   # base + adapter, unmerged (dynamic loading)
	$(BIN)/python -m serve --model models/base --adapter models/lora --host 127.0.0.1 --port 8000

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
