# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := runs/demo
# No TF_CPP_MIN_LOG_LEVEL here: the CLI sets it and drops TensorFlow's start-up lines itself, but only
# when the user has not set the level (a level set here would show those lines in `make demo`).
export PYTHONUNBUFFERED := 1

.PHONY: demo test browser test-colab wheel lint docs bench install install-dev clean

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
test: $(VENV)/.installed-dev browser
	$(BIN)/python -m pytest

## make browser (part of make test): headless Chromium and its driver for the explorer's browser tests
## (tests/test_explorer.py): Debian's chromium and chromium-driver, and NanumGothic for the Hangul in its
## screenshots, through apt where apt runs as root or through sudo without a password. Where it cannot, one line
## says the browser tests will be skipped and make test goes on.
BROWSER_PACKAGES := chromium chromium-driver fonts-nanum
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=""; elif sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root=no; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	if [ "$$as_root" != no ] && command -v apt-get >/dev/null 2>&1 && \
	   { $$as_root apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
	     { $$as_root apt-get update -qq >/dev/null 2>&1 && $$as_root apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1; }; }; then \
		echo "make browser: installed $(BROWSER_PACKAGES) (apt) for the explorer's browser tests"; \
	else \
		echo "make browser: headless Chromium could not be installed here (it needs apt-get as root or passwordless sudo):" \
		     "the explorer's browser tests will be skipped. To run them: sudo apt-get install $(BROWSER_PACKAGES)"; \
	fi

## make wheel: dist/seq2seq_keras-<version>-py3-none-any.whl, what a Colab learner uploads when the install
## from git fails (built from the sdist by `python -m build`; .ci/check_wheel.py checks it holds the whole
## package and no tests).
VERSION := $(shell sed -n 's/^version *= *//p' setup.cfg)
WHEEL   := dist/seq2seq_keras-$(VERSION)-py3-none-any.whl
PACKAGE_SOURCES := $(shell find seq2seq_keras -name '*.py' -not -path '*/__pycache__/*')

wheel: $(WHEEL)

$(WHEEL): $(VENV)/.installed-dev setup.cfg pyproject.toml README.md $(PACKAGE_SOURCES)
	rm -f $@
	mkdir -p dist
	$(BIN)/python -m build --outdir dist . > dist/build.log 2>&1 || { tail -30 dist/build.log; exit 1; }
	$(BIN)/python .ci/check_wheel.py $@

## make test-colab: the core tests and both notebooks (smoke mode) in a second environment, .venv-colab, holding
## Google Colab's TensorFlow, Keras, tensorflow-text, NumPy and Gradio (.ci/colab-constraints.txt) with the package's
## wheel installed over them as the notebooks' install cell does; .ci/check_colab_env.py fails it if pip replaced
## any of Colab's versions or a notebook would run in another interpreter. About 8 minutes on 2 cores.
## COLAB_PYTHON=python3.13 builds it on Colab's Python where this machine has one.
COLAB_PYTHON      ?= $(PYTHON)
COLAB_VENV        := .venv-colab
COLAB_BIN         := $(COLAB_VENV)/bin
COLAB_CONSTRAINTS := .ci/colab-constraints.txt
# The core tests (the slow-marked ones left out): the model and its saving, decoding, data, text, the training loop
# and checkpoints, export through TF Serving's C API loader, check-servable, the CLI, the explorer (on Colab's
# Gradio). Left out: the benchmarks, the
# multi-process training tests and the rest of export's and check-servable's (minutes, version-independent code).
COLAB_TESTS := tests/model/test_attention.py tests/model/test_encoder.py tests/model/test_decoder.py \
	tests/model/test_seq2seq.py tests/model/test_saving.py tests/decoding/test_search.py \
	tests/decoding/test_pipeline.py tests/data/test_batching.py tests/test_text.py tests/test_words.py \
	tests/test_translation.py tests/training/test_loop.py tests/training/test_checkpointing.py \
	tests/serving/test_tf_serving_loader.py \
	tests/serving/test_export.py::test_signatures_are_dense_batch_major_and_named \
	tests/serving/test_export.py::test_warmup_requests_replay_through_tf_servings_loader \
	tests/serving/test_export.py::test_bad_input_through_tf_servings_loader \
	tests/serving/test_export.py::test_xla_signatures_match_the_plain_ones_through_tf_servings_loader \
	tests/serving/test_check.py::test_check_servable_accepts_the_export tests/cli/test_commands.py \
	tests/test_explorer.py
COLAB_NOTEBOOKS := tests/integration/test_notebooks.py::test_notebook_runs_top_to_bottom_in_smoke_mode_quietly

$(COLAB_BIN)/python:
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_BIN)/python -m pip install --quiet --upgrade pip

# Colab's stack first, as the runtime has it; then the wheel and its dev extras with no constraint, as on Colab.
$(COLAB_VENV)/.installed: $(COLAB_BIN)/python $(COLAB_CONSTRAINTS) $(WHEEL)
	$(COLAB_BIN)/python -m pip install --quiet -r $(COLAB_CONSTRAINTS)
	$(COLAB_BIN)/python -m pip uninstall --quiet --yes seq2seq_keras
	$(COLAB_BIN)/python -m pip install --quiet "$(WHEEL)[dev]"
	touch $@

# The tests import the installed wheel (the pytest script does not put the source tree on sys.path), keep no
# cache beside .venv's, and ignore a PYTHONPATH set for the main checkout. The notebooks (slow-marked) run one
# per worker (--dist load), each in a kernel of .venv-colab's Python.
test-colab: $(COLAB_VENV)/.installed
	env -u PYTHONPATH $(COLAB_BIN)/python .ci/check_colab_env.py $(COLAB_CONSTRAINTS)
	env -u PYTHONPATH $(COLAB_BIN)/pytest -p no:cacheprovider -m "not slow" $(COLAB_TESTS)
	env -u PYTHONPATH $(COLAB_BIN)/pytest -p no:cacheprovider --dist load $(COLAB_NOTEBOOKS)

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
	rm -rf $(VENV) $(COLAB_VENV) runs build dist *.egg-info .pytest_cache site

## make bench: speed, quality, serving, memory and robustness against the TensorFlow tutorial (about 80 minutes:
## 15-minute training budget per model); rewrites docs/benchmarks.md and its plot. Shorter:
##   make bench BENCH_ARGS="--budget-minutes 3"    or    make bench BENCH_ARGS="--quick"
BENCH_ARGS ?=
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
