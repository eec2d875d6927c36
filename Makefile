# The front door. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATE   ?= $(shell date +%Y-%m-%d)
# Flags for `make lab`, e.g. `make lab LAB_ARGS="--allow-root --port 8890"` (jupyter lab refuses root without it)
LAB_ARGS ?=
# Run metadata a notebook gains when it runs (JupyterLab's language_info, papermill's records): the git filter
# strips it with the outputs, so running a notebook leaves `git status` clean
NB_STRIP_KEYS := metadata.language_info metadata.papermill metadata.vscode metadata.colab metadata.toc \
	metadata.varInspector cell.metadata.papermill cell.metadata.trusted

.PHONY: help venv git-filter lab nightly test test-quick evaluate export clean-cache

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first: anything that pulls torch later then finds it and no CUDA build is downloaded
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) git-filter  ## create .venv with everything (core, analysis, notebooks, st, dev); done by the other targets when missing

# .gitattributes sends notebooks through the nbstripout filter; this configures the filter in this clone, so
# outputs of notebooks run locally stay on disk but never reach a commit (and `git status` stays clean).
git-filter: $(STAMP)  ## strip notebook outputs at commit time (an nbstripout git filter; every target installs it)
	@git rev-parse --git-dir >/dev/null 2>&1 || exit 0; \
	$(BIN)/nbstripout --is-installed || $(BIN)/nbstripout --install --attributes .gitattributes; \
	git config filter.nbstripout.extrakeys "$(NB_STRIP_KEYS)"

lab: $(STAMP) git-filter  ## JupyterLab on the notebooks (live map explorer; outputs stay local, see git-filter); flags: LAB_ARGS="--allow-root ..."
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

nightly: $(STAMP) git-filter  ## the main job: run the notebooks on the bundled data into reports/<date>/
	$(BIN)/workbench nightly

test: $(STAMP) git-filter  ## run the whole test suite (slow tests included: models, UMAP, papermill, Chromium, install)
	$(BIN)/python -m pytest

test-quick: $(STAMP) git-filter  ## the quick tier: no model, UMAP, papermill, browser or install (under a minute)
	$(BIN)/python -m pytest -m "not slow"

evaluate: $(STAMP) git-filter  ## leave-one-out metrics of data/pool
	$(BIN)/workbench evaluate

export: $(STAMP) git-filter  ## write reports/pool.npz with the best swept configuration
	$(BIN)/workbench export --out reports/pool.npz

clean-cache:  ## delete derived data (embedding, label and map caches)
	rm -rf data/interim
