# The two commands that matter: `make lab-up` and `make test`.
PYTHON ?= python3
VENV   := .venv
LAB    := $(VENV)/bin/lab
PYTEST := $(VENV)/bin/pytest
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE  := azlab-node:$(VERSION)
SCENARIO ?= active-standby

.PHONY: lab-up lab-down lab-status test test-unit test-integration images engine venv bench clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

engine:
	bash scripts/ensure-engine.sh

images: engine venv
	bash scripts/build-base-image.sh debian:bookworm-slim
	$(LAB) build-image --tag $(IMAGE)

lab-up: images
	$(LAB) up $(SCENARIO)

lab-down: venv
	$(LAB) down

lab-status: venv
	$(LAB) status

test: images
	$(PYTEST) -v -rs

test-unit: venv
	$(PYTEST) -v tests/unit tests/golden tests/errors

test-integration: images
	$(PYTEST) -v -m integration

bench: images
	$(VENV)/bin/python scripts/bench_lab_up.py

clean:
	-$(LAB) down
	rm -rf $(VENV)
