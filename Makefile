# Two commands matter on a fresh machine: `make demo` and `make test`. Both build .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: venv test unit integration e2e demo bench synth lint typecheck check clean images

venv: $(STAMP)

# constraints.txt pins every transitive dependency; pyproject.toml pins the direct ones.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt --config-settings editable_mode=compat -e '.[local,train,dev]'
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q

unit: venv
	$(PY) -m pytest -q tests/unit

integration: venv
	$(PY) -m pytest -q tests/integration

e2e: venv
	$(PY) -m pytest -q tests/e2e

demo: venv
	$(VENV)/bin/headrace demo

# Every benchmark with its reference in the same run, then bench/RESULTS.md (about 10 minutes on 2 cores;
# the drift benchmark installs Evidently into its own bench/.venv-evidently on first use).
bench: venv
	$(PY) bench/drift.py
	$(PY) bench/serving.py
	$(PY) bench/cold_start.py
	$(PY) bench/training_local.py
	$(PY) bench/loop_local.py
	$(PY) bench/trainer_device.py
	$(PY) bench/results.py

# The training and serving images from their Dockerfiles, on a local Debian base made once with debootstrap
# (public registries may be unreachable); needs a Docker daemon. `headrace local up --compute docker` runs them.
images: venv
	$(PY) -m headrace.local.sagemaker.images

# Synthesizes every stack offline into cdk.out (no CDK CLI, no AWS account, no Docker).
synth: venv
	CDK_OUTDIR=cdk.out $(PY) app.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The checked paths (headrace, stacks, functions, app.py, the containers' packages): [tool.mypy] files.
typecheck: venv
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
