#!/usr/bin/python3
"""What one connection costs a minibt seeder, in CPU, measured exactly.

    bench/conn_cost.py --torrent T --from DIR [--minibt BIN] [--connections 200] [--rounds 5]

Starts one seeder of torrent T (data in DIR, complete) on 127.0.0.250 and puts it in a cgroup
of its own (cgroup v1 `cpuacct`, which counts CPU to the nanosecond, threads that have ended
included: /proc's per-process counters tick in 10 ms steps, too coarse for this). Then, one
after another, it makes N connections the way an idle leecher in `make bench-peers` does:
handshake, read the seeder's bitfield, send `interested`, wait for `unchoke`, close. Prints the
seeder's CPU per connection, the median of the rounds. Needs root (the cgroup) and loopback.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import time

from bench import info_hash_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CGROUP = "/sys/fs/cgroup/cpuacct/minibt-conn-cost"
ADDR = ("127.0.0.250", 29999)


def cpu_seconds():
    with open(os.path.join(CGROUP, "cpuacct.usage")) as f:
        return int(f.read()) / 1e9


def one_connection(ih):
    with socket.create_connection(ADDR, timeout=5) as s:
        s.sendall(bytes([19]) + b"BitTorrent protocol" + bytes(8) + ih + os.urandom(20))
        buf = b""
        while len(buf) < 68:
            got = s.recv(4096)
            if not got:
                raise SystemExit("the seeder closed during the handshake")
            buf += got
        buf, interested = buf[68:], False
        for _ in range(1000):
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                length = struct.unpack(">I", buf[:4])[0]
                msg, buf = buf[4:4 + length], buf[4 + length:]
                if length and msg[0] == 5 and not interested:  # bitfield
                    s.sendall(b"\0\0\0\1\2")
                    interested = True
                if length and msg[0] == 1:  # unchoke
                    return
            got = s.recv(4096)
            if not got:
                raise SystemExit("the seeder closed before unchoking us")
            buf += got
        raise SystemExit("no unchoke after 1000 reads")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minibt", default=os.path.join(ROOT, "target/release/minibt"))
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--from", dest="data", required=True)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    ih = bytes.fromhex(info_hash_of(a.minibt, a.torrent))
    os.makedirs(CGROUP, exist_ok=True)
    seeder = subprocess.Popen(
        [a.minibt, "seed", a.torrent, "--from", a.data, "--no-tracker", "-q", "--port",
         str(ADDR[1]), "--bind-ip", ADDR[0], "--max-peers", "250"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open(os.path.join(CGROUP, "cgroup.procs"), "w") as f:
            f.write(str(seeder.pid))
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(ADDR, timeout=0.5).close()
                break
            except OSError:
                if seeder.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the seeder did not start listening")
                time.sleep(0.05)
        for _ in range(20):  # warm-up
            one_connection(ih)
        per_connection = []
        for _ in range(a.rounds):
            time.sleep(0.5)
            before = cpu_seconds()
            for _ in range(a.connections):
                one_connection(ih)
            time.sleep(0.3)  # the last connection's teardown
            per_connection.append((cpu_seconds() - before) / a.connections * 1e3)
        per_connection.sort()
        print(f"{a.minibt}: the seeder's CPU per connection {per_connection[len(per_connection) // 2]:.3f} ms "
              f"(rounds of {a.connections}: {' '.join(f'{x:.3f}' for x in per_connection)})")
    finally:
        seeder.kill()
        seeder.wait()
        try:
            os.rmdir(CGROUP)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
