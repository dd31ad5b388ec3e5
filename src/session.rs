//! A session: one torrent's download (and seeding), from metainfo to verified files.
//!
//! It opens storage, works out from the resume state (`resume`, `resume_store`) and the data
//! already on disk which pieces are done, binds the listener, starts the verifier pool, the
//! resume saver and the announcer, runs the coordinator on the calling thread, and tears
//! everything down when the coordinator returns: save the resume state (flushing the maps
//! first only where there is no boot id to record, see `resume_store`), and let the announcer
//! send `stopped` (bounded wait). A stop signal takes the same path.

use crate::bitfield::Bitfield;
use crate::bufpool::BlockPool;
use crate::coordinator::{
    Coordinator, CoordinatorConfig, Inputs, Outcome, Outputs, RunStats, SeedPolicy,
};
use crate::ids::PeerId;
use crate::metainfo::Metainfo;
use crate::peer::{PeerContext, MAX_SPARE_THREADS, PEER_STACK_SIZE};
use crate::picker::PickMode;
use crate::progress::{Progress, ProgressMode};
use crate::ratelimit::RateLimit;
use crate::resume::ResumeState;
use crate::resume_store::Saver;
use crate::spare_threads::SpareThreads;
use crate::storage::Storage;
use crate::tracker::announcer::{spawn_announcer, AnnounceParams};
use crate::tracker::TransferStats;
use crate::wire::Limits;
use crossbeam_channel::{bounded, unbounded, Sender};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a session needs besides the metainfo.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub output_dir: PathBuf,
    /// Listening port; the next free one of `port..port+9` is used when taken. 0 = any.
    pub port: u16,
    /// Local address for the listener and for outgoing connections.
    pub bind_ip: Option<IpAddr>,
    pub max_peers: usize,
    pub sequential: bool,
    pub timeout: Duration,
    pub snub_timeout: Duration,
    pub seed: SeedPolicy,
    /// Peers to dial besides those the trackers return.
    pub peers: Vec<SocketAddr>,
    pub use_trackers: bool,
    pub progress: ProgressMode,
    pub upload_slots: usize,
    /// Hash every piece on disk at start, whatever the resume state says.
    pub recheck: bool,
    /// Keep the resume state file beside the download.
    pub resume: bool,
    /// A frame must arrive whole within this long of its first byte.
    pub frame_timeout: Duration,
    /// Signals asking the session to stop (see `crate::signals`); `None` = never.
    pub stop: Option<crossbeam_channel::Receiver<i32>>,
    /// Where `--report` writes the JSON run report.
    pub report: Option<PathBuf>,
    /// Bytes per second, all peers together; None = unlimited.
    pub max_upload_rate: Option<u64>,
    pub max_download_rate: Option<u64>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            output_dir: PathBuf::from("."),
            port: 6881,
            bind_ip: None,
            max_peers: 50,
            sequential: false,
            timeout: Duration::from_secs(120),
            snub_timeout: Duration::from_secs(10),
            seed: SeedPolicy::No,
            peers: Vec::new(),
            use_trackers: true,
            progress: ProgressMode::Auto,
            upload_slots: 4,
            recheck: false,
            resume: true,
            frame_timeout: crate::peer::FRAME_TIMEOUT,
            stop: None,
            report: None,
            max_upload_rate: None,
            max_download_rate: None,
        }
    }
}

/// How a session ended.
#[derive(Debug)]
pub struct Summary {
    pub total_length: u64,
    pub elapsed: Duration,
    pub stats: RunStats,
    pub pieces_already_had: u32,
    pub listen_addr: SocketAddr,
    /// Why the run ended before the download was complete (a seed always does): `None` for a
    /// complete download.
    pub ended_early: Option<String>,
}

/// A session failure, for the user.
#[derive(Debug)]
pub struct SessionError {
    pub message: String,
    /// What the run did before it ended, if it got as far as running (for `--report`).
    pub summary: Option<Box<Summary>>,
}

