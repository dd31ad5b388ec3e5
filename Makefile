# minibt — common tasks. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: build release test lint fmt samples demo clean

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
