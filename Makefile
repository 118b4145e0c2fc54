# The two commands of the README: `make demo` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV   ?= .venv
REG     = $(VENV)/bin/registry
SCALE  ?= 50000
SEED   ?= 1
DEMO_DIR ?= var/demo-$(SCALE)-seed$(SEED)
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The demo's scan links and QR codes point at the demo server itself (another PORT included),
# unless REGISTRY_PUBLIC_BASE_URL is set in the environment.
DEMO_ENV = REGISTRY_PUBLIC_BASE_URL="$${REGISTRY_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}"

.PHONY: setup system db demo test bench clean-db help

help:
	@echo "make demo   # set-up, database, demo data ($(SCALE) addresses), API on http://$(HOST):$(PORT)"
	@echo "make test   # set-up, then the whole test suite against a real PostGIS"
	@echo "SCALE=1600000 make demo   # the whole city"

system:
	@bash scripts/setup-system.sh

$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing the registry"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	# the client generator of tests/api/test_openapi_contract.py pins an older typer than the CLI's: its one
	# other dependency first, then it without its deps (installed last, pip has no conflict to report)
	$(VENV)/bin/pip install -q 'ruamel.yaml>=0.18' && $(VENV)/bin/pip install -q --no-deps 'openapi-python-client>=0.29,<0.30'
	@touch $@

# the map page's browser library, from the npm registry at the versions of web/package-lock.json
web/node_modules/.installed: web/package.json web/package-lock.json
	@echo "==> installing the map page's MapLibre GL JS (npm ci in web/)"
	cd web && npm ci --no-audit --no-fund
	@touch $@

setup: system $(VENV)/.installed web/node_modules/.installed

db: setup
	@echo "==> starting the managed PostgreSQL + PostGIS cluster and migrating"
	$(REG) db start
	$(REG) db migrate

demo: db
	@echo "==> loading the real Huzhou divisions as they were before the three real township adjustments"
	$(REG) load reference --before-adjustments --skip-if-loaded
	@echo "==> generating the synthetic city: $(SCALE) addresses, seed $(SEED)"
	@if [ -f $(DEMO_DIR)/manifest.json ]; then echo "already generated in $(DEMO_DIR)"; \
	 else $(REG) generate --addresses $(SCALE) --seed $(SEED) --out $(DEMO_DIR); fi
	@echo "==> loading it (on the state before the adjustments, then carried through them; idempotent)"
	$(REG) load city $(DEMO_DIR)
	@echo "==> issuing the doorplates of the whole city (idempotent: a re-run issues nothing)"
	$(REG) plates issue --division 330500
	@$(DEMO_ENV) $(REG) demo urls --base-url http://$(HOST):$(PORT)
	@echo "==> serving the API on http://$(HOST):$(PORT) (Ctrl-C to stop)"
	$(DEMO_ENV) $(REG) serve --host $(HOST) --port $(PORT)

test: setup
	$(VENV)/bin/pytest -q

clean-db:
	-$(REG) db stop
	rm -rf var/pgdata
