# The one entry point: install, run, invoke, test, lint, build, deploy.
# Python 3.13 matches the Lambda runtime; .python-version selects it for pyenv.

PYTHON ?= $(shell pyenv which python3.13 2>/dev/null || command -v python3.13)
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# checkov pins its own boto3 and friends, so it lives in a venv of its own, as the SAM CLI does.
SCAN_VENV := .venv-scan
CHECKOV_VERSION := 3.3.30

# Mirrors Lambda's /var/task + /opt/python for the tools that import the functions.
export PYTHONPATH := functions/webhook:functions/sender:functions/callback:functions/onboarding:functions/refresher:functions/reconciler:functions/eraser:functions/authorizer:functions/api:functions/fanout:layers/shared:.
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.DEFAULT_GOAL := help
.PHONY: help install run say send refresh reconcile invite register accounts pause resume profile deauthorize delete-data forget key invoke test test-unit test-integration test-e2e lint format scan build validate deploy bench chaos schemas events logs sample-events clean

help:
	@echo "make install   create .venv (Python 3.13, pinned deps, ~800 MB) and .venv-sam (AWS SAM CLI, ~330 MB)"
	@echo "make run       the whole gateway locally: AWS emulator, webhook on http://127.0.0.1:3000, sender, Graph sandbox"
	@echo "make say       (with make run) the sample customer writes: TEXT=\"...\""
	@echo "make send      (with make run) the account answers; KIND=<kind> for any kind in docs/messages.md"
	@echo "make invite    (with make run) an onboarding link; log in as local_shop on the sandbox's page"
	@echo "make refresh   (with make run) run the token refresher now; make accounts lists the accounts"
	@echo "make reconcile (with make run) read the Conversations API for messages whose webhook never came"
	@echo "make register  (with make run) register an account from a long-lived token read on stdin"
	@echo "make pause ACCOUNT=<id> / make resume ACCOUNT=<id>   (with make run) stop or restart sending for one account"
	@echo "make profile ACCOUNT=<id> FILE=profile.json   (with make run) the account's ice breakers and menu"
	@echo "make deauthorize [ACCOUNT=<id>]   (with make run) Meta's deauthorize callback: the owner removed the app"
	@echo "make delete-data ID=<id>         (with make run) Meta's data deletion callback: everything about the id goes"
	@echo "make forget CUSTOMER=<igsid>     (with make run) erase a customer now and say what was deleted"
	@echo "make key                         (with make run) an HTTP API key (send, read), alone on the last line"
	@echo "make invoke FUNCTION=WebhookFunction EVENT=events/apigw_webhook_text.json"
	@echo "make test      unit, integration and end-to-end tests, with the product's coverage and its floor"
	@echo "make lint      ruff format --check, ruff, mypy, cfn-lint, sam validate --lint"
	@echo "make format    ruff format and ruff's fixes over the tree (pre-commit runs the same checks)"
	@echo "make scan      security scans: checkov on the template, bandit on the code"
	@echo "make build     sam build (no Docker needed)"
	@echo "make deploy    sam build && sam deploy --guided"
	@echo "make bench     every performance figure against its floor; writes docs/performance.md and .png"
	@echo "make chaos     fault injection and fuzzing; ends with the lost/duplicated/out-of-order counts"
	@echo "make events    the running local stack's latest events, one line each (LIMIT=20)"
	@echo "make logs      the running local stack's function logs, as they come (VERBOSE=1 make run: inline)"
	@echo "make schemas / make sample-events   regenerate schemas/ and events/"

# What make install builds (make scan builds .venv-scan, checkov's 270 MB, the first time it runs).
install: $(VENV)/.installed $(SAM_VENV)/.installed
	@echo "installed: .venv (the gateway, its tests and the local stack) and .venv-sam (the AWS SAM CLI)"

NEED_PYTHON := echo "Python 3.13 not found: install it (e.g. pyenv install 3.13) and retry"; exit 1
# A step's line, then pip's own output only when it fails; the seconds it took at the end.
define venv_step
	@test -n "$(PYTHON)" || { $(NEED_PYTHON); }
	@echo "$(1): $(2) ..."
	@start=$$(date +%s); $(PYTHON) -m venv $(1) && $(1)/bin/pip install --quiet --upgrade pip && \
		$(1)/bin/pip install --quiet $(3) && \
		echo "$(1): ready in $$(( $$(date +%s) - start )) s, $$(du -sh $(1) | cut -f1)"
	@touch $@
endef

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	$(call venv_step,$(VENV),Python 3.13 with the pinned packages of the gateway and its tests (about 800 MB; 1-4 minutes),-r requirements-dev.txt)

$(SAM_VENV)/.installed:
	$(call venv_step,$(SAM_VENV),the AWS SAM CLI $(SAM_CLI_VERSION) for lint/build/deploy (about 330 MB; 1-2 minutes),aws-sam-cli==$(SAM_CLI_VERSION))

$(SCAN_VENV)/.installed:
	$(call venv_step,$(SCAN_VENV),checkov $(CHECKOV_VERSION) for make scan (about 270 MB; 1-2 minutes),checkov==$(CHECKOV_VERSION))

run: $(VENV)/.installed
	$(BIN)/python -m local.stack

say: $(VENV)/.installed
	$(BIN)/python -m local.try_it say

send: $(VENV)/.installed
	$(BIN)/python -m local.try_it send

refresh: $(VENV)/.installed
	$(BIN)/python -m local.invoke RefresherFunction events/scheduler_refresher.json

# One reconciler run against the running local stack (make run): a one-line JSON summary.
reconcile: $(VENV)/.installed
	$(BIN)/python -m local.invoke ReconcilerFunction events/scheduler_reconciler.json --one-line

