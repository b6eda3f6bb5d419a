# The two commands a user needs: `make test` and `make demo`. Everything else is a helper of those.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: install test-deps test lint pytest demo bench clean

# Create the venv when missing and install the project with its test needs. torch comes first, pinned to
# the release with a local CPU build, so the project's own torch requirement installs nothing more.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use (skipped when present; installing needs root): PostgreSQL 15 + PostGIS 3
# for a real pgstac server, Chromium for the screenshot of the tile server's map.
test-deps:
	stac/pgstac.sh install
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check magseg tests benchmarks
	$(VENV)/bin/ruff format --check magseg tests benchmarks
	$(VENV)/bin/mypy

pytest: install test-deps
	$(VENV)/bin/pytest -q

test: lint pytest

demo: install
	$(VENV)/bin/magseg demo --out $(DEMO_OUT)

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
