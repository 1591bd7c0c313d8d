# canaryfleet developer commands. A newcomer needs two: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
# The AWS CLI the drain document runs, for figure 10 of the bench (version 1: 2 is not on PyPI).
AWSCLI_VENV := .venv-awscli
REGION ?= us-east-1
# sam build needs the Lambda runtime's Python (3.13) on PATH.
PY313_BIN := $(shell pyenv prefix 3.13.0 2>/dev/null)/bin
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= $(REGION)

.PHONY: install bytecode asl chromium screenshots demo test test-aws test-fast test-long test-iam test-py313 lint format build validate lock clean bench bench-quick

$(BIN)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/dev.lock -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 src layers functions tests bench >/dev/null
	touch $@

$(SAM_VENV)/.installed: requirements/sam.lock
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/sam.lock
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.lock
	touch $@

$(AWSCLI_VENV)/.installed: requirements/awscli.lock
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/awscli.lock
	touch $@

install: $(BIN)/.installed ## the development environment (.venv)

# Bytecode for the project's own modules, written once: where PYTHONDONTWRITEBYTECODE is set, every
# process (the demo, each test worker, each CLI a test starts) compiled them from source again.
# A stale file is still recompiled in memory, so this only saves time.
bytecode: install
	@$(BIN)/python -m compileall -q -j 0 src layers functions tests bench >/dev/null

demo: install bytecode ## run the main job on the local cloud: a release, then a rollback
	@# Exit code 1 is the demo's story (its second build is rolled back); 2 would be a local cloud failure.
	$(BIN)/canaryfleet local rollout --scenario demo --report-dir out; test $$? -le 1

# Six workers on two cores: the e2e tests mostly wait on their stories' clocks (bakes, windows,
# timeouts); with the suite's CPU cut, four kept 1.5 cores busy and six finish sooner, idle and
# busy alike (bench/README.md, figure 5, seventh round).
test: install chromium bytecode ## the whole suite: unit, integration (moto), e2e (local cloud)
	$(BIN)/pytest -n 6 --dist worksteal -q

# Debian's headless Chromium for the browser tests, and Info-ZIP's unzip (what the CodeDeploy
# agent unpacks bundles with) for tests/unit/test_appspec_agent_rules.py, installed where this
# machine allows it (root and apt-get) and tried once per .venv. Elsewhere those tests skip with
# one line saying why; under CI=true the browser tests fail instead (tests/e2e/headless_chromium.py).
chromium: install
	@{ { command -v chromium || command -v chromium-browser; } && command -v unzip; } >/dev/null 2>&1 || \
	  test -f $(VENV)/.chromium-tried || test "$$(id -u)" != 0 || ! command -v apt-get >/dev/null 2>&1 || { \
	    touch $(VENV)/.chromium-tried; \
	    echo "installing Debian's chromium and unzip for the browser and bundle tests (once)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium unzip; } \
	      >/dev/null 2>&1 || echo "chromium or unzip could not be installed: their tests will say so"; \
	  }

# PNGs of the pages approvers read, for review: the demo's released and rolled-back timelines
# and an approval page, each at 1400 px and on a 390x844 phone (out/ is git-ignored).
screenshots: install chromium ## out/screenshots/*.png: both pages at both sizes
	$(BIN)/python -m tests.e2e.pages out/screenshots

test-aws: install ## the acceptance suite on a real sandbox account (tests/aws/README.md); no credentials: one line, exit 0
	$(BIN)/python -m tests.aws

test-fast: install ## unit tests only
	$(BIN)/pytest -q tests/unit

test-long: install ## the long variants: 20 rollouts and 200 drains under injected faults
	$(BIN)/pytest -q -s -m long

# The end-to-end stories again with every function under its own role and IAM checking each call
# (CANARYFLEET_LOCAL_IAM=enforce, src/canaryfleet_local/standins/iam.py): a grant the template
# lacks fails its story here as it would on AWS. How a bake extension's missing GetItem was found.
test-iam: install chromium bytecode ## the e2e stories under IAM: each function's calls checked against its role
	CANARYFLEET_LOCAL_IAM=enforce $(BIN)/pytest -n 6 --dist worksteal -q -m "not long" tests/e2e

bench: install $(AWSCLI_VENV)/.installed ## every figure of bench/README.md, side by side with its baseline: bench/results.json
	$(BIN)/python -m bench --profile full

bench-quick: install $(AWSCLI_VENV)/.installed ## a reduced bench, for CI to prove it still works: bench/results-quick.json
	$(BIN)/python -m bench --profile quick

# The functions run on python3.13: the runtime package's unit tests run there too.
VENV313 := .venv313
test-py313: ## unit tests on Python 3.13 (pyenv 3.13.0)
	test -x "$(PY313_BIN)/python3.13" || { echo "python3.13 not found (pyenv install 3.13.0)"; exit 1; }
	test -f $(VENV313)/.installed || { "$(PY313_BIN)/python3.13" -m venv $(VENV313) && \
	  $(VENV313)/bin/pip install --quiet --disable-pip-version-check -c requirements/dev.lock -e ".[dev]" && \
	  touch $(VENV313)/.installed; }
	$(VENV313)/bin/pytest -q -p no:cacheprovider tests/unit

lint: install $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## ruff, mypy, import contracts, cfn-lint, sam validate, checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/canaryfleet/canaryfleet src functions/*/app.py bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml fleet/template.yaml
	$(BIN)/python .ci/render_asl.py --check
	$(BIN)/python .ci/check_asl.py
	$(SAM) validate --lint --template template.yaml --region $(REGION)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation secrets \
	  -f template.yaml -f fleet/template.yaml

asl: install ## write statemachines/*.asl.json from their *.asl.yaml sources (edit the YAML, then run this)
	$(BIN)/python .ci/render_asl.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

build: $(SAM_VENV)/.installed ## sam build (needs python3.13: pyenv 3.13.0)
	PATH="$(PY313_BIN):$$PATH" $(SAM) build --template template.yaml

lock: ## re-pin every transitive dependency after changing pyproject.toml
	rm -rf $(VENV) $(SAM_VENV) && $(PYTHON) -m venv $(VENV) && $(PYTHON) -m venv $(SAM_VENV)
	$(BIN)/pip install --quiet pip==25.3 && $(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip freeze --exclude-editable > requirements/dev.lock
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0 && $(SAM_VENV)/bin/pip freeze > requirements/sam.lock
	touch $(BIN)/.installed $(SAM_VENV)/.installed

clean:
	rm -rf $(VENV) $(SAM_VENV) $(VENV313) $(CHECKOV_VENV) $(AWSCLI_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .venv-lambda-*
