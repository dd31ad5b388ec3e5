//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh scratch directory under the target dir, removed and recreated.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// True when CI=true: a missing interop client is then a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// A child process killed (and reaped) when dropped, so no test leaves one behind.
pub struct Proc {
    pub child: std::process::Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits up to `limit` for the process to exit; returns its status, or None on timeout.
    pub fn wait_for(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

/// Starts the minibt binary with `args`; stderr goes to `log` (a file) for post-mortems.
pub fn minibt(name: &str, args: &[&str], log: &std::path::Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_minibt"))
        .args(args)
        .env("RUST_LOG", "minibt=debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("minibt binary runs");
    Proc {
        child,
        name: name.to_string(),
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so content is reproducible without a crate.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `files` (relative path, size) under `root` with reproducible content.
pub fn write_content(root: &std::path::Path, files: &[(&str, usize)]) {
    for (i, (path, size)) in files.iter().enumerate() {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pseudo_random_bytes(i as u64 + 7, *size)).unwrap();
    }
}

/// Makes a torrent of `content` (file or directory) with the library's `create`.
pub fn make_torrent(
    content: &std::path::Path,
    trackers: &[String],
    piece_length: u64,
    out: &std::path::Path,
) -> minibt::metainfo::Metainfo {
    let mut opts = minibt::create::CreateOptions::new(content);
    opts.trackers = trackers.to_vec();
    opts.piece_length = Some(piece_length);
    let bytes = minibt::create::create_torrent(&opts).unwrap();
    std::fs::write(out, &bytes).unwrap();
    minibt::metainfo::Metainfo::from_bytes(&bytes).unwrap()
}

/// Asserts that every file under `expected` exists under `actual` with identical bytes.
pub fn assert_same_tree(expected: &std::path::Path, actual: &std::path::Path) {
    if expected.is_file() {
        let a = std::fs::read(expected).unwrap();
        let b =
            std::fs::read(actual).unwrap_or_else(|e| panic!("{} missing: {e}", actual.display()));
        assert!(
            a == b,
            "{} differs from {}",
            actual.display(),
            expected.display()
        );
        return;
    }
    for entry in std::fs::read_dir(expected).unwrap() {
        let entry = entry.unwrap();
        assert_same_tree(&entry.path(), &actual.join(entry.file_name()));
    }
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until `addr` accepts TCP connections or `limit` passes.
pub fn wait_listening(addr: std::net::SocketAddr, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
            .is_ok()
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Seeds `torrent` from `data_dir` with a minibt process listening on `ip` at a free port;
/// returns the process (killed on drop) and its port once it accepts connections.
pub fn start_seed(
    dir: &std::path::Path,
    name: &str,
    torrent: &std::path::Path,
    data_dir: &std::path::Path,
    ip: &str,
    extra: &[&str],
) -> (Proc, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec![
        "seed",
        torrent.to_str().unwrap(),
        "--from",
        data_dir.to_str().unwrap(),
        "--port",
        &port_s,
        "--bind-ip",
        ip,
        "-q",
    ];
    args.extend_from_slice(extra);
    let p = minibt(name, &args, &dir.join(format!("{name}.log")));
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
    assert!(
        wait_listening(addr, std::time::Duration::from_secs(30)),
        "{name} never listened"
    );
    (p, port)
}
