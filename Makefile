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

# Benchmarks (issue 8; not part of `make test`): see README's "Performance" and bench/bench.py.
# make bench [SIZE=1G] [PIECE=256K,4M] [RUNS=3] [SEEDERS=libtorrent] [CLIENTS=...] [TRACKER=builtin]
# make bench-peers [SIZE=1G] [PIECE=256K] [PEERS=5,50,200] [RUNS=3] [ROUNDS=1]
#   ROUNDS=N: start the swarms afresh and measure every count N times (RUNS downloads each)
# make lesson [SIZE=1G] [PEERS=5,50,200] [LESSON_RUNS=1] [CLIENTS=minibt,aria2,libtorrent,rqbit]
#   CLIENTS=minibt,minibt-alt ALT_MINIBT=/path/to/modified/minibt: A/B a modified leecher
#   ALT_ARGS="--sequential": extra arguments for minibt-alt only (A/B an option)
BENCH_PY ?= /usr/bin/python3
RUNS ?= 3
BENCH_ARGS = $(if $(SIZE),--size $(SIZE)) $(if $(PIECE),--pieces $(PIECE)) --runs $(RUNS) \
	$(if $(SEEDERS),--seeders $(SEEDERS)) $(if $(CLIENTS),--clients $(CLIENTS)) \
	$(if $(TRACKER),--tracker $(TRACKER)) $(if $(BENCH_DIR),--work $(BENCH_DIR)) \
	$(if $(ALT_MINIBT),--minibt-alt $(ALT_MINIBT)) $(if $(ALT_ARGS),--alt-args "$(ALT_ARGS)")

.PHONY: bench bench-peers bench-build bench-profile lesson

bench-build:
	$(CARGO) build --release
	$(CARGO) build --release --features fast-sha1 --target-dir target/fast-sha1

bench: bench-build
	$(BENCH_PY) bench/bench.py clients $(BENCH_ARGS)

bench-peers: bench-build
	$(BENCH_PY) bench/bench.py peers $(BENCH_ARGS) $(if $(PEERS),--peer-counts $(PEERS)) \
		$(if $(ROUNDS),--rounds $(ROUNDS))

# Issue 9's lesson, docs/threads-vs-async.md: one thread per peer (minibt), one event loop (aria2),
# asynchronous I/O in C++ (libtorrent) and async Rust on tokio (rqbit, when on PATH) leeching from
# the same swarms of 5, 50, 200 minibt seeders.
# Prints the table; CSVs in bench/results/peers-DATE*.csv.
LESSON_RUNS ?= 1
LESSON_CLIENTS = $(if $(CLIENTS),$(CLIENTS),minibt,aria2,libtorrent,rqbit)
LESSON_PEERS = $(if $(PEERS),$(PEERS),5,50,200)
lesson: bench-build
	$(BENCH_PY) bench/bench.py peers $(BENCH_ARGS) --runs $(LESSON_RUNS) \
		--clients $(LESSON_CLIENTS) --peer-counts $(LESSON_PEERS)

# One minibt download (default 1 GiB, 256 KiB pieces, one libtorrent seeder) under perf.
bench-profile: bench-build
	$(BENCH_PY) bench/bench.py profile $(BENCH_ARGS)
