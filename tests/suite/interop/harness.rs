//! Process plumbing for the interop tests: which reference tools exist, starting a client with
//! its output in a log file, killing it when the test ends (Drop, also on panic), bounded waits,
//! loopback addresses and free ports, and byte-for-byte tree comparison.
//!
//! Called by the other `interop` modules; no BEP here, only test infrastructure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::in_ci;

/// The python that has python3-libtorrent (Debian's package installs it for /usr/bin/python3).
pub const PYTHON: &str = "/usr/bin/python3";

/// Path of the libtorrent helper script.
pub fn lt_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_client.py")
}

/// A reference program the interop tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Opentracker,
    Aria2,
    Transmission,
    TransmissionCreate,
    Libtorrent,
    Mktorrent,
}

impl Tool {
    fn probe(self) -> bool {
        let run = |prog: &str, args: &[&str]| {
            Command::new(prog)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        };
        match self {
            // opentracker has no --version; -h prints usage and exits.
            Tool::Opentracker => run("opentracker", &["-h"]),
            Tool::Aria2 => run("aria2c", &["--version"]),
            Tool::Transmission => run("transmission-cli", &["--version"]),
            Tool::TransmissionCreate => run("transmission-create", &["--version"]),
            Tool::Mktorrent => run("mktorrent", &["-h"]),
            Tool::Libtorrent => Command::new(PYTHON)
                .args(["-c", "import libtorrent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false),
        }
    }
}

/// True when every tool is installed. A missing tool fails the test under CI=true; locally
/// the test prints why it is skipped and the caller returns.
pub fn require(test: &str, tools: &[Tool]) -> bool {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.probe()).collect();
    if missing.is_empty() {
        return true;
    }
    if in_ci() {
        panic!("{test}: reference tools missing in CI: {missing:?} (see .ci/run)");
    }
    eprintln!("SKIP {test}: not installed: {missing:?}");
    false
}

/// A started client: killed and reaped when dropped; its stdout+stderr go to `log`.
pub struct Client {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    status: Option<ExitStatus>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- {} log (tail) ----\n{}", self.name, self.tail(4000));
        }
    }
}

impl Client {
    /// Spawns `cmd` with output into `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Client {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Client {
            name: name.to_string(),
            log,
            child,
            status: None,
        }
    }

    /// The log so far (lossy UTF-8; transmission writes `\r` progress lines).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).replace('\r', "\n")
    }

    pub fn tail(&self, n: usize) -> String {
        let s = self.output();
        let start = s.len().saturating_sub(n);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }

    /// The exit status if it has exited (non-blocking).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `limit` for exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `limit` for a log line containing `needle`; false on timeout or exit.
    pub fn wait_line(&mut self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || {
            self.output().lines().any(|l| l.contains(needle)) || self.exited().is_some()
        });
        self.output().lines().any(|l| l.contains(needle))
    }

    /// Panics (with the log) unless the process is still running.
    pub fn assert_alive(&mut self) {
        if let Some(s) = self.exited() {
            panic!("{} exited early ({s}):\n{}", self.name, self.tail(4000));
        }
    }
}

/// Polls `cond` every 100 ms until it holds or `limit` passes; returns its last value.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port free for both TCP and UDP on `ip` (bound then released, so a race is possible
/// but unlikely; the OS hands out ephemeral ports in sequence).
pub fn free_port_on(ip: &str) -> u16 {
    for _ in 0..50 {
        let t = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// Makes `dir` and its ancestors world-readable and traversable: opentracker drops to user
/// `nobody` when started as root and must still read its whitelist.
pub fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Some(dir);
    while let Some(d) = p {
        if let Ok(m) = std::fs::metadata(d) {
            let mode = m.permissions().mode();
            if mode & 0o005 != 0o005 && d.starts_with(env!("CARGO_MANIFEST_DIR")) {
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o005));
            }
        }
        p = d.parent();
    }
}

/// Asserts that every file `torrent` lists (BEP 47 padding files aside) is under `out` with
/// the same bytes as under `src`, and that those files hold all `src_bytes` of the source
/// content (measured with [`tree_size`] before any client ran).
/// With `empty_may_be_missing`, a 0-byte file may be absent (transmission 3.00 does not
/// create empty files; transmission-create leaves them out of torrents).
pub fn assert_download(
    torrent: &Path,
    src: &Path,
    src_bytes: u64,
    out: &Path,
    empty_may_be_missing: bool,
) {
    let meta = minibt::metainfo::Metainfo::load(torrent).expect("torrent loads");
    let mut listed = 0u64;
    for (f, rel) in meta.info.files.iter().zip(meta.file_paths()) {
        if f.padding {
            continue;
        }
        let want = std::fs::read(src.join(&rel)).unwrap();
        listed += want.len() as u64;
        let dst = out.join(&rel);
        match std::fs::read(&dst) {
            Ok(got) => assert!(
                got == want,
                "{} differs from the source ({} vs {} bytes)",
                dst.display(),
                got.len(),
                want.len()
            ),
            Err(_) if want.is_empty() && empty_may_be_missing => {}
            Err(e) => panic!("{} missing: {e}", dst.display()),
        }
    }
    assert_eq!(
        listed,
        src_bytes,
        "the torrent covers all of {}",
        src.display()
    );
}

/// Bytes in all files under `p`.
pub fn tree_size(p: &Path) -> u64 {
    if p.is_file() {
        return std::fs::metadata(p).unwrap().len();
    }
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| tree_size(&e.unwrap().path()))
        .sum()
}
