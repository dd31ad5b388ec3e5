//! `minibt demo`: a whole swarm on one machine, for a classroom.
//!
//! It writes a sample file into a temporary directory, makes its torrent, starts the built-in
//! tracker (in this process) and a few seeders (child minibt processes on 127.0.0.1), then
//! downloads the torrent with the full progress display, checks the copy byte for byte, prints
//! the run report, stops the seeders and removes the files (unless `--keep`).

use crate::coordinator::SeedPolicy;
use crate::create::{create_torrent, CreateOptions};
use crate::metainfo::Metainfo;
use crate::progress::ProgressMode;
use crate::report::Report;
use crate::session::{self, SessionConfig};
use crate::tracker_server::TrackerServer;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seeders: usize,
    pub size: u64,
    pub keep: bool,
}

/// Seeder processes, killed when dropped.
struct Seeders(Vec<Child>);

impl Drop for Seeders {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn run_demo(opts: &DemoOptions) -> Result<(), String> {
    let dir = demo_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let result = demo_in(&dir, opts);
    if opts.keep {
        eprintln!("files kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn demo_in(dir: &Path, opts: &DemoOptions) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let content_dir = dir.join("seed");
    std::fs::create_dir_all(&content_dir).map_err(io)?;
    let content = content_dir.join("minibt-demo.bin");
    write_sample(&content, opts.size).map_err(io)?;

    let tracker = TrackerServer::start("127.0.0.1:0".parse().expect("valid"))
        .map_err(|e| format!("cannot start the tracker: {e}"))?;
    let mut create = CreateOptions::new(&content);
    create.trackers = vec![tracker.http_announce_url()];
    let bytes = create_torrent(&create).map_err(|e| e.to_string())?;
    let torrent = dir.join("minibt-demo.torrent");
    std::fs::write(&torrent, &bytes).map_err(io)?;
    let meta = Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())?;
    eprintln!(
        "demo: {} ({} pieces of {} KiB), tracker {}, {} seeder(s) on 127.0.0.1",
        crate::progress::human_bytes(opts.size),
        meta.num_pieces(),
        meta.info.piece_length / 1024,
        tracker.http_announce_url(),
        opts.seeders
    );

    let exe = std::env::current_exe().map_err(io)?;
    let mut seeders = Seeders(Vec::new());
    for _ in 0..opts.seeders {
        let child = Command::new(&exe)
            .args([
                "seed",
                &torrent.to_string_lossy(),
                "--from",
                &content_dir.to_string_lossy(),
            ])
            .args(["--port", "0", "--bind-ip", "127.0.0.1", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a seeder: {e}"))?;
        seeders.0.push(child);
    }

    let out = dir.join("download");
    let cfg = SessionConfig {
        output_dir: out.clone(),
        port: 0,
        bind_ip: Some("127.0.0.1".parse().expect("valid")),
        timeout: Duration::from_secs(60),
        seed: SeedPolicy::No,
        progress: ProgressMode::Auto,
        ..SessionConfig::default()
    };
    let summary = session::run(meta.clone(), cfg, |_| {}).map_err(|e| e.to_string())?;
    drop(seeders);

    let copy = out.join("minibt-demo.bin");
    if !same_bytes(&content, &copy).map_err(io)? {
        return Err(format!("{} differs from the original", copy.display()));
    }
    let secs = summary.elapsed.as_secs_f64().max(1e-3);
    eprintln!(
        "demo: downloaded {} to {} in {:.2} s ({:.1} MB/s); every piece passed SHA-1 and the copy is byte-identical",
        crate::progress::human_bytes(summary.total_length),
        copy.display(),
        secs,
        summary.total_length as f64 / 1e6 / secs
    );
    eprint!(
        "{}",
        Report::new(&meta.info.name, &meta.info_hash.hex(), &summary).text()
    );
    Ok(())
}

/// Writes `size` reproducible pseudo-random bytes (xorshift64*).
fn write_sample(path: &Path, size: u64) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = size;
    let mut chunk = vec![0u8; 1 << 20];
    while left > 0 {
        for word in chunk.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.flush()
}

fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Where the demo keeps its files (for `--keep`).
pub fn demo_dir() -> PathBuf {
    std::env::temp_dir().join(format!("minibt-demo-{}", std::process::id()))
}
