# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := runs/demo
# No TF_CPP_MIN_LOG_LEVEL here: the CLI sets it and drops TensorFlow's start-up lines itself, but only
# when the user has not set the level (a level set here would show those lines in `make demo`).
export PYTHONUNBUFFERED := 1

.PHONY: demo test lint docs bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever setup.cfg changes.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make demo: train on the built-in Korean-English corpus, then translate.
demo: $(VENV)/.installed
	$(BIN)/seq2seq-keras train --data builtin-ko-en --limit 12000 --epochs 6 \
		--embedding-dim 64 --encoder-units 128 --batch-size 64 --learning-rate 1e-3 --out $(DEMO) \
		--tensorboard $(DEMO)/logs
	$(BIN)/seq2seq-keras translate --model $(DEMO) \
		"나는 학생이다" "그녀는 의사였다." "우리는 어제 학교에서 책을 읽었다." "고양이는 물을 마신다."
	$(BIN)/seq2seq-keras export --model $(DEMO) --name demo --base-dir saved_models
	$(BIN)/seq2seq-keras check-servable saved_models/demo
	$(BIN)/seq2seq-keras plot --model $(DEMO) "나는 학생이다" --out $(DEMO)/attention.png
	@echo "Watch attention learn, epoch by epoch (IMAGES: attention/*, SCALARS: alignment/aer, epoch_loss):"
	@echo "  $(BIN)/tensorboard --logdir $(DEMO)/logs"

## make test: the whole suite.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

## make lint: ruff's linter and formatter check (settings in pyproject.toml); `ruff format .` fixes the layout.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make docs: the documentation site (mkdocs-material; API reference by mkdocstrings from the docstrings, read
## without importing TensorFlow) into site/. --strict: a broken link or anchor, a page missing from mkdocs.yml's
## nav or a cross-reference to nothing fails the build.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache site

## make bench: speed, quality, serving, memory and robustness against the TensorFlow tutorial (about 80 minutes:
## 15-minute training budget per model); rewrites docs/benchmarks.md and its plot. Shorter:
##   make bench BENCH_ARGS="--budget-minutes 3"    or    make bench BENCH_ARGS="--quick"
BENCH_ARGS ?=
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