invite: $(VENV)/.installed
	$(BIN)/python -m tools.accounts invite --local

register: $(VENV)/.installed
	$(BIN)/python -m tools.accounts register --local

accounts: $(VENV)/.installed
	$(BIN)/python -m tools.accounts list --local

# Meta's deauthorize callback for one account of the running local stack (its owner removed the app)
deauthorize: $(VENV)/.installed
	ACCOUNT=$(ACCOUNT) $(BIN)/python -m local.try_it deauthorize

# Meta's data deletion callback for a customer's (or an account's) id, on the running local stack
delete-data: $(VENV)/.installed
	@test -n "$(ID)" || { echo "usage: make delete-data ID=<customer or account id>"; exit 2; }
	USER_ID=$(ID) $(BIN)/python -m local.try_it delete-data

# Erase one customer of the running local stack at once (tools.accounts forget): make forget CUSTOMER=<igsid>
forget: $(VENV)/.installed
	@test -n "$(CUSTOMER)" || { echo "usage: make forget CUSTOMER=<customer IGSID>"; exit 2; }
	$(BIN)/python -m tools.accounts forget --local --customer $(CUSTOMER)

# A key for the running local stack's HTTP API (docs/http-api.md), printed alone on the last line
key: $(VENV)/.installed
	@$(BIN)/python -m tools.keys create --local --name local --scopes send,read,webhooks

# An account's ice breakers and menu on the running local stack: make profile ACCOUNT=<id> FILE=profile.json
profile: $(VENV)/.installed
	@test -n "$(ACCOUNT)" -a -n "$(FILE)" || { echo "usage: make profile ACCOUNT=<account id> FILE=<profile.json>"; exit 2; }
	$(BIN)/python -m tools.accounts profile --local --account $(ACCOUNT) --file $(FILE)

# Stop (or restart) sending for one account of the running local stack: make pause ACCOUNT=<id>
pause resume: $(VENV)/.installed
	@test -n "$(ACCOUNT)" || { echo "usage: make $@ ACCOUNT=<account id> (make accounts lists them)"; exit 2; }
	$(BIN)/python -m tools.accounts $@ --local --account $(ACCOUNT)

invoke: $(VENV)/.installed
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json"; exit 2; }
	$(BIN)/python -m local.invoke $(FUNCTION) $(EVENT)

# Coverage of the product (functions/, the layer) is measured on every run, and below its floor the run
# fails (pyproject.toml, [tool.coverage]). Two pytest-xdist workers, a test file each at a time (--dist loadfile:
# an end-to-end module's local stack starts once, and a file's tests keep their order); TEST_WORKERS=0 runs the
# suite in one process, as pytest alone does.
TEST_WORKERS ?= 2
test: $(VENV)/.installed
	$(BIN)/pytest tests -n $(TEST_WORKERS) --dist loadfile --cov --cov-report=term

test-unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

test-integration: $(VENV)/.installed
	$(BIN)/pytest tests/integration

test-e2e: $(VENV)/.installed
	$(BIN)/pytest tests/e2e

lint: $(VENV)/.installed validate
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy functions layers local bench chaos tools tests
	$(BIN)/cfn-lint template.yaml

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

SCAN_DIR := .aws-sam/scan
scan: $(VENV)/.installed $(SCAN_VENV)/.installed
	@# checkov cannot expand Fn::ForEach (it reports a parsing error and checks nothing), so it reads the
	@# template as the local stack does, expanded. Skips that hold for the whole gateway are in .checkov.yaml
	@# with their reasons, skips for one resource in its Metadata; skip-download: nothing leaves this machine.
	$(BIN)/python -m local.aws.template $(SCAN_DIR)/template.json
	@$(SCAN_VENV)/bin/checkov --config-file .checkov.yaml --file $(SCAN_DIR)/template.json \
		>$(SCAN_DIR)/checkov.txt; status=$$?; cat $(SCAN_DIR)/checkov.txt; \
		if grep -q "Parsing errors" $(SCAN_DIR)/checkov.txt; then echo "checkov could not parse the template"; exit 1; fi; \
		exit $$status
	$(BIN)/bandit --quiet --recursive functions layers tools
	@# The local stack, bench and chaos never deploy: their fixed credentials (local-app-secret, ...), asserts,
	@# seeded random numbers and subprocesses of our own interpreter are by design, so those checks are skipped.
	$(BIN)/bandit --quiet --recursive --skip B101,B105,B106,B311,B404,B603 local bench chaos

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint

# The layer's build compiles its bytecode with our Python 3.13 (layers/shared/Makefile).
build: $(VENV)/.installed $(SAM_VENV)/.installed
	PYTHON=$(abspath $(BIN)/python) $(SAM) build

deploy: build
	$(SAM) deploy --guided

bench: $(VENV)/.installed
	$(BIN)/python -m bench

# CHAOS_QUICK=1: the short version CI runs (fewer fuzz cases, fewer messages per fault).
chaos: $(VENV)/.installed
	$(BIN)/python -m chaos

schemas: $(VENV)/.installed
	$(BIN)/python -m local.export_schemas

# The running local stack's latest stored events, one line each; the events queue is left as it is.
events: $(VENV)/.installed
	@$(BIN)/python -m local.show_events

# The functions' own logs (Powertools JSON, metrics) of the running local stack, as they come; make run shows one
# line per happening instead. VERBOSE=1 make run prints them inline.
LOCAL_LOG := $(or $(LOCAL_STATE_DIR),.local)/functions.log
logs:
	@test -f $(LOCAL_LOG) || { echo "no $(LOCAL_LOG) yet: start the local stack with make run"; exit 1; }
	@tail -n 40 -F $(LOCAL_LOG)

sample-events: $(VENV)/.installed
	$(BIN)/python -m local.generate_events

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage
