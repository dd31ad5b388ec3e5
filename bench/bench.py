#!/usr/bin/python3
"""minibt's download benchmark (issue 8): minibt against reference clients on loopback.

    bench.py clients   one swarm of seeders per piece size; each client downloads the torrent
                       RUNS times, clients alternating (`make bench`)
    bench.py peers     leechers (minibt by default; `make lesson`: minibt, aria2, libtorrent)
                       against swarms of 5, 50, 200 minibt seeders (`make bench-peers`)
    bench.py profile   one minibt download under `perf record` (cpu-clock samples), top
                       symbols printed (`make bench-profile`)

Every process runs on 127.0.0.x only and is killed at the end (process groups, in `finally`
and on SIGINT/SIGTERM); every wait is bounded. Each download is verified (SHA-1 of the whole
output against the source) before its row counts. All clients are measured the same external
way: wall time from spawn to exit (transmission: to its finish script), user+sys CPU and
context switches from wait4's rusage, peak RssAnon, peak Threads and peak open TCP sockets
summed over the client's process tree sampled from /proc every ~50 ms.

Options come from the command line (see --help) or the Makefile's variables.
"""
import argparse
import csv
import datetime
import hashlib
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
LT_CLIENT = os.path.join(ROOT, "tests", "interop", "lt_client.py")  # shared with the interop tests
SAMPLE_EVERY = 0.05
TREE_EVERY = 20  # samples: once a second
SOCKETS_EVERY = 4  # samples: five times a second


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    text = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1] in mult:
        return int(float(text[:-1]) * mult[text[-1]])
    return int(text)


def human(n):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


# ---- processes --------------------------------------------------------------------------------

class Procs:
    """Every process the benchmark starts, each in its own process group; kill_all ends them."""

    def __init__(self):
        self.procs = []

    def spawn(self, cmd, logfile, **kw):
        out = open(logfile, "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=kw.pop("stdout", out),
                             stderr=out, start_new_session=True, **kw)
        out.close()
        self.procs.append(p)
        return p

    def stop(self, p, grace=3.0):
        """SIGTERM the process group, SIGKILL after `grace` seconds; reap (bounded)."""
        if p.returncode is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            try:  # the leader is gone; a leftover child of its group is not
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_many(self, ps, grace=3.0):
        for p in ps:
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for p in ps:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in ps:
            self.stop(p, grace=0.1)

    def kill_all(self):
        self.stop_many(list(self.procs), grace=2.0)


PROCS = Procs()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---- /proc sampling ---------------------------------------------------------------------------

def tree(pid):
    """pid and its descendants (through /proc/PID/task/TID/children)."""
    out, todo = [], [pid]
    while todo and len(out) < 1000:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return out


def sockets(pid):
    """Open sockets of one process (its TCP connections plus a listener or two)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
    except OSError:
        pass
    return n


def status_fields(pid):
    """(RssAnon KiB, Threads, VmSize KiB) of one process, or None once it is gone."""
    rss = thr = vm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    thr = int(line.split()[1])
                elif line.startswith("VmSize:"):
                    vm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return rss, thr, vm


def stat_sum(procs, fields_wanted):
    """Sum of the given fields of /proc/PID/stat (0-based, counted after the command name)."""
    total = 0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(fields[i]) for i in fields_wanted)
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_seconds(procs):
    """user+sys CPU seconds the processes have used so far (/proc/PID/stat)."""
    return stat_sum(procs, (11, 12)) / os.sysconf("SC_CLK_TCK")  # utime, stime


def minor_faults(procs):
    """Minor page faults the processes have taken so far (/proc/PID/stat minflt)."""
    return stat_sum(procs, (7,))


def census(procs):
    """(tasks on the whole machine, threads in procs summed, the most in one of procs): logged
    by `bench.py peers` to show how close a swarm runs to a task limit."""
    total = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                total += len(os.listdir(f"/proc/{p}/task"))
            except OSError:
                pass
    threads = [(status_fields(p.pid) or (0, 0, 0))[1] for p in procs]
    return total, sum(threads), max(threads, default=0)


def measure(proc, t0, timeout, done_file=None):
    """Sample proc's tree until it exits (or done_file appears: then SIGTERM it).

    Returns (seconds, status, rusage, peak RssAnon KiB, peak threads, peak sockets,
    peak VmSize KiB).

    The sampler shares the 2 cores with the client, so its cost must not grow with what it
    measures: finding the process tree reads one file per thread and counting sockets one link
    per descriptor (a minibt leecher at 200 peers has 407 threads and 401 sockets; sampling both
    every 50 ms took ~0.3 CPU-s of a 2 s download). RssAnon and Threads (one small file per
    process, VmSize from the same file) are read every sample; the tree is refreshed every second and sockets are counted
    every 0.2 s (connections last for the whole download)."""
    peak_rss = peak_thr = peak_sock = peak_vm = 0
    t_done = None
    timed_out = False
    deadline = t0 + timeout
    members, n = [proc.pid], 0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            t_end = time.monotonic()
            break
        if n % TREE_EVERY == 0:
            members = tree(proc.pid)
        rss = thr = sock = vm = 0
        for p in members:
            f = status_fields(p)
            if f:
                rss += f[0]
                thr += f[1]
                vm += f[2]
                if n % SOCKETS_EVERY == 0:
                    sock += sockets(p)
        n += 1
        peak_rss, peak_thr = max(peak_rss, rss), max(peak_thr, thr)
        peak_sock, peak_vm = max(peak_sock, sock), max(peak_vm, vm)
        now = time.monotonic()
        if t_done is None and done_file and os.path.exists(done_file):
            t_done = now
            os.killpg(proc.pid, signal.SIGTERM)
            deadline = now + 10
        if now > deadline:
            log(f"timeout: killing pid {proc.pid}")
            os.killpg(proc.pid, signal.SIGKILL)
            deadline = now + 10
            timed_out = True
        time.sleep(SAMPLE_EVERY)
    peaks = (peak_rss, peak_thr, peak_sock, peak_vm)
    if timed_out:
        return (t_end - t0, -1, ru, *peaks)
    if t_done is not None:  # finished, then stopped by us
        return (t_done - t0, 0, ru, *peaks)
    return (t_end - t0, proc.returncode, ru, *peaks)


# ---- content, torrents, trackers --------------------------------------------------------------

def make_content(path, size):
    """Pseudo-random content (reused when it already has the right size); its SHA-1 hex."""
    digest_path = path + ".sha1"
    if os.path.exists(path) and os.path.getsize(path) == size and os.path.exists(digest_path):
        with open(digest_path) as f:
            return f.read().strip()
    log(f"writing {human(size)} of random content to {path}")
    h = hashlib.sha1()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(4 << 20, left))
            f.write(block)
            h.update(block)
            left -= len(block)
    old = time.time() - 3600  # settled mtime: seeders' resume state may trust it
    os.utime(path, (old, old))
    with open(digest_path, "w") as f:
        f.write(h.hexdigest())
    return h.hexdigest()


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def free_port():
    for _ in range(50):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise SystemExit("no free port on 127.0.0.1")


def make_torrent(minibt, content, piece, url, out):
    subprocess.run([minibt, "create", content, "-t", url, "-o", out, "-l", human(piece),
                    "--no-date", "-f"], check=True, timeout=600, stdout=subprocess.DEVNULL)
    return info_hash_of(minibt, out)


def info_hash_of(minibt, torrent):
    """The torrent's info hash (hex), as `minibt info` shows it."""
    info = subprocess.run([minibt, "info", torrent], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    for line in info.splitlines():
        if line.startswith("info hash:"):
            return line.split()[-1]
    raise SystemExit(f"no info hash in `minibt info {torrent}`")


def start_tracker(kind, minibt, work, port, hashes):
    """opentracker (whitelist of `hashes`) or the built-in tracker on 127.0.0.1:port."""
    if kind == "opentracker":
        d = os.path.join(work, "opentracker")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        # opentracker chroots into -d and drops to nobody: relative, world-readable whitelist.
        with open(os.path.join(d, "whitelist"), "w") as f:
            f.write("".join(h + "\n" for h in hashes))
        os.chmod(os.path.join(d, "whitelist"), 0o644)
        cmd = ["/usr/bin/opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port),
               "-w", "whitelist", "-d", d]
        p = PROCS.spawn(cmd, os.path.join(work, "tracker.log"), cwd=d)
    else:
        p = PROCS.spawn([minibt, "tracker", "--bind", f"127.0.0.1:{port}"],
                        os.path.join(work, "tracker.log"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p
        except OSError:
            if time.monotonic() > deadline or p.poll() is not None:
                raise SystemExit(f"{kind} tracker did not start (see {work}/tracker.log)")
            time.sleep(0.05)


def scrape(port, info_hash_hex, timeout=1.0):
    """BEP 15 UDP scrape: (seeders, completed, leechers) or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        tid = random.getrandbits(32)
        s.sendto(struct.pack(">QII", 0x41727101980, 0, tid), ("127.0.0.1", port))
        data = s.recv(64)
        action, rtid, conn = struct.unpack(">IIQ", data[:16])
        if action != 0 or rtid != tid:
            return None
        s.sendto(struct.pack(">QII", conn, 2, tid) + bytes.fromhex(info_hash_hex),
                 ("127.0.0.1", port))
        data = s.recv(64)
        action, rtid, seeders, completed, leechers = struct.unpack(">IIIII", data[:20])
        return (seeders, completed, leechers) if action == 2 else None
    except (OSError, struct.error):
        return None
    finally:
        s.close()


def wait_seeders(port, info_hash, n, procs, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise SystemExit(f"a seeder exited with {dead[0].returncode}: {' '.join(dead[0].args)}")
        r = scrape(port, info_hash)
        if r and r[0] >= n:
            return
        time.sleep(0.25)
    raise SystemExit(f"only {scrape(port, info_hash)} seeders after {timeout} s, wanted {n}")


# ---- seeders ----------------------------------------------------------------------------------

def seeder_cmd(kind, a, torrent, content_dir, ip, port):
    if kind == "minibt":
        return [a.minibt, "seed", torrent, "--from", content_dir, "--port", str(port),
                "--bind-ip", ip, "-q", "--max-peers", "250"]
    if kind == "libtorrent":
        return [PY, LT_CLIENT, "seed", torrent, content_dir, "--ip", ip, "--timeout", "86400"]
    if kind == "aria2":
        return ["aria2c", torrent, "-d", content_dir, "--check-integrity=true",
                "--seed-ratio=0.0", "--enable-dht=false", "--enable-dht6=false",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true",
                f"--interface={ip}", f"--listen-port={port}", "--summary-interval=0",
                "--console-log-level=warn", "--file-allocation=none", "--bt-max-peers=0"]
    raise SystemExit(f"unknown seeder kind {kind}")


def seed_dir(a, piece):
    """A directory per piece size holding a hard link to the content: minibt keeps its resume
    state beside the data, named after the torrent's name only, so two torrents of the same
    file would overwrite each other's state."""
    d = os.path.join(a.work, f"seed-{human(piece)}")
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, os.path.basename(a.content))
    if not os.path.exists(link):
        os.link(a.content, link)
    return d


def prime_minibt(a, torrent, ih, content_dir):
    """Run one minibt seeder until it seeds, then stop it: it saves its resume state on the
    way out, and every later minibt seeder of this torrent trusts it instead of hashing 1 GiB."""
    name = os.path.basename(a.content)
    if os.path.exists(os.path.join(content_dir, f".{name}.minibt-resume")):
        return
    log(f"priming minibt's resume state in {content_dir}")
    p = start_seeders(["minibt"], a, torrent, content_dir, 240, a.work, "prime")
    try:
        wait_seeders(a.tracker_port, ih, 1, p, 600)
    finally:
        PROCS.stop_many(p, grace=10)


def start_seeders(kinds, a, torrent, content_dir, first_ip, work, tag):
    procs = []
    for i, kind in enumerate(kinds):
        ip = f"127.0.{(first_ip + i) // 250}.{(first_ip + i) % 250 + 2}"
        port = 20000 + (first_ip + i) % 20000
        procs.append(PROCS.spawn(seeder_cmd(kind, a, torrent, content_dir, ip, port),
                                 os.path.join(work, f"seed-{tag}-{kind}-{first_ip + i}.log")))
    return procs


# ---- leechers ---------------------------------------------------------------------------------

LEECH_IP = {"minibt": "127.0.0.2", "minibt+fast-sha1": "127.0.0.2", "minibt-alt": "127.0.0.6",
            "libtorrent": "127.0.0.3", "aria2": "127.0.0.4", "rqbit": "127.0.0.5"}
MINIBT_LEECHERS = ("minibt", "minibt+fast-sha1", "minibt-alt")


def leech_cmd(client, a, torrent, out, report, extra=()):
    ip = LEECH_IP.get(client)
    if client in MINIBT_LEECHERS:
        exe = {"minibt": a.minibt, "minibt+fast-sha1": a.minibt_fast,
               "minibt-alt": a.minibt_alt}[client]
        alt = a.alt_args.split() if client == "minibt-alt" and a.alt_args else []
        return [exe, torrent, "-o", out, "--port", "0", "--bind-ip", ip, "-q", "--report",
                report, "--timeout", "120", *extra, *alt]
    if client == "libtorrent":
        return [PY, LT_CLIENT, "download", torrent, out, "--ip", ip, "--timeout", "600",
                "--exit-at-once", *extra]
    if client == "aria2":
        return ["aria2c", torrent, "-d", out, "--seed-time=0", "--enable-dht=false",
                "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                "--disable-ipv6=true", f"--interface={ip}", "--listen-port=21000-21999",
                "--summary-interval=0", "--console-log-level=warn",
                "--file-allocation=falloc", "--bt-max-peers=0", "--bt-stop-timeout=120", *extra]
    if client == "rqbit":  # `cargo install rqbit` (9.1.0 here): not a Debian package
        # --peer-limit is an option of rqbit itself, not of its `download` subcommand.
        top = []
        if "--peer-limit" in extra:
            i = extra.index("--peer-limit")
            top, extra = list(extra[i:i + 2]), list(extra[:i]) + list(extra[i + 2:])
        return ["rqbit", *top, "--disable-dht", "--disable-dht-persistence", "--disable-lsd",
                "--disable-upnp-port-forward", "--listen-ip", ip, "download", "-o", out,
                "--exit-on-finish", "--disable-http-api", *extra, torrent]
    raise SystemExit(f"unknown client {client}")


def transmission_config(cfg, port):
    import json
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "settings.json"), "w") as f:
        json.dump({
            # 127.0.0.1: its tracker announces leave from there, so that is the address the
            # tracker hands to the seeders that must dial it.
            "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
            "peer-port": port, "peer-port-random-on-start": False,
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
            "utp-enabled": False, "port-forwarding-enabled": False, "rpc-enabled": False,
            "speed-limit-down-enabled": False, "speed-limit-up-enabled": False,
            "ratio-limit-enabled": False, "encryption": 0, "blocklist-enabled": False,
            "peer-limit-global": 500, "peer-limit-per-torrent": 500, "message-level": 1,
        }, f)


def one_run(client, a, torrent, work, out, tag, n_seeders, info_hash):
    """Download once; returns a dict of measurements (verified or not)."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    logf = os.path.join(work, f"leech-{tag}.log")
    report = os.path.join(work, f"report-{tag}.json")
    extra_seeders = []
    if client == "transmission":
        # transmission 3.00 never dials 127.x peers from a tracker: fresh minibt seeders,
        # started once it has announced, dial it. The clock starts when they are spawned.
        cfg = os.path.join(work, "transmission-cfg")
        shutil.rmtree(cfg, ignore_errors=True)
        port = free_port()
        transmission_config(cfg, port)
        done = os.path.join(work, "transmission.done")
        if os.path.exists(done):
            os.remove(done)
        script = os.path.join(work, "transmission-done.sh")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\ntouch '{done}'\n")
        os.chmod(script, 0o755)
        cmd = ["transmission-cli", "-g", cfg, "-w", out, "-p", str(port), "-D", "-U", "-M",
               "-et", "-f", script, torrent]
        before = (scrape(a.tracker_port, info_hash) or (0, 0, 0))[2]
        proc = PROCS.spawn(cmd, logf, stdout=subprocess.DEVNULL)  # stdout: progress lines
        # It announces about 2 s after start; the seeders must find it at the tracker.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            r = scrape(a.tracker_port, info_hash)
            if r and r[2] > before:
                break
            time.sleep(0.1)
        t0 = time.monotonic()
        extra_seeders = start_seeders(["minibt"] * n_seeders, a, torrent, a.content_dir, 100,
                                      work, f"tr-{tag}")
        res = measure(proc, t0, a.timeout, done_file=done)
    else:
        cmd = leech_cmd(client, a, torrent, out, report, a.leech_extra)
        t0 = time.monotonic()
        proc = PROCS.spawn(cmd, logf)
        res = measure(proc, t0, a.timeout)
    PROCS.stop(proc)
    PROCS.stop_many(extra_seeders)
    secs, status, ru, rss, thr, sock, vm = res
    produced = os.path.join(out, os.path.basename(a.content))
    ok = status == 0 and os.path.exists(produced) and \
        os.path.getsize(produced) == a.size and sha1_file(produced) == a.digest
    if not ok:
        log(f"{client} {tag}: NOT verified (exit {status}, log {logf})")
    # The output stays until the next run starts (its first step deletes it): on this VM,
    # memory freed more than ~2 s before a run has been handed back to the host (free page
    # reporting), and faulting it in again costs up to ~2.5 CPU-s per GiB of page cache to
    # whichever client runs next. Deleting just before every run treats all clients alike
    # whatever the harness does in between (200 re-announces take longer than 5).
    os.sync()
    return {
        "seconds": round(secs, 3), "mb_s": round(a.size / secs / 1e6, 1) if secs > 0 else 0,
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "user_s": round(ru.ru_utime, 3),
        "sys_s": round(ru.ru_stime, 3), "peak_rss_anon_mib": round(rss / 1024, 1),
        "peak_threads": thr, "peak_sockets": sock,
        "peak_vmsize_mib": round(vm / 1024, 1), "vol_cs": ru.ru_nvcsw, "invol_cs": ru.ru_nivcsw,
        "minor_faults": ru.ru_minflt, "exit": status, "verified": ok,
    }


# ---- summary ----------------------------------------------------------------------------------

def summarize(rows, group_keys):
    groups = {}
    for r in rows:
        if r["verified"]:
            groups.setdefault(tuple(r[k] for k in group_keys), []).append(r)
    out = []
    for key, rs in groups.items():
        med = lambda f: statistics.median(r[f] for r in rs)
        s = dict(zip(group_keys, key))
        s.update({
            "runs": len(rs), "median_s": round(med("seconds"), 2),
            "mb_s": round(rows[0]["size"] / med("seconds") / 1e6, 1),
            "cpu_s": round(med("cpu_s"), 2), "peak_rss_anon_mib": round(med("peak_rss_anon_mib"), 1),
            "peak_threads": max(r["peak_threads"] for r in rs),
            "vol_cs": int(med("vol_cs")), "invol_cs": int(med("invol_cs")),
        })
        for extra in ("peers_used", "peak_sockets", "seeders_faults"):
            if extra in rs[0]:
                s[extra] = int(med(extra))
        if "seeders_cpu_s" in rs[0]:
            s["seeders_cpu_s"] = round(med("seeders_cpu_s"), 2)
        out.append(s)
    return out


def print_table(summary, cols, title):
    print(f"\n{title}")
    widths = [max(len(c), *(len(str(s.get(c, ""))) for s in summary)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for s in summary:
        print("  ".join(str(s.get(c, "")).ljust(w) for c, w in zip(cols, widths)))
    sys.stdout.flush()


def write_csv(path, rows):
    if not rows:
        return
    keys = list(rows[0].keys())
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    log(f"wrote {os.path.relpath(path, ROOT)}")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}"


# ---- the two benchmarks -----------------------------------------------------------------------

def available(client):
    need = {"libtorrent": None, "aria2": "aria2c", "transmission": "transmission-cli",
            "rqbit": "rqbit"}.get(client)
    if client == "libtorrent":
        return subprocess.run([PY, "-c", "import libtorrent"], capture_output=True).returncode == 0
    return need is None or shutil.which(need) is not None


def setup(a, piece_sizes):
    os.makedirs(a.work, exist_ok=True)
    a.content_dir = os.path.join(a.work, "content")
    os.makedirs(a.content_dir, exist_ok=True)
    a.content = os.path.join(a.content_dir, f"bench-{human(a.size)}.bin")
    a.digest = make_content(a.content, a.size)
    tracker_kind = a.tracker
    if tracker_kind == "opentracker" and not os.path.exists("/usr/bin/opentracker"):
        log("opentracker not installed: using the built-in tracker")
        tracker_kind = "builtin"
    a.tracker_kind = tracker_kind
    a.tracker_port = free_port()
    url = f"http://127.0.0.1:{a.tracker_port}/announce"
    torrents = {}
    for piece in piece_sizes:
        t = os.path.join(a.work, f"bench-{human(a.size)}-{human(piece)}.torrent")
        torrents[piece] = (t, make_torrent(a.minibt, a.content, piece, url, t))
    start_tracker(tracker_kind, a.minibt, a.work, a.tracker_port,
                  [h for _, h in torrents.values()])
    return torrents


def bench_clients(a):
    clients = [c for c in a.clients.split(",") if c]
    skipped = {c: "not installed" for c in clients if not available(c)}
    clients = [c for c in clients if c not in skipped]
    for c, why in skipped.items():
        log(f"skipping {c}: {why}")
    kinds = [k for k in a.seeders.split(",") if k]
    if len(kinds) == 1 and kinds[0].isdigit():  # SEEDERS=3: three libtorrent seeders
        kinds = ["libtorrent"] * int(kinds[0])
    pieces = [parse_size(p) for p in a.pieces.split(",")]
    torrents = setup(a, pieces)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    for piece in pieces:
        torrent, ih = torrents[piece]
        log(f"{human(a.size)} in {human(piece)} pieces: seeders {','.join(kinds)}; "
            f"tracker {a.tracker_kind}; clients {','.join(clients)}; {a.runs} runs")
        a.content_dir = seed_dir(a, piece)
        if "minibt" in kinds or "transmission" in clients:
            prime_minibt(a, torrent, ih, a.content_dir)
        seeders = start_seeders(kinds, a, torrent, a.content_dir, 8, a.work, human(piece))
        try:
            wait_seeders(a.tracker_port, ih, len(kinds), seeders, 600)
            warm_up(a, clients, torrent, len(kinds), ih, human(piece))
            for run in range(a.runs):
                order = clients[run % len(clients):] + clients[:run % len(clients)]
                for client in order:
                    tag = f"{human(piece)}-{client}-{run}"
                    r = one_run(client, a, torrent, a.work, os.path.join(a.work, "out"), tag,
                                len(kinds), ih)
                    row = {"date": stamp, "size": a.size, "piece": piece,
                           "seeders": ",".join(kinds) if client != "transmission"
                           else ",".join(["minibt"] * len(kinds)),
                           "tracker": a.tracker_kind, "client": client, "run": run + 1, **r}
                    rows.append(row)
                    log(f"{tag}: {r['seconds']} s, {r['mb_s']} MB/s, cpu {r['cpu_s']} s, "
                        f"RssAnon {r['peak_rss_anon_mib']} MiB, {r['peak_threads']} threads, "
                        f"verified={r['verified']}")
        finally:
            PROCS.stop_many(seeders)
    os.makedirs(a.results, exist_ok=True)
    write_csv(os.path.join(a.results, f"bench-{stamp}.csv"), rows)
    summary = summarize(rows, ["piece", "client", "seeders"])
    bases = {s["piece"]: s for s in summary if s["client"] == "minibt"}
    for s in summary:
        base = bases.get(s["piece"])
        s["x_minibt_time"] = round(s["median_s"] / base["median_s"], 2) if base else ""
        s["x_minibt_cpu"] = round(s["cpu_s"] / base["cpu_s"], 2) if base else ""
    for s in summary:
        s["piece"] = human(s["piece"])
    write_csv(os.path.join(a.results, f"bench-{stamp}-summary.csv"), summary)
    print_table(summary, ["piece", "client", "seeders", "runs", "median_s", "mb_s", "cpu_s",
                          "peak_rss_anon_mib", "peak_threads", "vol_cs", "invol_cs",
                          "x_minibt_time", "x_minibt_cpu"],
                f"{human(a.size)} download on loopback, {machine()}, {stamp}; "
                f"x_minibt_* = client / minibt (>1: minibt is faster / cheaper)")
    for c, why in skipped.items():
        print(f"skipped {c}: {why}")
    bad = [r for r in rows if not r["verified"]]
    if bad:
        print(f"{len(bad)} run(s) failed verification or did not finish: "
              + ", ".join(f"{r['client']}#{r['run']}" for r in bad))
    return 1 if bad else 0


def warm_up(a, clients, torrent, n_seeders, info_hash, tag):
    """One download that is not counted, before a series: the first run after setting up a
    swarm is otherwise slower for reasons that have nothing to do with the client (seeders'
    caches, and on this VM page-cache memory that has to come back from the host)."""
    if a.warmup <= 0:
        return
    quick = [c for c in clients if c != "transmission"] or clients
    extra = a.leech_extra
    if not quick[0].startswith("minibt"):
        a.leech_extra = ()
    r = one_run(quick[0], a, torrent, a.work, os.path.join(a.work, "out"), f"{tag}-warmup",
                n_seeders, info_hash)
    a.leech_extra = extra
    log(f"{tag}: warm-up download by {quick[0]} ({r['seconds']} s, not counted)")


def seeder_addr(k):
    return f"127.0.{k // 250}.{k % 250 + 2}", 20000 + k % 20000


def announce_for(port, info_hash_hex, ip, peer_port, k, size, event="started"):
    """Register one seeder at the tracker ourselves (HTTP, BEP 3 `ip`, left=0); with
    event="stopped", take it off the tracker's list again."""
    import urllib.parse
    import urllib.request
    q = urllib.parse.urlencode({
        "info_hash": bytes.fromhex(info_hash_hex), "peer_id": b"-BENCH0-" + b"%012d" % k,
        "port": peer_port, "uploaded": 0, "downloaded": size, "left": 0, "compact": 1,
        "event": event, "ip": ip, "numwant": 0})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/announce?{q}", timeout=5) as r:
        body = r.read()
    if b"failure" in body:
        raise SystemExit(f"tracker refused the announce for {ip}:{peer_port}: {body!r}")


