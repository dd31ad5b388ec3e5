#!/usr/bin/env bash
# Regenerates the sample content (deterministic: a seeded xorshift stream per file) under
# sample-torrents/content/ and rebuilds the sample .torrent files with `minibt create`.
# The content is not committed (see .gitignore); the .torrent files are, and regenerating them
# must give byte-identical files (no creation date is written), so
#   bash sample-torrents/generate.sh && git diff --exit-code sample-torrents
# checks that content generation and `minibt create` are stable.
# Run with `make samples`. Needs python3 (for the content generator) and cargo.
set -euo pipefail
cd "$(dirname "$0")"
TRACKER=http://127.0.0.1:6969/announce

rm -rf content
mkdir -p content
python3 - content <<'PYEOF'
import os, sys
root = sys.argv[1]

def stream(seed, n):
    # xorshift64 so the bytes never depend on the Python version
    x = (seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF or 1
    out = bytearray()
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        out += x.to_bytes(8, "little")
    return bytes(out[:n])

def write(rel, n, seed):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(stream(seed, n))

write("sample-single.bin", (1 << 20) + 123, 1)
write("sample-multi/empty.txt", 0, 2)
write("sample-multi/tiny", 1, 3)
write("sample-multi/data/block-minus-one", 16383, 4)
write("sample-multi/data/block-plus-one", 16385, 5)
write("sample-multi/data/nested/big.bin", 3 * (1 << 20) + 7, 6)
write("sample-multi/zz-last", 100, 7)
PYEOF

minibt() { cargo run -q --manifest-path ../Cargo.toml -- "$@"; }
minibt create content/sample-single.bin -t "$TRACKER" --no-date -f -o single.torrent
minibt create content/sample-multi -t "$TRACKER" -t http://127.0.0.1:6970/announce \
  -l 32K --no-date -f -c "minibt multi-file sample" -o multi.torrent
minibt create content/sample-multi -t "$TRACKER" -l 64K --private --no-date -f \
  -c "minibt private sample" -o multi-private.torrent
