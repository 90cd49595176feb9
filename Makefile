# The two commands that matter: `make lab-up` and `make test`.
PYTHON ?= python3
VENV   := .venv
LAB    := $(VENV)/bin/lab
PYTEST := $(VENV)/bin/pytest
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE  := azlab-node:$(VERSION)
SCENARIO ?= active-standby
PROFILE ?= azure
RUNS ?= 1
RESULTS ?= results
# More `lab up` options, e.g. UP_ARGS="--profile fast --lab mine".
UP_ARGS ?=

.PHONY: lab-up lab-down lab-status test test-all test-unit test-integration test-browser browser graphs images base-image node-image engine compose-tool venv bench bench-throughput bench-plan bench-side-by-side clean failover failover-all figures test-figures

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

engine:
	bash scripts/ensure-engine.sh

# Debian's docker-compose beside the engine, for the Compose test (tests/integration/test_compose.py).
compose-tool:
	bash scripts/ensure-engine.sh --compose

# The node image's prerequisites side by side (a make of its own, so `make lab-up` needs no -j):
# the venv's pip install beside the engine's apt install and the base image's mmdebstrap.
images:
	@$(MAKE) --no-print-directory -j3 --output-sync=line node-image

node-image: base-image venv
	$(LAB) build-image --tag $(IMAGE)

base-image: engine
	bash scripts/build-base-image.sh debian:bookworm-slim

lab-up: images
	$(LAB) up $(SCENARIO) $(UP_ARGS)

lab-down: venv
	$(LAB) down

lab-status: venv
	$(LAB) status

# Debian's chromium for the browser tests (tests/browser), installed only when missing (~18 s the first time).
browser:
	bash scripts/ensure-browser.sh

# Every scenario and every claim of the README; the long sweeps (marker sweep: every ESP row, every
# fault timed, every Ctrl-C moment) and the published figures are in `make test-all`. The tests without
# Docker first, on both cores; then the real labs and the browser, one at a time (their timings count).
test: images browser
	$(PYTEST) -q -rs -n 2 -m "not figures and not sweep" tests/unit tests/golden tests/errors
	$(PYTEST) -v -rs --durations=25 -m "not figures and not sweep" tests/integration tests/browser

# Everything: `make test`, the sweeps and `make test-figures` (about an hour).
test-all: images compose-tool browser
	$(PYTEST) -v -rs

# The README's published failover figures re-measured, each against its committed report (~40 min).
test-figures: images
	$(PYTEST) -v -rs -m figures

# The browser tests that need no lab (the harness); the console's own need one: make test.
test-browser: venv browser
	$(PYTEST) -v -rs -m "browser and not integration"

# The README's topology pictures (docs/graphs/), one per built-in scenario, from the plans alone.
graphs: venv
	$(VENV)/bin/python scripts/graphs.py

test-unit: venv
	$(PYTEST) -v tests/unit tests/golden tests/errors

test-integration: images compose-tool
	$(PYTEST) -v -m integration

# Planned maintenance and unplanned loss of the (first) active instance, timed
# against the profile's targets; exits non-zero when either misses.
# SCENARIO=active-active or dual-redundancy for the other gateway modes.
failover: images
	@planned=0; unplanned=0; \
	$(LAB) failover --scenario $(SCENARIO) --profile $(PROFILE) --fault maintenance --runs $(RUNS) --out $(RESULTS)/$(SCENARIO)-$(PROFILE)-planned || planned=$$?; \
	$(LAB) failover --scenario $(SCENARIO) --profile $(PROFILE) --fault kill --runs $(RUNS) --out $(RESULTS)/$(SCENARIO)-$(PROFILE)-unplanned || unplanned=$$?; \
	echo "planned: $(RESULTS)/$(SCENARIO)-$(PROFILE)-planned/summary.md (exit $$planned)"; \
	echo "unplanned: $(RESULTS)/$(SCENARIO)-$(PROFILE)-unplanned/summary.md (exit $$unplanned)"; \
	[ $$planned -eq 0 ] && [ $$unplanned -eq 0 ]

# Every built-in scenario's suite (its `suite:` entries, on each profile they list) through `lab failover`,
# in one table: $(RESULTS)/failover-all/summary.md and summary.json (about an hour); exits non-zero unless
# every row passes. ONLY=active-standby,... PROFILES=fast RUNS=3 OUT=DIR to vary.
failover-all: images
	$(VENV)/bin/python scripts/failover_all.py --runs $(RUNS) --out $(or $(OUT),$(RESULTS)/failover-all) \
	  $(if $(ONLY),--only $(ONLY)) $(if $(PROFILES),--profiles $(PROFILES))

# Every failover figure the README publishes, re-measured with the command beside it, into
# docs/figures/NAME/ (about an hour on 2 cores; ONLY=as-fast-kill,... picks rows).
figures: images
	bash scripts/measure-figures.sh

bench: images
	$(VENV)/bin/python scripts/bench_lab_up.py

# One TCP stream through one tunnel, per IPsec policy, against a bare lab bridge
# and VpnGw1's 650 Mbit/s, with where the CPU goes.
bench-throughput: images
	$(VENV)/bin/python scripts/bench_throughput.py

# Planning time (load, check, resolve, transport subnets) of 25 to the most branch
# sites the limits take, and the ratio when the sites double; no Docker.
bench-plan: venv
	$(VENV)/bin/python scripts/bench_plan.py

# Idle CPU (cgroups + the engine's processes), memory and `lab up` time of 1, 2 and 4 default labs
# side by side (--profile fast), and a fast kill failover on the last one; all taken down at the end.
bench-side-by-side: images
	$(VENV)/bin/python scripts/bench_side_by_side.py

clean:
	-$(LAB) down
	rm -rf $(VENV)
