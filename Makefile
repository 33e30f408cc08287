# issuebridge: two commands on a fresh machine.
#
#   make run    set up, build, and serve the console (SQLite; demo mode
#               without Sentry credentials) at http://127.0.0.1:3000
#   make test   set up, build, and run every test: unit, SQLite and
#               PostgreSQL integration, SSR, and the browser tests in Chromium
#
# Set-up is idempotent and installs only what is missing. Nothing downloads a
# binary: tools come from crates.io, npm and Debian.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

OUTPUT_NAME := issuebridge
SITE_ROOT   := target/site
WASM_TARGET := wasm32-unknown-unknown
WASM_FILE   := target/$(WASM_TARGET)/wasm-release/issuebridge_app.wasm
# The CLI must match the wasm-bindgen crate in Cargo.lock to the patch level.
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/"/, "", $$3); print $$3 }' Cargo.lock)
# The splitter reads what Leptos' `#[lazy_route]` (wasm_split_helpers)
# leaves in the module; both are released together under one version.
WASM_SPLIT_VERSION = $(shell awk '/^name = "wasm_split_helpers"$$/ { getline; gsub(/"/, "", $$3); print $$3 }' Cargo.lock)
# The splitter needs the linker's relocations to cut the module apart. Set
# for every WASM build here (`make check` too), so that neither finds its
# cache built with other flags. Cargo ignores it when RUSTFLAGS is set: keep
# that out of the environment when building the front end.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS := -Clink-args=--emit-relocs
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# The hydration script asks for <name>_bg.wasm or <name>.wasm depending on
# whether LEPTOS_OUTPUT_NAME was set while the server compiled; keep it out
# of the compile and ship both names below.
unexport LEPTOS_OUTPUT_NAME

.PHONY: run test bench fuzz soak setup setup-e2e front server test-unit test-e2e check clean-site

run: setup front server
	target/release/issuebridge serve

test: setup setup-e2e test-unit front server test-e2e

## Set-up ---------------------------------------------------------------------

setup:
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	@if [ "$$(wasm-bindgen --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (the lockfile's version)"; \
	  cargo install wasm-bindgen-cli --version '$(WASM_BINDGEN_VERSION)'; \
	fi
	@# wasm-split-cli prints no version; cargo's list of installs knows it.
	@if ! cargo install --list | grep -qx 'wasm_split_cli_support v$(WASM_SPLIT_VERSION):'; then \
	  echo "installing wasm-split-cli $(WASM_SPLIT_VERSION) (the lockfile's wasm_split_helpers)"; \
	  cargo install --locked wasm_split_cli_support --version '$(WASM_SPLIT_VERSION)' --features build-binary; \
	fi
	@command -v brotli >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y brotli; }

setup-e2e: end2end/node_modules/.installed
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# Playwright's npm package downloads no browser; the tests use Debian's.
end2end/node_modules/.installed: end2end/package.json end2end/package-lock.json
	cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	touch $@

## Builds -----------------------------------------------------------------------

