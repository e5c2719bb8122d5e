# Every target builds its own virtual environment, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STREAM_PORT ?= $(shell echo $$(($(PORT) + 1)))
# make run seeds a sample floor for the console (`flask --app app sandbox floor`); no: it does not.
SANDBOX_FLOOR ?= yes

.PHONY: run test check e2e lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The development defaults (keys, secrets, the stream server's URL) and the printed links, signed in
# with an agent token, are middleware/commands/dev.py's: nothing secret is on this command line.
run: $(VENV)/.installed
	HOST=$(HOST) PORT=$(PORT) STREAM_PORT=$(STREAM_PORT) SANDBOX_FLOOR=$(SANDBOX_FLOOR) \
	  $(BIN)/python -m middleware.commands.dev

# The whole suite: every real-process test (gunicorn, the stream server, Kamailio, nginx, PostgreSQL,
# Redis, subprocesses) included.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q --ignore=tests/e2e

# The daily loop: the suite without the tests marked slow (real processes); prints its time.
check: $(VENV)/.installed
	@start=$$(date +%s); $(BIN)/python -m pytest -m "not slow" -n 2 -q --ignore=tests/e2e; \
	  status=$$?; echo "make check: $$(( $$(date +%s) - start )) s"; exit $$status

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

# The hot paths beside a base tree in the same run (alternating), so a regression shows as a ratio:
# cached lookups against bare Flask, misses over a CRM answering in 50 ms, durable ingest with the
# deliverers running (2 x 4 threads, then the shipped 2 x 64), and Kamailio's caller name (when
# Kamailio is installed). BASE: a git revision or a checkout.
BASE ?= $(shell git rev-parse --verify -q origin/main >/dev/null && echo origin/main || echo main)
BENCH_CRM_MS ?= 50

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.lookup --against $(BASE) --seconds 2 --rounds 4 --misses 100 --crm-ms $(BENCH_CRM_MS)
	$(BIN)/python -m benchmarks.webhook_ingest --against $(BASE) --rounds 2 --events 4000 --workers 2 --threads 4 --crm-ms $(BENCH_CRM_MS) --drain 0
	$(BIN)/python -m benchmarks.webhook_ingest --against $(BASE) --rounds 2 --events 5000 --crm-ms $(BENCH_CRM_MS) --drain 0
	if command -v kamailio >/dev/null; then $(BIN)/python -m benchmarks.pbx_ring --against $(BASE) --rounds 100 --crm-ms $(BENCH_CRM_MS); fi

clean:
	rm -rf $(VENV) instance .pytest_cache
