# Two commands on a fresh machine with only python3: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

# Runtime install: created when missing, refreshed when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

# Test install: every extra the suite needs (dev tools and ray).
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m experiments.run $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The whole suite and the notebooks (nbmake); pytest exit 5 ("no tests collected") fails.
# --dist loadscope: a module's tests share one worker, so its module fixtures run once;
# --no-loadscope-reorder keeps tests/conftest.py's order (the longest modules first).
# The report's width test needs a headless Chromium (Debian's package; CI runs as root).
test: lint
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder tests notebooks --nbmake ; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_power_sim.py

clean:
	rm -rf $(VENV) outputs multirun
