# Two commands on a fresh machine with python3 and make: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench browser clean

# (Re)install when the venv is missing or pyproject.toml changed; the package is editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -q -e '.[test,lint]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/harness run suites/quickstart.yaml -o results --report reports/quickstart.html

# ruff (lint + import order) and mypy, both configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check harness tests
	$(BIN)/mypy

test: $(STAMP) browser
	$(BIN)/python -m pytest tests --ignore=tests/benchmarks

# The report test opens the HTML in a real headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	      echo "warning: could not install chromium; the browser test will fail in CI"; \
	  else echo "note: install Chromium (e.g. apt-get install chromium) to run the browser test"; fi

bench: $(STAMP)
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable -p no:cacheprovider -s

clean:
	rm -rf $(VENV) results/*.json reports/*.html reports/*.png .pytest_cache
