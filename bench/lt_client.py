#!/usr/bin/python3
"""A minimal libtorrent (python3-libtorrent) seeder or leecher for bench/bench.py.

    lt_client.py seed TORRENT DIR IP   check DIR, print "ready", seed until killed
    lt_client.py get  TORRENT DIR IP [--peer IP:PORT]... [--connections N]
                                       download into DIR, exit 0 once every piece is verified;
                                       dial each --peer at once, allow N connections (and N
                                       connection attempts a second; default: libtorrent's own)

Loopback only: it listens on and connects from IP (127.0.0.x), with DHT, local peer discovery,
UPnP and NAT-PMP off, and several connections per IP allowed (all peers are on 127.x).
"""
import os
import sys
import time

import libtorrent as lt


def session(ip, connections=None):
    extra = {}
    if connections:
        # libtorrent's defaults: 200 connections, 30 connection attempts a second.
        extra = {"connections_limit": connections, "connection_speed": connections,
                 "listen_queue_size": connections}
    return lt.session({
        **extra,
        "listen_interfaces": f"{ip}:0",
        "outgoing_interfaces": ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "min_reconnect_time": 1,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification | lt.alert.category_t.storage_notification,
    })


def main():
    mode, torrent, out, ip = sys.argv[1:5]
    peers, connections, rest = [], None, sys.argv[5:]
    while rest:
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "--peer":
            host, port = value.rsplit(":", 1)
            peers.append((host, int(port)))
        elif flag == "--connections":
            connections = int(value)
        else:
            sys.exit(f"unknown option {flag}")
    s = session(ip, connections)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = out
    if connections:
        atp.max_connections = connections
    h = s.add_torrent(atp)
    for peer in peers:
        h.connect_peer(peer)
    deadline = time.monotonic() + float(os.environ.get("LT_TIMEOUT", "600"))
    if mode == "seed":
        while not h.status().is_seeding:
            if time.monotonic() > deadline:
                sys.exit("libtorrent seeder: data check did not finish")
            time.sleep(0.1)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    elif mode == "get":
        finished = False
        while time.monotonic() < deadline:
            s.wait_for_alert(200)
            for a in s.pop_alerts():
                if isinstance(a, lt.torrent_finished_alert) and not finished:
                    # Every piece passed its hash check, but blocks may still wait in the
                    # disk threads' store buffer: flush them before leaving.
                    finished = True
                    h.flush_cache()
                elif isinstance(a, lt.cache_flushed_alert) and finished:
                    os._exit(0)
                if isinstance(a, lt.torrent_error_alert):
                    sys.exit(f"libtorrent: {a.message()}")
        sys.exit("libtorrent leecher: timed out")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
