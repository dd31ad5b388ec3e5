//! The resume state file on disk: where it lives, loading it, saving it atomically, and the
//! saver thread that keeps it current during a download.
//!
//! One file per torrent, beside the download: `<output dir>/.<torrent name>.minibt-resume`
//! (format in `crate::resume`). Saves write `<file>.tmp` and rename it over the old one, so a
//! crash leaves either the old or the new state, never half of one.
//!
//! The session starts the [`Saver`]; the coordinator hands it the verified-pieces bitfield at
//! most once a second (never per piece). The saver thread stamps each file and writes the
//! record. While writes may still be landing, a file whose mtime is recent is stamped "unknown"
//! (a later write in the same timestamp tick would otherwise go unnoticed): its pieces will be
//! hashed on resume anyway. The session's final save, taken once nothing writes any more,
//! records exact mtimes.
//!
//! Where the machine has a boot id ([`boot_id`], Linux), records carry it and the data is not
//! flushed first: the page cache survives a crash of minibt, and a crash of the machine changes
//! the boot id, which makes the next start hash everything (see `crate::resume`). Elsewhere
//! the maps of the files whose stamp lets their pieces be trusted are flushed before the record
//! is written, so those pieces are on disk first.

use crate::bitfield::Bitfield;
use crate::ids::InfoHash;
use crate::resume::{FileStamp, ResumeState};
use crate::storage::Storage;
use crossbeam_channel::{bounded, Sender, TrySendError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file modified less than this before a save started may still change within the same
/// mtime tick: it is recorded as "unknown". Generous for filesystems with coarse timestamps.
const SETTLE: Duration = Duration::from_secs(2);

/// `<output dir>/.<name>.minibt-resume`.
pub fn state_path(output_dir: &Path, name: &str) -> PathBuf {
    output_dir.join(format!(".{name}.minibt-resume"))
}

/// Loads a state file; `None` (with the reason logged) when absent or unusable.
pub fn load(path: &Path, num_pieces: u32, num_files: usize) -> Option<ResumeState> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!(
                "cannot read {}: {e}; checking the data instead",
                path.display()
            );
            return None;
        }
    };
    match ResumeState::decode(&bytes, num_pieces, num_files) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("{}: {e}; checking the data instead", path.display());
            None
        }
    }
}

/// Writes `state` to `path` through a temporary file and a rename.
pub fn save(path: &Path, state: &ResumeState, sync: bool) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&state.encode())?;
    if sync {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(&tmp, path)
}

/// This boot of the machine's id (Linux: `/proc/sys/kernel/random/boot_id`), if there is one.
pub fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = text.trim();
    (!id.is_empty() && id.len() <= 64).then(|| id.to_string())
}

/// Size and mtime of each of the torrent's files now. With `settled_before`, a file modified at
/// or after that time gets an unknown mtime.
pub fn stamps(storage: &Storage, settled_before: Option<SystemTime>) -> Vec<FileStamp> {
    storage
        .paths()
        .zip(storage.layout().files())
        .map(|(p, slot)| {
            if slot.padding {
                // Never on disk: a fixed stamp so padding never makes a piece look changed.
                return FileStamp {
                    size: slot.length,
                    mtime_ns: Some(0),
                };
            }
            let Ok(meta) = std::fs::metadata(p) else {
                return FileStamp {
                    size: u64::MAX,
                    mtime_ns: None,
                };
            };
            let mtime = meta.modified().ok();
            let settled = match (mtime, settled_before) {
                (Some(m), Some(limit)) => m < limit,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let mtime_ns = mtime
                .filter(|_| settled)
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_nanos()).ok());
            FileStamp {
                size: meta.len(),
                mtime_ns,
            }
        })
        .collect()
}

/// The saver thread's handle. Dropping [`Saver::sender`]'s clones and calling
/// [`Saver::finish`] ends it.
pub struct Saver {
    tx: Option<Sender<Bitfield>>,
    handle: Option<JoinHandle<()>>,
}

impl Saver {
    /// Starts the thread that saves `path` for `info_hash` whenever it is sent a bitfield.
    /// With a `boot` id the records carry it and nothing is flushed (module doc).
    pub fn spawn(
        path: PathBuf,
        info_hash: InfoHash,
        storage: Arc<Storage>,
        boot: Option<String>,
    ) -> io::Result<Saver> {
        // One pending snapshot at most: the coordinator retries next second if the saver is busy.
        let (tx, rx) = bounded::<Bitfield>(1);
        let handle = std::thread::Builder::new()
            .name("resume-saver".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                for pieces in rx {
                    let started = SystemTime::now();
                    let files = stamps(&storage, started.checked_sub(SETTLE));
                    // Only files recorded with a settled mtime can have their pieces trusted
                    // without hashing, so only they must be on disk before we say so. Files
                    // still being written are recorded as unsettled and flushed later: msync
                    // of pages still mapped is the most expensive thing a download does.
                    let flushed = files
                        .iter()
                        .enumerate()
                        .filter(|(_, stamp)| boot.is_none() && stamp.mtime_ns.is_some())
                        .try_for_each(|(i, _)| storage.flush_file(i));
                    if let Err(e) = flushed {
                        log::warn!("{e}");
                        continue; // never record pieces that may not be on disk
                    }
                    let state = ResumeState {
                        info_hash,
                        pieces,
                        files,
                        unflushed_boot: boot.clone(),
                    };
                    if let Err(e) = save(&path, &state, false) {
                        log::warn!("cannot save resume state {}: {e}", path.display());
                    }
                }
            })?;
        Ok(Saver {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// The channel the coordinator offers snapshots on.
    pub fn sender(&self) -> Sender<Bitfield> {
        self.tx.clone().expect("saver running")
    }

    /// Waits for a save in progress to end and stops the thread (every other sender must be
    /// dropped first).
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Offers a snapshot without waiting; false when the saver is still busy with the last one.
pub fn offer(tx: &Sender<Bitfield>, pieces: &Bitfield) -> bool {
    !matches!(tx.try_send(pieces.clone()), Err(TrySendError::Full(_)))
}
