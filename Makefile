# Two commands on a fresh machine with python3 and make: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test bench clean

# (Re)install when the venv is missing or pyproject.toml changed; the package is editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/harness run suites/quickstart.yaml -o results --report reports/quickstart.html

test: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/benchmarks

bench: $(STAMP)
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable -p no:cacheprovider -s

clean:
	rm -rf $(VENV) results/*.json reports/*.html reports/*.png .pytest_cache
