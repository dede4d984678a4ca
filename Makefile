# Every target that needs Python creates .venv on first use and installs the pinned tree.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CDK_OUTDIR ?= cdk.out
# Extra CDK CLI arguments, e.g. CDK_ARGS="-c alarmTopicArn=arn:aws:sns:…"
CDK_ARGS ?=
# A fleet file (fleet.example.yaml): one stage per member account and region, and a central one.
# Empty: the cdk.json `fleetFile` context key, if any, else one stack.
FLEET ?=
FLEET_ARGS := $(if $(FLEET),-c fleetFile=$(FLEET))
# Every stack of the app, those in the fleet's stages included; a pattern selects some of them.
STACKS := '**'
# Node 20 is past jsii's support window; the banner it prints is noise here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help install test lint format demo local synth synth-fleet deploy diff bench schema clean

help:
	@echo "make demo    the whole pipeline on the embedded AWS emulator (no account)"
	@echo "make test    unit, integration and infrastructure tests"
	@echo "make lint    ruff check, ruff format --check, mypy"
	@echo "make synth   synthesize the stack with the pinned CDK CLI (cdk-nag + cfn-lint clean)"
	@echo "             FLEET=fleet.yaml: every stage of the fleet (make synth-fleet: the example)"
	@echo "make deploy  deploy the stack to the current AWS account (FLEET=…: every stage)"
	@echo "make diff    what a deploy would change (FLEET=…: every stage)"
	@echo "make bench   benchmarks (API calls per job, import times, evaluation speed)"

$(STAMP): pyproject.toml requirements.lock
	@echo "Creating $(VENV) and installing the pinned packages (requirements.lock), a few minutes on first run..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@
	@echo "Installed: $(BIN)/batch-terminator (add $(CURDIR)/$(BIN) to PATH to run it by name)"

$(NODE_STAMP): package.json package-lock.json
	@echo "Installing the pinned CDK CLI with npm (package-lock.json), a minute or two on first run..."
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP)
	$(BIN)/batch-terminator demo

local: $(STAMP)
	$(BIN)/batch-terminator local

schema: $(STAMP)
	$(BIN)/batch-terminator schema > policies.schema.json

# A fleet's stage templates are in assembly-<stage>/ below the output directory: cfn-lint
# expands the quoted pattern itself, recursively.
synth: $(STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet --output $(CDK_OUTDIR) $(FLEET_ARGS) $(CDK_ARGS)
	$(BIN)/cfn-lint '$(CDK_OUTDIR)/**/*.template.json'

synth-fleet:
	$(MAKE) synth FLEET=fleet.example.yaml CDK_OUTDIR=build/cdk.out.fleet

deploy: $(STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk deploy $(FLEET_ARGS) $(CDK_ARGS) $(STACKS)

diff: $(STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk diff $(FLEET_ARGS) $(CDK_ARGS) $(STACKS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
