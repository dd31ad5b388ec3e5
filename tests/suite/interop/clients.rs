//! Starting each BitTorrent client as a seeder or a leecher on a loopback address: minibt
//! (the binary under test), libtorrent (through tests/interop/lt_client.py), aria2c and
//! transmission-cli. Each comes back as a [`Client`] that is killed when dropped, and has a
//! "done" check for downloads. Everything local: DHT, LSD, PEX, UPnP/NAT-PMP and uTP are off.
//!
//! Called by the interop tests. Protocol: BEP 3 peers found through a BEP 3/15 tracker.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::harness::{free_port_on, lt_script, wait_until, Client, PYTHON};

/// Seeding or downloading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Seed,
    Download,
}

/// The clients the tests can put in a swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Minibt,
    Libtorrent,
    Aria2,
    Transmission,
}

/// How long a download may take before the test fails (a few MiB on loopback).
pub const DOWNLOAD_LIMIT: Duration = Duration::from_secs(120);

/// Where a client listens and connects from. The tracker reports every peer at the address
/// its announce came from (127.0.0.1), so only a client listening there can be dialled; a
/// different outgoing address lets several peers face transmission (one peer per IP).
/// Only libtorrent can split the two; the others use `ip` for both.
#[derive(Clone, Copy, Debug)]
pub struct Net<'a> {
    pub ip: &'a str,
    pub out_ip: Option<&'a str>,
}

/// Listen and connect from 127.0.0.1.
pub const LOCAL: Net<'static> = Net {
    ip: "127.0.0.1",
    out_ip: None,
};

/// Listen and connect from `ip`.
pub fn on(ip: &str) -> Net<'_> {
    Net { ip, out_ip: None }
}

/// Starts `kind` as `role` for `torrent`, with the data (the torrent's `name`) under `data`,
/// on `net` and a free port; `peers` are dialled directly where the client supports it.
#[allow(clippy::too_many_arguments)]
pub fn start(
    kind: Kind,
    role: Role,
    dir: &Path,
    name: &str,
    torrent: &Path,
    data: &Path,
    net: Net,
    peers: &[String],
) -> Client {
    assert!(
        net.out_ip.is_none() || kind == Kind::Libtorrent,
        "only libtorrent has a separate outgoing address"
    );
    let ip = net.ip;
    std::fs::create_dir_all(data).unwrap();
    let port = free_port_on(ip);
    let log = dir.join(format!("{name}.log"));
    let mut c = match kind {
        Kind::Minibt => minibt(role, name, torrent, data, ip, port, peers, log),
        Kind::Libtorrent => libtorrent(role, name, torrent, data, net, port, peers, log),
        Kind::Aria2 => aria2(role, name, torrent, data, ip, port, log),
        Kind::Transmission => transmission(role, dir, name, torrent, data, ip, port, log),
    };
    // Every client listens before it is any use to the others. A download may already be
    // over by then (minibt and aria2 exit when done): wait_downloaded judges that.
    let listening = wait_until(Duration::from_secs(30), || {
        c.exited().is_some() || std::net::TcpStream::connect((ip, port)).is_ok()
    });
    if role == Role::Seed || !matches!(c.exited(), Some(s) if s.success()) {
        c.assert_alive();
        assert!(listening, "{name} never listened on {ip}:{port}");
    }
    c
}

#[allow(clippy::too_many_arguments)]
fn minibt(
    role: Role,
    name: &str,
    torrent: &Path,
    data: &Path,
    ip: &str,
    port: u16,
    peers: &[String],
    log: std::path::PathBuf,
) -> Client {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minibt"));
    // Debug logs: the interop logs are what a failure report shows (INTEROP_RUST_LOG=trace
    // for more).
    let level = std::env::var("INTEROP_RUST_LOG").unwrap_or_else(|_| "minibt=debug".into());
    cmd.env("RUST_LOG", level);
    match role {
        Role::Seed => cmd.arg("seed").arg(torrent).arg("--from").arg(data),
        Role::Download => cmd
            .arg(torrent)
            .arg("-o")
            .arg(data)
            .args(["--timeout", "90"]),
    };
    cmd.args(["--port", &port.to_string(), "--bind-ip", ip, "-q", "-v"]);
    for p in peers {
        cmd.args(["--peer", p]);
    }
    Client::spawn(name, cmd, log)
}