def start_swarm_seeder(a, torrent, k):
    """One minibt seeder for `bench.py peers`, in its own directory (a hard link to the content
    and a copy of the primed resume state: minibt seeders sharing one directory race on
    their shared resume file), with no tracker (`--no-tracker`): given one, every seeder asks
    for up to 200 peers and dials every other seeder: some 20,000 connections that end only when
    the two find they are both seeds. The harness lists the seeder at the tracker itself
    (announce_for). (They used to announce to a tracker that was not there; 200 announcers
    retrying on their backoff cost the swarm up to 40 ms of CPU per download.)"""
    d = os.path.join(a.work, "swarm", str(k))
    os.makedirs(d, exist_ok=True)
    name = os.path.basename(a.content)
    link = os.path.join(d, name)
    if not os.path.exists(link):
        os.link(a.content, link)
    state = f".{name}.minibt-resume"
    shutil.copyfile(os.path.join(a.content_dir, state), os.path.join(d, state))
    ip, port = seeder_addr(k)
    cmd = [a.minibt, "seed", torrent, "--no-tracker", "--from", d, "--port", str(port), "--bind-ip", ip,
           "-q", "--max-peers", "250"]
    return PROCS.spawn(cmd, os.path.join(a.work, f"seed-p-minibt-{k}.log"))


