#!/usr/bin/python3
"""Where a swarm download's CPU goes, phase by phase, from `bench.py peers --perf-swarm` records.

    bench/perf_phases.py /tmp/minibt-bench/perf-peers5-minibt-0.data \
                         /tmp/minibt-bench/perf-peers200-minibt-0.data

For each record: the leecher is the process with `verify-*` threads, the seeders are the other
minibt processes (threads `peer-*`, `minibt`, `listener`, `announcer`). Samples (cpu-clock at
999 Hz on each core, so about 1 ms of CPU each) are split into the first 0.3 s of the leecher's
life (connections come up), the middle, and the last 0.15 s (completion and teardown), and by
who took them: the leecher's verifiers, its coordinator (`minibt`), its peer readers and
writers; the seeders' writers (sending blocks) and the rest of the seeders (accepting,
handshakes, their coordinators); everything else (kernel workers, the harness); idle.
"""
import collections
import subprocess
import sys

SETUP_S, END_S = 0.3, 0.15
WHO = ["L-verify", "L-coord", "L-readers", "L-writers", "S-writers", "S-rest", "other", "idle"]


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "pid,tid,comm,time"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) < 3:
            continue
        rows.append((float(f[-1].rstrip(":")), int(f[-2].split("/")[0]), " ".join(f[:-2])))
    return rows


def classify(rows):
    comms = collections.defaultdict(set)
    for _, pid, comm in rows:
        comms[pid].add(comm)
    leecher = {p for p, c in comms.items() if any(k.startswith("verify") for k in c)}
    seeders = {p for p, c in comms.items() if p not in leecher and p and any(
        k.startswith("peer") or k in ("minibt", "listener", "announcer") for k in c)}

    def who(pid, comm):
        if pid in leecher:
            if comm.startswith("verify"):
                return "L-verify"
            if comm.startswith("peer"):
                return "L-writers" if comm.endswith("-w") else "L-readers"
            return "L-coord"
        if pid in seeders:
            return "S-writers" if comm.endswith("-w") else "S-rest"
        return "idle" if pid == 0 else "other"
    return leecher, who


def main(paths):
    print("phase   " + f"{'record':>18}" + "".join(f"{w:>10}" for w in WHO) + "   span_s")
    for path in paths:
        rows = samples(path)
        leecher, who = classify(rows)
        times = [t for t, p, _ in rows if p in leecher]
        start, end = min(times), max(times)
        name = path.rsplit("/", 1)[-1].removeprefix("perf-").removesuffix(".data")
        phases = (("setup", start, start + SETUP_S), ("middle", start + SETUP_S, end - END_S),
                  ("end", end - END_S, end + 0.05))  # + the exit's last samples
        for phase, lo, hi in phases:
            n = collections.Counter(who(p, c) for t, p, c in rows if lo <= t < hi)
            print(f"{phase:7} {name:>18}" + "".join(f"{n[w]:10}" for w in WHO)
                  + f"   {hi - lo:.2f}")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
