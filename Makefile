# Orderly. `make demo` runs the main job end to end; `make test` runs every check.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# PGlite loads its WebAssembly through import(), which Jest's VM allows only with this flag.
JEST := NODE_OPTIONS=--experimental-vm-modules jest

.PHONY: install build demo up test lint format typecheck unit integration bench soak services clean images images-test images-lint

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

# Formatting (prettier, .prettierrc.json: TypeScript files), eslint, import cycles
# (scripts/import-cycles.js, madge: about 30 s). `make format` rewrites what the check refuses.
lint: install images-lint
	prettier --check --log-level warn "**/*.ts"
	eslint .
	@node scripts/import-cycles.js

format: install
	prettier --write --log-level warn "**/*.ts"

# Dockerfiles (dockerfilelint) and images/compose.yaml (Compose specification schema): about 1 s.
images-lint:
	@[ -d images/lint/node_modules ] || npm ci --prefix images/lint --no-audit --no-fund --loglevel=error
	@node images/lint/check.js

# Container images with buildah (no engine needed); slow (minutes), so not part of `make test`.
images:
	@images/build.sh

images-test:
	@images/test.sh

typecheck: build
	tsc -p tsconfig.check.json

unit: install
	$(JEST) --selectProjects unit

# --forceExit: a handle some suite leaves open after a passing run (not yet found) must not hang CI.
integration: build services
	$(JEST) --selectProjects integration --runInBand --forceExit

test: lint typecheck unit integration

bench: build services
	tsx bench/run.ts

# Runs under random real faults for SOAK_MINUTES (15); writes bench/soak.json. Not part of `make test`.
soak: build services
	tsx bench/soak.ts

clean:
	rm -rf */dist bots/*/dist .orderly