def wait_listening(procs, ks, timeout):
    deadline = time.monotonic() + timeout
    for p, k in zip(procs, ks):
        while True:
            if p.poll() is not None:
                raise SystemExit(f"a seeder exited with {p.returncode}: {' '.join(p.args)}")
            try:
                socket.create_connection(seeder_addr(k), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"seeder {seeder_addr(k)} not listening after {timeout} s")
                time.sleep(0.05)


def peers_round(a, torrent, ih, counts, clients, rnd, stamp, rows):
    """One round of `bench.py peers`: a swarm grown to each count in turn, `a.runs` downloads
    per client at each; rows are appended to `rows`. True if it stopped early."""
    seeders = []
    failed = False
    try:
        for n in counts:
            log(f"round {rnd + 1} of {a.rounds}: swarm of {n} minibt seeders "
                f"({human(a.size)}, {human(a.piece)} pieces)")
            ks = list(range(8 + len(seeders), 8 + n))
            new = []
            for i, k in enumerate(ks):
                new.append(start_swarm_seeder(a, torrent, k))
                if i % 20 == 19:
                    time.sleep(0.2)  # let a batch load before starting the next
            seeders += new
            wait_listening(new, ks, 600)
            for k in ks:
                announce_for(a.tracker_port, ih, *seeder_addr(k), k, a.size)
            wait_seeders(a.tracker_port, ih, n, seeders, 60)
            log("tasks on the machine %d; seeders' threads %d (at most %d in one)"
                % census(seeders))
            idle = cpu_seconds(seeders)
            time.sleep(2)
            log(f"the idle swarm uses {(cpu_seconds(seeders) - idle) / 2:.2f} CPU-s a second")
            a.leech_extra = swarm_args("minibt", n)
            warm_up(a, ["minibt"], torrent, n, ih, f"peers{n}")
            for run in range(a.runs):
                for client in clients:
                    for k in range(8, 8 + n):  # again: the tracker forgets silent peers
                        announce_for(a.tracker_port, ih, *seeder_addr(k), k, a.size)
                    run_no = rnd * a.runs + run
                    tag = f"peers{n}-{client}-{run_no}"
                    a.leech_extra = swarm_args(client, n)
                    seeders_cpu = cpu_seconds(seeders)
                    seeders_faults = minor_faults(seeders)
                    perf = start_swarm_perf(a, tag)
                    r = one_run(client, a, torrent, a.work, os.path.join(a.work, "out"), tag,
                                n, ih)
                    stop_swarm_perf(perf)
                    # What the swarm spent serving this download (on the same 2 cores).
                    r["seeders_cpu_s"] = round(cpu_seconds(seeders) - seeders_cpu, 2)
                    r["seeders_faults"] = minor_faults(seeders) - seeders_faults
                    rep = os.path.join(a.work, f"report-{tag}.json")
                    if client.startswith("minibt") and os.path.exists(rep):
                        r["peers_used"] = peers_used(rep)
                    rows.append({"date": stamp, "size": a.size, "piece": a.piece, "seeders": n,
                                 "client": client, "run": run_no + 1, **r})
                    log(f"{tag}: {r['seconds']} s, {r['mb_s']} MB/s, cpu {r['cpu_s']} s, "
                        f"RssAnon {r['peak_rss_anon_mib']} MiB, {r['peak_threads']} threads, "
                        f"cs {r['vol_cs']}+{r['invol_cs']}, sockets {r['peak_sockets']}, "
                        f"seeders' cpu {r['seeders_cpu_s']} s, faults {r['seeders_faults']}, "
                        f"peers {r.get('peers_used', '?')}, "
                        f"verified={r['verified']}")
                    log("after it: tasks on the machine %d; seeders' threads %d (at most %d "
                        "in one)" % census(seeders))
    except (OSError, SystemExit) as e:
        # e.g. EAGAIN from fork/clone: this machine caps tasks at about 1500-2000.
        log(f"stopped early: {e!r}; keeping the rows measured so far")
        log("tasks on the machine %d; seeders' threads %d (at most %d in one); %d seeders "
            "running" % (*census(seeders), sum(p.poll() is None for p in seeders)))
        failed = True
    finally:
        PROCS.stop_many(seeders)
        # Off the tracker too: the next round's small swarms must not be handed the
        # addresses of these dead seeders.
        for k in range(8, 8 + len(seeders)):
            try:
                announce_for(a.tracker_port, ih, *seeder_addr(k), k, a.size, "stopped")
            except (OSError, SystemExit) as e:
                log(f"could not take seeder {k} off the tracker: {e!r}")
    return failed


