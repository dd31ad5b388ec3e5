# minibt — common tasks. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: build release test lint fmt samples clean

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

samples:
	bash sample-torrents/generate.sh

clean:
	$(CARGO) clean
