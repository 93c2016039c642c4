# The only entry points a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest bench bench-quick clean demo thermostat

# Browser tests drive Debian's chromium (playwright cannot download browsers here).
CHROMIUM := /usr/bin/chromium
# tests/test_redis_cache.py starts its own redis-server (no system service is needed).
REDIS_SERVER := /usr/bin/redis-server

$(STAMP): pyproject.toml
	test -x $(CHROMIUM) || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	test -x $(REDIS_SERVER) || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check embedkit tests benchmarks scripts examples
	$(BIN)/ruff format --check embedkit tests benchmarks scripts examples

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: a suite that runs nothing proves nothing.
pytest: $(STAMP)
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing the run"; fi; \
	exit $$rc

test: lint typecheck pytest

# benchmarks/serving.py loads the server with Debian's wrk. Each benchmark writes
# benchmarks/results/<name>.json (<name>-quick.json with --quick); report.py then
# writes benchmarks/results/README.md and its charts from every result there.
WRK := /usr/bin/wrk

bench: $(STAMP)
	test -x $(WRK) || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	@mkdir -p benchmarks/results
	$(BIN)/python benchmarks/core.py --json benchmarks/results/core.json
	$(BIN)/python benchmarks/serving.py --json benchmarks/results/serving.json
	$(BIN)/python benchmarks/scale.py --json benchmarks/results/scale.json
	$(BIN)/python benchmarks/live.py --json benchmarks/results/live.json
	$(BIN)/python benchmarks/report.py

bench-quick: $(STAMP)
	test -x $(WRK) || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	@mkdir -p benchmarks/results
	$(BIN)/python benchmarks/core.py --quick --json benchmarks/results/core-quick.json
	$(BIN)/python benchmarks/serving.py --quick --json benchmarks/results/serving-quick.json
	$(BIN)/python benchmarks/scale.py --quick --json benchmarks/results/scale-quick.json
	$(BIN)/python benchmarks/live.py --quick --json benchmarks/results/live-quick.json
	$(BIN)/python benchmarks/report.py

# The seller portal example (examples/seller_portal): makes its data once, then serves it.
PORT ?= 8000

demo: $(STAMP)
	test -f examples/seller_portal/data/meta.json || $(BIN)/python examples/seller_portal/generate.py
	$(BIN)/python -m examples.seller_portal.app --port $(PORT)

# The thermostat example (examples/thermostat_app): simulated homes stream readings into
# live embedded charts. It simulates its history at start-up, so there is nothing to
# generate first. Its port is 8001 unless PORT is given (make thermostat PORT=8080).
thermostat: $(STAMP)
	$(BIN)/python -m examples.thermostat_app.app --port $(if $(filter file,$(origin PORT)),8001,$(PORT))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
