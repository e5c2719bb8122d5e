# Every target builds its own virtual environment, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench clean

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
	CTI_API_KEYS=$${CTI_API_KEYS:-dev-key} CTI_WEBHOOK_SECRET=$${CTI_WEBHOOK_SECRET:-dev-secret} \
	  HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn app:app --config gunicorn.conf.py

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance .pytest_cache
