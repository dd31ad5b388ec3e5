//! A real tracker for the interop tests: Debian's opentracker on 127.0.0.1, HTTP and UDP
//! (BEP 3 / BEP 15) on one port, with a whitelist of the test's info hashes (Debian builds it
//! with whitelisting: unlisted hashes are refused). Also a BEP 48 scrape to see who announced.
//!
//! Called by the interop tests; started before the torrents' clients, killed on Drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::harness::{free_port_on, open_up, wait_until, Client};

pub struct Opentracker {
    /// Kept for its Drop (kills the tracker) and its log on panic.
    _process: Client,
    pub port: u16,
}

impl Opentracker {
    /// Picks a port (before the torrents exist, since they carry its URL).
    pub fn pick_port() -> u16 {
        free_port_on("127.0.0.1")
    }

    /// Starts opentracker on `port` with `hashes` (40-hex, v1 and truncated v2) whitelisted.
    pub fn start(dir: &Path, port: u16, hashes: &[String]) -> Opentracker {
        let home = dir.join("opentracker");
        std::fs::create_dir_all(&home).unwrap();
        let list = home.join("whitelist");
        std::fs::write(&list, hashes.join("\n") + "\n").unwrap();
        open_up(&home);
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut cmd = Command::new("opentracker");
        cmd.current_dir(&home).args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
            "-w",
            list.to_str().unwrap(),
        ]);
        let mut client = Client::spawn("opentracker", cmd, dir.join("opentracker.log"));
        let up = wait_until(Duration::from_secs(10), || {
            client.exited().is_some() || TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        client.assert_alive();
        assert!(up, "opentracker never listened on {port}");
        Opentracker {
            _process: client,
            port,
        }
    }

    /// (complete, incomplete) for `hash_hex`, via HTTP scrape; None if unknown or on error.
    pub fn scrape(&self, hash_hex: &str) -> Option<(u64, u64)> {
        let bytes: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&hash_hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let q: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET /scrape?info_hash={q} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .ok()?;
        let mut body = Vec::new();
        s.take(64 * 1024).read_to_end(&mut body).ok()?;
        let text = String::from_utf8_lossy(&body);
        let num = |key: &str| -> Option<u64> {
            let at = text.find(key)? + key.len();
            let rest = &text[at..];
            rest[..rest.find('e')?].parse().ok()
        };
        Some((num("8:completei")?, num("10:incompletei")?))
    }

    /// Waits until at least `seeds` seeders and `leechers` leechers have announced `hash`.
    pub fn wait_swarm(&self, hash: &str, seeds: u64, leechers: u64, limit: Duration) -> bool {
        wait_until(
            limit,
            || matches!(self.scrape(hash), Some((c, i)) if c >= seeds && i >= leechers),
        )
    }
}