def bench_peers(a):
    counts = sorted(int(n) for n in a.peer_counts.split(","))
    clients = [c for c in a.clients.split(",") if c and available(c)]
    for c in set(a.clients.split(",")) - set(clients) - {""}:
        log(f"skipping {c}: not installed")
    piece = a.piece = parse_size(a.pieces.split(",")[0])
    torrent, ih = setup(a, [piece])[piece]
    a.content_dir = seed_dir(a, piece)
    prime_minibt(a, torrent, ih, a.content_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    failed = False
    # Rounds: the machine's speed drifts over minutes (±10 % here), and swarms measured one
    # after the other would put that drift between the peer counts. Each round starts the
    # swarms afresh and measures every count again; the summary takes medians over all rounds.
    for rnd in range(a.rounds):
        if rnd:
            time.sleep(2)  # the last round's 200 processes have exited
        failed = peers_round(a, torrent, ih, counts, clients, rnd, stamp, rows)
        if failed:
            break
    os.makedirs(a.results, exist_ok=True)
    write_csv(os.path.join(a.results, f"peers-{stamp}.csv"), rows)
    summary = summarize(rows, ["seeders", "client"])
    mib = a.size / (1 << 20)
    for s in summary:  # the lesson's per-connection costs (docs/threads-vs-async.md)
        s["cs_per_mib"] = round((s["vol_cs"] + s["invol_cs"]) / mib, 1)
        s["cpu_ms_per_mib"] = round(s["cpu_s"] * 1000 / mib, 2)
    write_csv(os.path.join(a.results, f"peers-{stamp}-summary.csv"), summary)
    print_table(summary, ["seeders", "client", "runs", "median_s", "mb_s", "cpu_s",
                          "seeders_cpu_s", "seeders_faults", "peak_rss_anon_mib", "peak_threads", "peak_sockets", "vol_cs",
                          "invol_cs", "cs_per_mib", "cpu_ms_per_mib", "peers_used"],
                f"{human(a.size)} from N minibt seeders on loopback, {machine()}, {stamp}; "
                f"peak_sockets = open sockets (connections + listeners); peers_used = peers "
                f"that sent data (minibt's report only)")
    if failed:
        print("stopped early (see the log above): rows for larger swarms are missing")
    return 1 if any(not r["verified"] for r in rows) else 0


def start_swarm_perf(a, tag):
    """With --perf-swarm: perf samples every process on the machine (leecher, seeders and
    kernel) while one download runs, into WORK/perf-TAG.data; `perf report --sort comm` then
    shows who spends the CPU the leecher does not get."""
    if not a.perf_swarm:
        return None
    data = os.path.join(a.work, f"perf-{tag}.data")
    p = PROCS.spawn(["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F", "999", "-o", data],
                    os.path.join(a.work, f"perf-{tag}.log"))
    time.sleep(0.5)  # perf has opened its buffers before the leecher starts
    return p


def stop_swarm_perf(perf):
    if perf:
        perf.send_signal(signal.SIGINT)  # it writes its file and exits
        try:
            perf.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
        PROCS.stop(perf)


def swarm_args(client, n):
    """Leecher options that let each client use every one of n seeders, not a default cap."""
    peers = ["%s:%d" % seeder_addr(8 + i) for i in range(n)]
    if client.startswith("minibt"):
        # Its announces ask for --max-peers peers, but the built-in tracker returns at most
        # 200 (never the asker): name every seeder directly as well.
        return ["--max-peers", str(n + 10), *(x for p in peers for x in ("--peer", p))]
    if client == "libtorrent":
        # It asks the tracker for 200 peers; defaults cap it at 200 connections and 30
        # connection attempts a second: raise both and dial every seeder at once.
        return ["--connections", str(n + 50), *(x for p in peers for x in ("--peer", p))]
    if client == "aria2":
        # No way to name peers on its command line. Its announces ask for 50 peers, so it
        # re-announces every second (a fresh random 50 each time); --bt-max-peers=0 (no cap)
        # is already set; above --bt-request-peer-speed-limit it stops adding peers, so that
        # limit is set out of reach (it still adds about 5 a second beyond its first ~40).
        return ["--bt-tracker-interval=1", "--bt-request-peer-speed-limit=100000M"]
    if client == "rqbit":
        # Every seeder as an initial peer, and its per-torrent peer limit above the swarm.
        return ["--peer-limit", str(n + 50), "--initial-peers", ",".join(peers)]
    return []


def bench_profile(a):
    """Profile one leecher (minibt unless --profile-client) with perf cpu-clock samples on one
    download; print the top symbols."""
    if not shutil.which("perf"):
        raise SystemExit("perf not installed (Debian: linux-perf)")
    kinds = [k for k in a.seeders.split(",") if k]
    piece = parse_size(a.pieces.split(",")[0])
    torrent, ih = setup(a, [piece])[piece]
    a.content_dir = seed_dir(a, piece)
    if "minibt" in kinds:
        prime_minibt(a, torrent, ih, a.content_dir)
    seeders = start_seeders(kinds, a, torrent, a.content_dir, 8, a.work, "prof")
    data = os.path.join(a.work, "perf.data")
    out = os.path.join(a.work, "out")
    try:
        wait_seeders(a.tracker_port, ih, len(kinds), seeders, 600)
        for i in range(a.warmup):
            # The same download unprofiled first, as in a series (see warm_up).
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            w = PROCS.spawn(leech_cmd(a.profile_client, a, torrent, out,
                                      os.path.join(a.work, "report-warm.json"), a.leech_extra),
                            os.path.join(a.work, f"warmup-{i}.log"))
            w.wait(timeout=a.timeout)
            log(f"warm-up {i + 1}/{a.warmup} exit={w.returncode}")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        freq = ["-F", "4000"] if a.perf_event == "cpu-clock" else []
        cmd = ["perf", "record", "-e", a.perf_event, *freq, "-g", "-o", data, "--",
               *leech_cmd(a.profile_client, a, torrent, out,
                          os.path.join(a.work, "report-prof.json"), a.leech_extra)]
        p = PROCS.spawn(cmd, os.path.join(a.work, "perf-record.log"))
        p.wait(timeout=a.timeout)
        produced = os.path.join(out, os.path.basename(a.content))
        ok = p.returncode == 0 and sha1_file(produced) == a.digest
        log(f"profiled download verified={ok}")
    finally:
        PROCS.stop_many(seeders)
        shutil.rmtree(out, ignore_errors=True)
    for sort in ("symbol", "comm,dso"):
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                              "--sort", sort, "--percent-limit", "0.7", "-g", "none"],
                             capture_output=True, text=True, timeout=300).stdout
        print("\n".join(l for l in rep.splitlines() if l.strip() and not l.startswith("#")))
        print()
    return 0 if ok else 1