impl SessionError {
    fn new(message: impl Into<String>) -> SessionError {
        SessionError {
            message: message.into(),
            summary: None,
        }
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SessionError {}

/// Runs a session to its end; `on_listening` is told the listening address once bound.
pub fn run(
    meta: Metainfo,
    cfg: SessionConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<Summary, SessionError> {
    let started = Instant::now();
    let meta = Arc::new(meta);
    let layout = meta.layout();
    let storage = Arc::new(
        Storage::open(&cfg.output_dir, &layout).map_err(|e| SessionError::new(e.to_string()))?,
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let state_path = crate::resume_store::state_path(&cfg.output_dir, &meta.info.name);
    let recorded = if cfg.resume {
        crate::resume_store::load(&state_path, layout.num_pieces(), layout.files().len())
    } else {
        None
    };
    // With a boot id, verified data is left to the kernel to write back (resume_store's doc).
    let boot = crate::resume_store::boot_id();
    let have = initial_pieces(
        &storage,
        &meta,
        recorded.as_ref(),
        cfg.recheck,
        workers,
        boot.as_deref(),
    );
    let pieces_already_had = have.count();

    let listen_ip = cfg.bind_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let listener = crate::net::bind_listener(listen_ip, cfg.port, 9).map_err(|e| {
        SessionError::new(format!(
            "cannot listen on {listen_ip} port {}: {e}",
            cfg.port
        ))
    })?;
    let listen_addr = listener
        .local_addr()
        .map_err(|e| SessionError::new(e.to_string()))?;
    on_listening(listen_addr);
    log::info!("listening on {listen_addr}");

    let our_id = PeerId::generate();
    let (events_tx, events_rx) = bounded(4096);
    // 256 spare 16 KiB buffers at most (4 MiB).
    let pool = Arc::new(BlockPool::new(256));
    let ctx = Arc::new(PeerContext {
        info_hash: meta.info_hash,
        our_id,
        limits: Limits::for_torrent(layout.num_pieces()),
        num_pieces: layout.num_pieces(),
        storage: storage.clone(),
        events: events_tx,
        frame_timeout: cfg.frame_timeout,
        pool: pool.clone(),
        upload_limit: cfg.max_upload_rate.map(|r| Arc::new(RateLimit::new(r))),
        download_limit: cfg.max_download_rate.map(|r| Arc::new(RateLimit::new(r))),
        readers: SpareThreads::new("peer-r", PEER_STACK_SIZE, MAX_SPARE_THREADS),
        writers: SpareThreads::new("peer-w", PEER_STACK_SIZE, MAX_SPARE_THREADS),
    });
    // Threads for the first connection, ready before it arrives (see spare_threads).
    ctx.readers.prestart(1);
    ctx.writers.prestart(1);

    let (results_tx, results_rx) = unbounded();
    // A seed that starts complete never hashes or records anything new: no threads for that,
    // which keeps a swarm of hundreds of seeder processes within the machine's task limit.
    let complete = have.is_complete();
    let workers = if complete { 0 } else { workers };
    let jobs_tx = crate::verify::spawn_verifiers(
        workers,
        hash_queue_len(layout.piece_length()),
        storage.clone(),
        pool.clone(),
        results_tx,
    )
    .map_err(|e| SessionError::new(format!("cannot start verifier threads: {e}")))?;

    let (incoming_tx, incoming_rx) = unbounded();
    spawn_listener(listener, incoming_tx);
    if cfg.resume && complete && pieces_already_had > 0 {
        // Record the check now: the next start (or a second seeder of the same data) trusts
        // it instead of hashing everything again.
        let verified = RunStats {
            verified: Some(have.clone()),
            ..RunStats::default()
        };
        save_final(&storage, &meta, &state_path, &verified, boot.as_deref());
    }
    let saver = if cfg.resume && !complete {
        Some(
            Saver::spawn(
                state_path.clone(),
                meta.info_hash,
                storage.clone(),
                boot.clone(),
            )
            .map_err(|e| SessionError::new(format!("cannot start the resume saver: {e}")))?,
        )
    } else {
        None
    };

    let left = layout.total_length()
        - have
            .iter_set()
            .map(|i| layout.piece_len(i) as u64)
            .sum::<u64>();
    let stats = Arc::new(TransferStats::new(left));
    let (peers_tx, peers_rx) = unbounded();
    let tiers = meta.tracker_tiers();
    let mut announcer = None;
    let mut announcer_tx = None;
    if cfg.use_trackers && !tiers.is_empty() {
        let (ctl_tx, ctl_rx) = unbounded();
        let mut params = AnnounceParams::new(meta.info_hash, our_id, listen_addr.port());
        params.ip = cfg.bind_ip.filter(|ip| !ip.is_unspecified());
        params.config.local_ip = params.ip;
        // Ask for enough peers to fill our connection slots (trackers cap it themselves).
        params.numwant = cfg.max_peers.clamp(50, 200) as u32;
        announcer = Some(
            spawn_announcer(tiers, params, stats.clone(), peers_tx, ctl_rx).map_err(|e| {
                SessionError::new(format!("cannot start the announcer thread: {e}"))
            })?,
        );
        announcer_tx = Some(ctl_tx);
    } else {
        drop(peers_tx);
    }

    let coordinator_cfg = CoordinatorConfig {
        max_peers: cfg.max_peers,
        mode: if cfg.sequential {
            PickMode::Sequential
        } else {
            PickMode::RarestFirst
        },
        timeout: cfg.timeout,
        snub_timeout: cfg.snub_timeout,
        seed: cfg.seed,
        bind_ip: cfg.bind_ip,
        listen_addr: Some(listen_addr),
        upload_slots: cfg.upload_slots,
        flush_on_complete: boot.is_none(),
    };
    let coordinator = Coordinator::new(
        meta.clone(),
        ctx,
        coordinator_cfg,
        &have,
        stats,
        Progress::new(cfg.progress),
        Outputs {
            hash_jobs: jobs_tx,
            announcer: announcer_tx,
            resume: saver.as_ref().map(Saver::sender),
        },
    );
    let inputs = Inputs {
        events: events_rx,
        hash_results: results_rx,
        new_peers: peers_rx,
        incoming: incoming_rx,
        stop: cfg.stop.clone().unwrap_or_else(crossbeam_channel::never),
    };
    let (outcome, stats) = coordinator.run(inputs, cfg.peers.clone());

    // The coordinator dropped the announcer's control sender: it is sending `stopped` while
    // we flush and save.
    let mut saved = String::new();
    if let Some(saver) = saver {
        saver.finish();
    }
    if cfg.resume {
        saved = save_final(&storage, &meta, &state_path, &stats, boot.as_deref());
    }
    if let Some(handle) = announcer {
        let _ = handle.join();
    }
    wake_listener(listen_addr);
    log::debug!("session over: {outcome:?}");

    let mut summary = Summary {
        total_length: layout.total_length(),
        elapsed: started.elapsed(),
        stats,
        pieces_already_had,
        listen_addr,
        ended_early: None,
    };
    let (why, message) = match outcome {
        Outcome::Complete => return Ok(summary),
        Outcome::TimedOut => {
            let why = format!("no piece within {} s", cfg.timeout.as_secs());
            let message = format!(
                "no piece could be downloaded within {} s (no tracker or peer delivered data)",
                cfg.timeout.as_secs()
            );
            (why, message)
        }
        Outcome::StorageFailed(e) => (
            "storage failed".to_string(),
            format!("storage failed: {e}{saved}"),
        ),
        Outcome::Interrupted(signal) => {
            let why = format!("stopped by {}", crate::signals::name(signal));
            let message = format!("{why}{saved}");
            (why, message)
        }
    };
    summary.ended_early = Some(why);
    Err(SessionError {
        message,
        summary: Some(Box::new(summary)),
    })
}

/// Writes the final resume state, flushing the maps first when there is no `boot` id to record
/// instead; returns a note for the user.
fn save_final(
    storage: &Storage,
    meta: &Metainfo,
    path: &std::path::Path,
    stats: &RunStats,
    boot: Option<&str>,
) -> String {
    let Some(pieces) = stats.verified.clone() else {
        return String::new();
    };
    let started = std::time::SystemTime::now();
    if boot.is_none() {
        if let Err(e) = storage.flush() {
            log::warn!("{e}");
            return format!("; resume state not saved: {e}");
        }
    }
    // With writes possibly still landing, recent mtimes are not recorded (see resume_store).
    let settled = stats
        .writes_pending
        .then(|| started.checked_sub(Duration::from_secs(2)))
        .flatten();
    let state = ResumeState {
        info_hash: meta.info_hash,
        files: crate::resume_store::stamps(storage, settled),
        pieces,
        unflushed_boot: boot.map(str::to_string),
    };
    let done = state.pieces.count();
    match crate::resume_store::save(path, &state, true) {
        Ok(()) => format!(
            "; {done} of {} pieces verified, state saved in {}",
            state.pieces.len(),
            path.display()
        ),
        Err(e) => {
            log::warn!("cannot save resume state {}: {e}", path.display());
            format!("; resume state not saved: {}: {e}", path.display())
        }
    }
}

/// The pieces we have at start: recorded ones whose files are unchanged are trusted, the rest
/// of what the resume plan says is hashed from disk (everything when there is no usable state).
fn initial_pieces(
    storage: &Storage,
    meta: &Metainfo,
    recorded: Option<&ResumeState>,
    recheck: bool,
    workers: usize,
    boot: Option<&str>,
) -> Bitfield {
    let layout = storage.layout();
    let now = crate::resume_store::stamps(storage, None);
    let plan = crate::resume::plan(layout, meta.info_hash, recorded, &now, recheck, boot);
    let mut have = plan.trusted;
    let trusted = have.count();
    let mut hashed = 0;
    if !plan.to_check.is_empty() && (storage.had_data() || recorded.is_some()) {
        hashed = plan.to_check.len();
        for piece in check_pieces(storage, meta, &plan.to_check, workers) {
            have.set(piece);
        }
    }
    log::info!(
        "{} of {} pieces already on disk ({trusted} trusted from the resume state, {hashed} hashed)",
        have.count(),
        layout.num_pieces(),
    );
    have
}

/// Hashes `pieces` as they stand on disk (on all cores) and returns the good ones.
fn check_pieces(storage: &Storage, meta: &Metainfo, pieces: &[u32], workers: usize) -> Vec<u32> {
    let workers = workers.max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut buf = Vec::new();
                    pieces
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .copied()
                        .filter(|&i| {
                            crate::verify::piece_on_disk_matches(
                                storage,
                                i,
                                &meta.info.piece_hashes[i as usize],
                                &mut buf,
                            )
                        })
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Bytes of complete pieces that may wait for a verifier (besides one per worker).
const HASH_QUEUE_BYTES: u64 = 2 << 20;

/// How many complete pieces may wait for a verifier: 8 of 256 KiB, 2 of 1 MiB or more. Room
/// for more than one keeps the coordinator from stopping at every piece while both verifiers
/// are busy: stopped, it tops up no request queue, the peers run dry, and the cores idle once
/// the verifiers catch up (README, change 18). Large pieces get no more than two: whole pieces
/// held in memory are what private memory is made of.
fn hash_queue_len(piece_length: u64) -> usize {
    (HASH_QUEUE_BYTES / piece_length.max(1)).max(2) as usize
}

/// Accepts connections and hands them to the coordinator; ends when the coordinator is gone.
fn spawn_listener(listener: TcpListener, incoming: Sender<TcpStream>) {
    let _ = std::thread::Builder::new()
        .name("listener".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if incoming.send(stream).is_err() {
                    break;
                }
            }
        });
}

/// Connects once to our own listener so its blocking accept returns and it sees the
/// coordinator is gone.
fn wake_listener(addr: SocketAddr) {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };
    let _ = TcpStream::connect_timeout(&target, Duration::from_millis(200));
}

#[cfg(test)]
mod tests {
    use super::hash_queue_len;

    #[test]
    fn the_verifier_queue_holds_two_mib_of_pieces_and_at_least_two() {
        assert_eq!(hash_queue_len(16 << 10), 128);
        assert_eq!(hash_queue_len(256 << 10), 8);
        assert_eq!(hash_queue_len(1 << 20), 2);
        assert_eq!(hash_queue_len(4 << 20), 2);
        assert_eq!(hash_queue_len(16 << 20), 2);
    }
}