# The hydrating front end: a size-optimised WASM bound by wasm-bindgen, plus
# the stylesheet and static assets, all under target/site, each beside its
# brotli and gzip copies: the server sends those to browsers that accept
# them (server/src/assets.rs), the WASM at about a fifth of its size.
# wasm-split first cuts every page but the board out of the module (the
# `split_pages!` groups in app/src/lib.rs) into files of their own, which
# the browser fetches when one of their pages is first shown; wasm-bindgen
# then binds what is left, keeping the exports the split files link
# against. The folder is made anew, so no split file of an earlier build is
# left behind. Each split file's name then gets a hash of its content
# (wasm-split numbers its shared chunks, and names a group's file by where
# it is declared): a console left open across a deployment asks for its own
# build's files and finds none, rather than loading another build's code
# into its module.
# Compressed before the WASM gets its second name, so brotli's slowest
# level runs on it once.
front:
	cargo build -p issuebridge-app --lib --target $(WASM_TARGET) --no-default-features --features hydrate --profile wasm-release
	rm -rf $(SITE_ROOT)/pkg
	mkdir -p $(SITE_ROOT)/pkg
	wasm-split-cli $(WASM_FILE) $(SITE_ROOT)/pkg --target web --out-name $(OUTPUT_NAME)
	wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle --out-dir $(SITE_ROOT)/pkg --out-name $(OUTPUT_NAME) $(SITE_ROOT)/pkg/$(OUTPUT_NAME).wasm
	shopt -s nullglob; for path in $(SITE_ROOT)/pkg/chunk_*.wasm $(SITE_ROOT)/pkg/split_*.wasm; do \
	  file="$${path##*/}"; hashed="$${file%.wasm}.$$(sha256sum "$$path" | cut -c1-16).wasm"; \
	  mv "$$path" "$(SITE_ROOT)/pkg/$$hashed"; \
	  echo "s|\"./$$file\"|\"./$$hashed\"|"; \
	done > target/split-names.sed
	sed -i -f target/split-names.sed $(SITE_ROOT)/pkg/__wasm_split.js
	cp style/main.css $(SITE_ROOT)/pkg/$(OUTPUT_NAME).css
	cp -R public/. $(SITE_ROOT)/
	find $(SITE_ROOT) -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.svg' \) \
	  ! -name '$(OUTPUT_NAME).wasm' -exec brotli --best --force {} + -exec gzip --best --force --keep {} +
	for copy in '' .br .gz; do \
	  cp $(SITE_ROOT)/pkg/$(OUTPUT_NAME)_bg.wasm$$copy $(SITE_ROOT)/pkg/$(OUTPUT_NAME).wasm$$copy; \
	done

server:
	cargo build -p issuebridge-server --release --bin issuebridge

## Tests --------------------------------------------------------------------------

# One package at a time: testing the workspace at once would unify features
# and build leptos twice.
test-unit:
	@pg_isready -q -h 127.0.0.1 -p 5432 || echo "warning: no PostgreSQL at 127.0.0.1:5432: the tests' PostgreSQL halves will be skipped and reported as passed (CI=true makes them fail)" >&2
	cargo test -p issuebridge --features server,testing
	cargo test -p issuebridge-app --features ssr
	cargo test -p issuebridge-server

test-e2e:
	cd end2end && npx playwright test

# Ten minutes (SOAK_SECONDS) of mixed traffic on two instances sharing one
# PostgreSQL database, PostgreSQL restarted once, one instance killed and
# started again; nothing acknowledged may be lost or applied twice. Restarts
# this machine's PostgreSQL cluster (pg_ctlcluster): not for a shared server.
SOAK_SECONDS ?= 600
soak: setup
	cargo build -p issuebridge-server --release --features bench --bin issuebridge --bin issuebridge-bench
	BENCH_PHASES=soak SOAK_SECONDS=$(SOAK_SECONDS) target/release/issuebridge-bench

# Property-based fuzzing of every parser of outside input (tests/fuzz.rs,
# server/tests/api/fuzz.rs): $(FUZZ_CASES) cases of each of the core's 11
# properties (optimised, since most of the million run there) and
# $(FUZZ_HTTP_CASES) requests of each of the 5 router-level loops on both
# stores: over a million inputs in all. `make test` runs a few hundred.
FUZZ_CASES ?= 100000
FUZZ_HTTP_CASES ?= 2000
fuzz: setup
	@pg_isready -q -h 127.0.0.1 -p 5432 || echo "warning: no PostgreSQL at 127.0.0.1:5432: the PostgreSQL halves will be skipped" >&2
	ISSUEBRIDGE_FUZZ_CASES=$(FUZZ_CASES) cargo test --release -p issuebridge --features server,testing --test fuzz
	ISSUEBRIDGE_FUZZ_HTTP_CASES=$(FUZZ_HTTP_CASES) cargo test -p issuebridge-server --test api -- fuzz::
	@echo "fuzzed: $$(( $(FUZZ_CASES) * 11 + $(FUZZ_HTTP_CASES) * 5 * 2 )) generated inputs"

# Acknowledged deliveries per second, latency and memory, into BENCHMARKS.md.
bench: setup
	cargo build -p issuebridge-server --release --features bench --bin issuebridge --bin issuebridge-bench
	target/release/issuebridge-bench

check:
	cargo check -p issuebridge-server --tests
	cargo check -p issuebridge-app --lib --target $(WASM_TARGET) --no-default-features --features hydrate

clean-site:
	rm -rf $(SITE_ROOT)
