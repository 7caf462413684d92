# Punctual. `make run` starts the service on the embedded default; `make test` runs every test.
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# pytest processes of make test (the fault modules stay together on one: tests/conftest.py)
TEST_WORKERS ?= 2
BENCH_PACKAGES := rabbitmq-server postgresql wrk
SYSTEM_TEST_PACKAGES := $(BENCH_PACKAGES) chromium fonts-liberation faketime
FRONTEND_SOURCES := frontend/package.json frontend/package-lock.json frontend/index.html \
	$(wildcard frontend/vite.config.*) $(shell find frontend/src -type f)

.PHONY: help run test test-cluster lint format migrate system-deps bench-deps clean frontend bench bench-smoke

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime frontend  ## Start web + worker + beat on SQLite and a serverless broker
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi seed-demo
	@echo "Punctual is starting on http://127.0.0.1:$(PORT)  (API docs: /api/docs, health: /healthz)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile --port $(PORT)

test: system-deps lint frontend  ## Install what the tests need, start RabbitMQ + PostgreSQL, run everything
	scripts/check-node.sh
	cd frontend && { [ -d node_modules ] || npm ci; } && npm run lint && npm test
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup
	$(BIN)/python -m bench.run --smoke

test-cluster: bench-deps  ## Fault tests on a three-node RabbitMQ cluster with quorum queues (~2 min)
	$(BIN)/pytest -m cluster tests/cluster

frontend: frontend/dist/index.html  ## Build the React UI into frontend/dist (when its sources changed)

frontend/dist/index.html: $(FRONTEND_SOURCES)
	scripts/check-node.sh
	cd frontend && npm ci && npm run build
	touch $@

bench: bench-deps  ## Punctual against the tutorial recipe: prints a table, writes bench/results/
	$(BIN)/python -m bench.run

bench-smoke: bench-deps  ## The benchmarks at tiny sizes (part of make test), so they cannot rot
	$(BIN)/python -m bench.run --smoke

system-deps: $(VENV)/.dev
	scripts/install-test-deps.sh $(SYSTEM_TEST_PACKAGES)

# The benchmarks need no browser: a fresh machine skips installing Chromium for them.
bench-deps: $(VENV)/.dev
	scripts/install-test-deps.sh $(BENCH_PACKAGES)

lint: $(VENV)/.dev  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev  ## Fix what ruff can
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.runtime  ## Apply database migrations
	$(BIN)/flask --app wsgi db upgrade

clean:  ## Remove the virtualenv and local state
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
