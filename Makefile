# Two commands matter on a fresh machine: `make demo` and `make test`. Both build .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: venv tools test unit integration infrastructure local e2e demo bench synth nag deploy lint typecheck check clean images

venv: $(STAMP)

# constraints.txt pins every transitive dependency; pyproject.toml pins the direct ones.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt --config-settings editable_mode=compat -e '.[local,train,dev]'
	touch $(STAMP)

# The conformance tests' tools outside .venv (tests/infrastructure/test_conformance_asl.py, test_checkov.py):
# asl-validator from npm (package.json, locked in package-lock.json), and checkov in a venv of its own
# because it pins boto3 exactly, which clashes with our boto3 (its pins: constraints-checkov.txt).
NODE_TOOLS := node_modules/.installed-stamp
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp

tools: $(NODE_TOOLS) $(CHECKOV_STAMP)

$(NODE_TOOLS): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_TOOLS)

$(CHECKOV_STAMP): constraints-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints-checkov.txt checkov
	touch $(CHECKOV_STAMP)

# On every core, at most 4 workers (the e2e planes are processes of their own); tests/conftest.py keeps each
# shared plane and the synthesized app on one worker.
test: venv tools
	$(PY) -m pytest -q --durations=25 -n auto --maxprocesses=4 --dist loadscope

unit: venv
	$(PY) -m pytest -q tests/unit

integration: venv
	$(PY) -m pytest -q tests/integration

infrastructure: venv tools
	$(PY) -m pytest -q tests/infrastructure

local: venv
	$(PY) -m pytest -q tests/local

e2e: venv
	$(PY) -m pytest -q tests/e2e

demo: venv
	$(VENV)/bin/headrace demo

# Every benchmark with its reference in the same run, then bench/RESULTS.md (about 10 minutes on 2 cores;
# the drift benchmark installs Evidently into its own bench/.venv-evidently on first use).
bench: venv
	$(PY) bench/drift.py
	$(PY) bench/quality.py
	$(PY) bench/serving.py
	$(PY) bench/cold_start.py
	$(PY) bench/first_clients.py
	$(PY) bench/training_local.py
	$(PY) bench/loop_local.py
	$(PY) bench/batch.py
	$(PY) bench/trainer_device.py
	$(PY) bench/tuning.py
	$(PY) bench/results.py

# The training and serving images from their Dockerfiles, on a local Debian base made once with debootstrap
# (public registries may be unreachable); needs a Docker daemon. `headrace local up --compute docker` runs them.
images: venv
	$(PY) -m headrace.local.sagemaker.images

# Synthesizes every stack offline into cdk.out (no CDK CLI, no AWS account, no Docker).
synth: venv
	CDK_OUTDIR=cdk.out $(PY) app.py

# Every stage of stages.yaml (tests/infrastructure/test_workflows.py holds the two lists equal): `make nag`
# synthesizes each through app.py, then runs cdk-nag's AwsSolutions pack over each (test_nag.py).
STAGES := dev prod
nag: venv
	for stage in $(STAGES); do CDK_OUTDIR=cdk.out/$$stage $(PY) app.py -c stage=$$stage || exit 1; done
	$(PY) -m pytest -q tests/infrastructure/test_nag.py

# Deploys every stack of one stage with the CDK CLI (pinned: it must read aws-cdk-lib's assembly schema).
# Needs AWS credentials (CI: the OIDC role of .github/workflows/deploy.yml) and a bootstrapped account/region.
STAGE ?= dev
CDK_CLI := aws-cdk@2.1149.0
deploy: venv
	npx --yes $(CDK_CLI) deploy --all -c stage=$(STAGE) --require-approval never --progress events

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The checked paths (headrace, stacks, functions, app.py, the containers' packages): [tool.mypy] files.
typecheck: venv
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
