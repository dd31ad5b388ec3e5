# minibt — common tasks. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: build release test lint fmt samples demo clean fuzz

build:
	$(CARGO) build

release:
	$(CARGO) build --release

test: lint
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# A whole swarm on this machine: built-in tracker, 3 seeders, one download with progress.
demo:
	$(CARGO) run --release --quiet -- demo

samples:
	bash sample-torrents/generate.sh

clean:
	$(CARGO) clean

# Fuzz the parsers of untrusted bytes (fuzz/: bencode/metainfo, wire frames, tracker responses),
# FUZZ_SECONDS each. Needs a nightly toolchain and cargo-fuzz; without them it says how to get
# them and succeeds, so `make test` never depends on it.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS = metainfo wire_frame tracker_response

fuzz:
	@if $(CARGO) +nightly fuzz --version >/dev/null 2>&1; then \
		for t in $(FUZZ_TARGETS); do \
			echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
			$(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 || exit 1; \
		done; \
	else \
		echo "make fuzz: needs a nightly toolchain and cargo-fuzz:"; \
		echo "  rustup toolchain install nightly && cargo install cargo-fuzz"; \
		echo "then: make fuzz FUZZ_SECONDS=30   (targets: $(FUZZ_TARGETS))"; \
	fi