#[allow(clippy::too_many_arguments)]
fn libtorrent(
    role: Role,
    name: &str,
    torrent: &Path,
    data: &Path,
    net: Net,
    port: u16,
    peers: &[String],
    log: std::path::PathBuf,
) -> Client {
    let ip = net.ip;
    let mut cmd = Command::new(PYTHON);
    cmd.arg("-u").arg(lt_script());
    cmd.arg(match role {
        Role::Seed => "seed",
        Role::Download => "download",
    });
    cmd.arg(torrent).arg(data);
    cmd.args(["--ip", ip, "--port", &port.to_string(), "--timeout", "300"]);
    if let Some(out) = net.out_ip {
        cmd.args(["--out-ip", out]);
    }
    for p in peers {
        cmd.args(["--peer", p]);
    }
    Client::spawn(name, cmd, log)
}

fn aria2(
    role: Role,
    name: &str,
    torrent: &Path,
    data: &Path,
    ip: &str,
    port: u16,
    log: std::path::PathBuf,
) -> Client {
    let mut cmd = Command::new("aria2c");
    cmd.args([
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--disable-ipv6=true",
        "--check-integrity=true",
        "--file-allocation=none",
        "--summary-interval=0",
        "--console-log-level=notice",
        "--bt-stop-timeout=300",
        "--stop=300",
    ]);
    cmd.arg(format!("--listen-port={port}"));
    cmd.arg(format!("--interface={ip}"));
    cmd.arg(format!("--dir={}", data.display()));
    match role {
        // Ratio 0.0: seed until killed.
        Role::Seed => cmd.arg("--seed-ratio=0.0"),
        // Exit as soon as the download is complete and checked.
        Role::Download => cmd.arg("--seed-time=0"),
    };
    cmd.arg(torrent);
    Client::spawn(name, cmd, log)
}

/// The file transmission-cli's `--finish` script creates when the torrent completes.
pub fn transmission_done_marker(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.done"))
}

#[allow(clippy::too_many_arguments)]
fn transmission(
    role: Role,
    dir: &Path,
    name: &str,
    torrent: &Path,
    data: &Path,
    ip: &str,
    port: u16,
    log: std::path::PathBuf,
) -> Client {
    let config = dir.join(format!("{name}-config"));
    let _ = std::fs::remove_dir_all(&config);
    std::fs::create_dir_all(&config).unwrap();
    let settings = format!(
        r#"{{
  "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
  "port-forwarding-enabled": false, "rpc-enabled": false, "blocklist-enabled": false,
  "incomplete-dir-enabled": false, "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
  "speed-limit-up-enabled": false, "speed-limit-down-enabled": false,
  "bind-address-ipv4": "{ip}", "bind-address-ipv6": "::1", "peer-port": {port},
  "peer-port-random-on-start": false, "encryption": 1, "message-level": 2
}}"#
    );
    std::fs::write(config.join("settings.json"), settings).unwrap();
    let marker = transmission_done_marker(dir, name);
    let _ = std::fs::remove_file(&marker);
    let script = dir.join(format!("{name}-finished.sh"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new("transmission-cli");
    cmd.arg("-g").arg(&config);
    cmd.arg("-w").arg(data);
    cmd.args(["-p", &port.to_string(), "-M", "-D", "-U"]);
    if role == Role::Download {
        cmd.arg("-f").arg(&script);
    }
    cmd.arg(torrent);
    Client::spawn(name, cmd, log)
}

/// Waits until a downloading client says it has everything: minibt and aria2 exit 0,
/// libtorrent prints "finished", transmission runs its finish script. Panics (with the log)
/// on failure or after [`DOWNLOAD_LIMIT`].
pub fn wait_downloaded(kind: Kind, c: &mut Client, dir: &Path) {
    let ok = match kind {
        Kind::Minibt | Kind::Aria2 => match c.wait_exit(DOWNLOAD_LIMIT) {
            Some(s) if s.success() => true,
            Some(s) => panic!("{} failed ({s}):\n{}", c.name, c.tail(6000)),
            None => false,
        },
        Kind::Libtorrent => c.wait_line("finished", DOWNLOAD_LIMIT),
        Kind::Transmission => {
            let marker = transmission_done_marker(dir, &c.name);
            wait_until(DOWNLOAD_LIMIT, || marker.exists() || c.exited().is_some())
                && marker.exists()
        }
    };
    assert!(
        ok,
        "{} did not finish downloading within {:?}:\n{}",
        c.name,
        DOWNLOAD_LIMIT,
        c.tail(6000)
    );
}
