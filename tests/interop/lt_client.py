#!/usr/bin/python3
"""libtorrent (python3-libtorrent) as a reference peer: for minibt's interop tests, and as a
seeder and a leecher in bench/bench.py.

Usage:
  lt_client.py seed     TORRENT DIR --ip 127.0.0.x [--port N] [--out-ip IP] [--peer HOST:PORT]... [--timeout S] [--connections N]
  lt_client.py download TORRENT DIR --ip 127.0.0.x [--port N] [--out-ip IP] [--peer HOST:PORT]... [--timeout S] [--connections N] [--seed | --exit-at-once]
  lt_client.py create   PATH OUT.torrent --tracker URL [--piece-length N]   (hybrid v1+v2, BEP 52)
  lt_client.py hashes   TORRENT      (prints the hashes a tracker whitelist needs, one per line)

seed/download print one line per event on stdout (flushed): "listening HOST:PORT",
"checked", "announced", "progress PERMILLE", "seeding", "finished", "error TEXT".
`download` exits 0 on "finished" unless --seed; `seed` runs until killed or --timeout.
--exit-at-once (the benchmark's leecher): on "finished", flush libtorrent's disk cache and leave
without the session's orderly shutdown, so the time measured ends with the download.
--connections N raises libtorrent's connection limit (default 200) and connection attempts per
second (default 30) to N.
Everything stays on loopback: DHT, LSD, UPnP and NAT-PMP are off. Alerts are limited to the
categories read here: piece-by-piece alerts would cost a 1 GiB download measurable CPU.
"""
import argparse
import os
import sys
import time

import libtorrent as lt


def say(*words):
    print(*words, flush=True)


def session(ip, port, out_ip, connections):
    limits = {}
    if connections:
        limits = {"connections_limit": connections, "connection_speed": connections,
                  "listen_queue_size": connections}
    s = lt.session({
        **limits,
        "listen_interfaces": f"{ip}:{port}",
        "outgoing_interfaces": out_ip or ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "min_reconnect_time": 1,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification | lt.alert.category_t.storage_notification
        | lt.alert.category_t.tracker_notification,
    })
    return s


def run(args, seeding):
    ti = lt.torrent_info(args.torrent)
    ses = session(args.ip, args.port, args.out_ip, args.connections)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = args.dir
    if args.connections:
        atp.max_connections = args.connections
    h = ses.add_torrent(atp)
    for p in args.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host, int(port)))
    deadline = time.monotonic() + args.timeout
    if not seeding and args.exit_at_once:
        return download_and_exit(ses, h, deadline)
    said_seeding = False
    last_permille = -1
    while time.monotonic() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            t = type(a).__name__
            if t == "listen_succeeded_alert":
                say("listening", f"{a.address}:{a.port}")
            elif t == "listen_failed_alert":
                say("error listen", a.message())
                return 3
            elif t == "torrent_checked_alert":
                say("checked")
            elif t == "tracker_reply_alert":
                say("announced", a.num_peers)
            elif t == "tracker_error_alert":
                say("tracker-error", a.message())
            elif t in ("file_error_alert", "torrent_error_alert"):
                say("error", a.message())
                return 3
        st = h.status()
        permille = int(st.progress * 1000)
        if permille != last_permille and st.state != lt.torrent_status.checking_files:
            say("progress", permille)
            last_permille = permille
        if st.is_seeding and not said_seeding:
            said_seeding = True
            say("seeding" if seeding else "finished")
            if not seeding and not args.seed:
                return 0
    say("error timeout")
    return 2 if not said_seeding else 0


def download_and_exit(ses, h, deadline):
    """The benchmark's leecher: wake only on alerts (no status polling, no progress lines).
    Once every piece passed its hash check, blocks may still wait in the disk threads' store
    buffer: flush them, then leave at once, without the session's orderly shutdown."""
    finished = False
    while time.monotonic() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            t = type(a).__name__
            if t == "torrent_finished_alert" and not finished:
                finished = True
                h.flush_cache()
            elif t == "cache_flushed_alert" and finished:
                say("finished")
                os._exit(0)
            elif t in ("file_error_alert", "torrent_error_alert"):
                say("error", a.message())
                return 3
    say("error timeout")
    return 2


def create(args):
    fs = lt.file_storage()
    lt.add_files(fs, args.path)
    ct = lt.create_torrent(fs, args.piece_length)
    ct.add_tracker(args.tracker)
    parent = args.path.rstrip("/").rsplit("/", 1)[0]
    lt.set_piece_hashes(ct, parent)
    with open(args.out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return 0


def hashes(args):
    ti = lt.torrent_info(args.torrent)
    ih = ti.info_hashes()
    if ih.has_v1():
        say(str(ih.v1))
    if ih.has_v2():
        # Trackers see the v2 hash truncated to 20 bytes (BEP 52).
        say(str(ih.v2)[:40])
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("seed", "download"):
        p = sub.add_parser(name)
        p.add_argument("torrent")
        p.add_argument("dir")
        p.add_argument("--ip", default="127.0.0.1")
        p.add_argument("--port", type=int, default=0)
        p.add_argument("--out-ip", default=None, help="connect out from this address")
        p.add_argument("--peer", action="append", default=[])
        p.add_argument("--timeout", type=float, default=120)
        p.add_argument("--connections", type=int, default=None)
        p.add_argument("--seed", action="store_true")
        p.add_argument("--exit-at-once", action="store_true")
    p = sub.add_parser("create")
    p.add_argument("path")
    p.add_argument("out")
    p.add_argument("--tracker", required=True)
    p.add_argument("--piece-length", type=int, default=32768)
    p = sub.add_parser("hashes")
    p.add_argument("torrent")
    args = ap.parse_args()
    if args.cmd == "seed":
        return run(args, True)
    if args.cmd == "download":
        return run(args, False)
    if args.cmd == "create":
        return create(args)
    return hashes(args)


if __name__ == "__main__":
    sys.exit(main())
