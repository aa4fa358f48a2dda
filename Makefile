# Orderly. `make demo` runs the main job end to end; `make test` runs every check.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# PGlite loads its WebAssembly through import(), which Jest's VM allows only with this flag.
JEST := NODE_OPTIONS=--experimental-vm-modules jest

.PHONY: install build demo up test lint typecheck unit integration bench services clean

install:
	@scripts/bootstrap.sh

build: install
	@tsc -b

demo: build
	@scripts/demo.sh

up: build
	@KEEP=1 scripts/demo.sh

services:
	@scripts/services.sh

lint: install
	eslint .

typecheck: build
	tsc -p tsconfig.check.json

unit: install
	$(JEST) --selectProjects unit

integration: build services
	$(JEST) --selectProjects integration --runInBand

test: lint typecheck unit integration

bench: build services
	tsx bench/run.ts

clean:
	rm -rf */dist bots/*/dist .orderly
