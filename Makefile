# Every target builds its own virtual environment, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STREAM_PORT ?= $(shell echo $$(($(PORT) + 1)))
DEV_TOKEN_SECRET := dev-token-secret-for-make-run-only
# make run seeds sample agents and calls (`flask --app app sandbox floor`); SANDBOX_FLOOR=no skips it.
SANDBOX_FLOOR ?= yes

.PHONY: run test e2e lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	@echo "Serving on http://$(HOST):$(PORT) with the sandbox dialer and CRM."
	@echo "Try:  curl -X POST http://$(HOST):$(PORT)/api/v1/calls -H 'X-API-Key: dev-key' -H 'Content-Type: application/json' -d '{\"to\": \"072 123 4567\", \"agent\": \"6000\"}'"
	@echo "  or open http://$(HOST):$(PORT)/click-to-call?to=0721234567&agent=6000&api_key=dev-key"
	@echo "Screen-pop streams: the stream server on http://$(HOST):$(STREAM_PORT) (the /agent page opens them there)."
	@echo "  agent 6000's page: http://$(HOST):$(PORT)/agent#agent=6000&token=$$(CTI_TOKEN_SECRET=$${CTI_TOKEN_SECRET:-$(DEV_TOKEN_SECRET)} $(BIN)/flask --app app agent token 6000 2>/dev/null)"
	@echo "  the supervisor console: http://$(HOST):$(PORT)/console#token=$$(CTI_API_KEYS=$${CTI_API_KEYS:-dev-key} CTI_TOKEN_SECRET=$${CTI_TOKEN_SECRET:-$(DEV_TOKEN_SECRET)} $(BIN)/flask --app app supervisor token Supervisor 2>/dev/null)"
	$(if $(filter yes,$(SANDBOX_FLOOR)),-@CTI_API_KEYS=$${CTI_API_KEYS:-dev-key} CTI_WEBHOOK_SECRET=$${CTI_WEBHOOK_SECRET:-dev-secret} $(BIN)/flask --app app sandbox floor)
	CTI_API_KEYS=$${CTI_API_KEYS:-dev-key} CTI_WEBHOOK_SECRET=$${CTI_WEBHOOK_SECRET:-dev-secret} \
	  CTI_TOKEN_SECRET=$${CTI_TOKEN_SECRET:-$(DEV_TOKEN_SECRET)} \
	  CTI_STREAM_URL=$${CTI_STREAM_URL:-http://$(HOST):$(STREAM_PORT)} \
	  CTI_STREAM_ORIGINS=$${CTI_STREAM_ORIGINS:-http://$(HOST):$(PORT),http://localhost:$(PORT)} \
	  HOST=$(HOST) PORT=$(PORT) STREAM_PORT=$(STREAM_PORT) $(BIN)/python -m middleware.serve

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q --ignore=tests/e2e

# End-to-end tests in Debian's headless Chromium (installed here when missing; needs root or sudo).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

$(VENV)/.e2e-installed: $(VENV)/.installed | $(CHROMIUM)
	$(BIN)/python -m pip install --quiet -e '.[dev,e2e]'
	touch $@

e2e: $(VENV)/.e2e-installed
	E2E_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -p no:xdist tests/e2e

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance .pytest_cache