def peers_used(report_path):
    """Peers that sent us at least one byte, from minibt's run report."""
    import json
    try:
        with open(report_path) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return -1
    peers = rep.get("peers") or []
    return sum(1 for p in peers if (p.get("downloaded") or 0) > 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["clients", "peers", "profile"])
    ap.add_argument("--minibt", default=os.path.join(ROOT, "target/release/minibt"))
    ap.add_argument("--minibt-fast", default=os.path.join(ROOT, "target/fast-sha1/release/minibt"))
    ap.add_argument("--minibt-alt", default=None,
                    help="another minibt binary (say, built from a modified copy of the "
                         "source), measured as the leecher `minibt-alt`; seeders stay --minibt")
    ap.add_argument("--alt-args", default="",
                    help="extra arguments for the leecher `minibt-alt` only (A/B an option: "
                         "--minibt-alt may then be the same binary)")
    ap.add_argument("--size", default=None, help="content size (default 1G)")
    ap.add_argument("--pieces", default=None, help="piece sizes, comma-separated (256K,4M)")
    ap.add_argument("--seeders", default="libtorrent",
                    help="seeder kinds, one per seeder: minibt, libtorrent, aria2 (comma list), "
                         "or a count of libtorrent seeders")
    ap.add_argument("--clients", default=None,
                    help="leechers: minibt,minibt+fast-sha1,minibt-alt,libtorrent,aria2,"
                         "transmission,rqbit")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1,
                    help="peers mode: start the swarms afresh and measure every count this "
                         "many times (runs per count per round)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="1: one download that is not counted before each series (0: none)")
    ap.add_argument("--profile-client", default="minibt",
                    help="the leecher `profile` runs under perf (any client `--clients` takes)")
    ap.add_argument("--perf-event", default="cpu-clock",
                    help="what `profile` samples (say sched:sched_switch, to see who blocks)")
    ap.add_argument("--peer-counts", default="5,50,200")
    ap.add_argument("--perf-swarm", action="store_true",
                    help="peers mode: record every process with perf during each download "
                         "(WORK/perf-TAG.data); perf's own cost makes these runs' figures "
                         "for profiling only")
    ap.add_argument("--tracker", default="builtin", choices=["opentracker", "builtin"],
                    help="builtin honours BEP 3 `ip`; opentracker records the source address, "
                         "and minibt announces from 127.0.0.1 whatever --bind-ip says, so "
                         "minibt seeders (and transmission, which needs them) only work with "
                         "builtin")
    ap.add_argument("--timeout", type=float, default=300, help="per download, seconds")
    ap.add_argument("--work", default="/tmp/minibt-bench", help="scratch directory")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    a.size = parse_size(a.size or "1G")
    a.pieces = a.pieces or ("256K,4M" if a.mode == "clients" else "256K")
    a.clients = a.clients or ("minibt,minibt+fast-sha1,libtorrent,aria2,transmission,rqbit"
                              if a.mode == "clients" else "minibt")
    a.leech_extra = []
    if a.tracker == "opentracker" and (a.mode == "peers" or "minibt" in a.seeders.split(",")
                                       or "transmission" in a.clients.split(",")):
        raise SystemExit("--tracker opentracker works only with libtorrent/aria2 seeders and "
                         "without transmission: minibt's announces leave from 127.0.0.1, "
                         "which opentracker records instead of --bind-ip")
    for exe in (a.minibt,):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{exe} missing: build it first (make bench does)")
    if "minibt-alt" in a.clients.split(",") and not (a.minibt_alt
                                                     and os.access(a.minibt_alt, os.X_OK)):
        raise SystemExit("client minibt-alt needs --minibt-alt PATH (make: ALT_MINIBT=PATH)")
    if "minibt+fast-sha1" in a.clients and not os.access(a.minibt_fast, os.X_OK):
        log(f"{a.minibt_fast} missing: skipping minibt+fast-sha1")
        a.clients = a.clients.replace("minibt+fast-sha1", "")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        if a.mode == "profile":
            return bench_profile(a)
        return bench_clients(a) if a.mode == "clients" else bench_peers(a)
    finally:
        PROCS.kill_all()
        shutil.rmtree(os.path.join(a.work, "out"), ignore_errors=True)  # the last run's output


if __name__ == "__main__":
    sys.exit(main())
