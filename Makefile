# homestream — the README's two commands are `make up` and `make test`.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help venv dev up down status test test-unit test-integration lint format typecheck clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	@.ci/ensure-python $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	@echo "installing homestream and its Python dependencies into $(VENV)"
	$(BIN)/pip install -q --progress-bar off -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.core
	$(BIN)/pip install -q --progress-bar off -e '.[dev,voice]'
	@touch $@

venv: $(VENV)/.core ## create .venv with homestream installed
dev: $(VENV)/.dev ## .venv plus the test and lint tools and speech-to-text (the voice extra)

up: $(VENV)/.core ## install everything and start the local stack (idempotent)
	$(BIN)/homestream up

down: ## stop the local stack
	$(BIN)/homestream down

status: ## show the stack's services
	$(BIN)/homestream status

test: $(VENV)/.dev ## the whole test suite (starts its own isolated stack)
	$(BIN)/pytest -ra

test-unit: $(VENV)/.dev ## unit tests only (no servers)
	$(BIN)/pytest -ra tests/unit

test-integration: $(VENV)/.dev ## integration tests only
	$(BIN)/pytest -ra tests/integration

lint: $(VENV)/.dev ## ruff lint + format check, import layers, mypy on the pure-logic packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy --strict domain
	$(BIN)/mypy topics streams runtime stores/mosquitto_auth.py \
		stores/event_views.py stores/command_log.py stores/recent_events.py \
		hub/wire.py hub/outbox.py hub/hubclient.py hub/bridge.py hub/mqtt5.py \
		stores/notify_channels.py stores/notify_outbox.py sinks/history_rows.py \
		sinks/notify_rows.py sinks/notify.py gateway/frames.py gateway/subscriptions.py \
		hub/adapters/zcl_map.py hub/adapters/zwave_map.py hub/adapters/base.py \
		hub/adapters/recorder.py hub/hubrun.py \
		speech gateway/voice.py

format: $(VENV)/.dev ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

graphql-schema: $(VENV)/.dev ## rewrite docs/schema.graphql from gateway/graphql (a test checks it)
	$(VENV)/bin/python -m gateway.graphql.sdl

clean: ## remove the venv and caches (not the stack's state)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
