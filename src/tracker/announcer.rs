//! The announcer thread: keeps the trackers informed and feeds peer addresses to the session.
//!
//! Started by the session with [`spawn_announcer`]. It announces `started` at once, then
//! re-announces on the tracker's interval (BEP 3), earlier on [`AnnouncerCommand::NeedPeers`]
//! but never before the minimum interval, backs off exponentially while every tracker fails,
//! sends `completed` once, and when the control channel disconnects sends a best-effort
//! `stopped` with short timeouts and returns. Tracker choice follows BEP 12 ([`Tiers`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::{AnnounceRequest, Event, Tiers, TrackerConfig, TransferStats};
use crate::ids::{random_u64, InfoHash, PeerId};

/// Requests from the session to the announcer. Dropping the sender stops the announcer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnouncerCommand {
    /// We are short of peers: announce as soon as the minimum interval allows.
    NeedPeers,
    /// The download finished: send `completed` (once).
    Completed,
}

/// What the announcer needs besides the tracker list.
#[derive(Clone, Debug)]
pub struct AnnounceParams {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// Our listening port.
    pub port: u16,
    pub numwant: u32,
    /// Our address when bound to a specific one (`--bind-ip`), sent as BEP 3 `ip`.
    pub ip: Option<std::net::IpAddr>,
    /// Timeouts for each announce.
    pub config: TrackerConfig,
    /// No re-announce happens sooner than this after a successful one, whatever the tracker
    /// says; it is also the minimum interval when the tracker gives none.
    pub min_interval: Duration,
    /// First retry delay after every tracker failed; doubles up to `backoff_max`.
    pub backoff_start: Duration,
    pub backoff_max: Duration,
}

impl AnnounceParams {
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> AnnounceParams {
        AnnounceParams {
            info_hash,
            peer_id,
            port,
            numwant: 50,
            ip: None,
            config: TrackerConfig::default(),
            min_interval: Duration::from_secs(30),
            backoff_start: Duration::from_secs(5),
            backoff_max: Duration::from_secs(5 * 60),
        }
    }
}

/// The announcer's bookkeeping; one per thread.
struct Announcer {
    tiers: Tiers,
    params: AnnounceParams,
    stats: Arc<TransferStats>,
    peers_tx: Sender<Vec<SocketAddr>>,
    key: u32,
    tracker_id: Option<Vec<u8>>,
    started_sent: bool,
    completed_wanted: bool,
    completed_sent: bool,
    next_at: Instant,
    /// When the last announce succeeded and the minimum interval it imposed.
    last_ok: Option<(Instant, Duration)>,
    /// Current retry delay while failing; `None` while trackers answer.
    backoff: Option<Duration>,
}

impl Announcer {
    fn request(&self, event: Event) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: self.params.info_hash,
            peer_id: self.params.peer_id,
            port: self.params.port,
            uploaded: self.stats.uploaded.load(Ordering::Relaxed),
            downloaded: self.stats.downloaded.load(Ordering::Relaxed),
            left: self.stats.left.load(Ordering::Relaxed),
            event,
            numwant: self.params.numwant,
            key: self.key,
            tracker_id: self.tracker_id.clone(),
            ip: self.params.ip,
        }
    }

    fn next_event(&self) -> Event {
        if !self.started_sent {
            Event::Started
        } else if self.completed_wanted && !self.completed_sent {
            Event::Completed
        } else {
            Event::None
        }
    }

    fn announce_now(&mut self) {
        let event = self.next_event();
        let req = self.request(event);
        match self.tiers.announce(&req, &self.params.config, None) {
            Ok((url, resp)) => {
                log::info!(
                    "tracker {url}: {} peers, interval {:?}",
                    resp.peers.len(),
                    resp.interval
                );
                match event {
                    Event::Started => self.started_sent = true,
                    Event::Completed => self.completed_sent = true,
                    _ => {}
                }
                if resp.tracker_id.is_some() {
                    self.tracker_id = resp.tracker_id.clone();
                }
                let floor = self.params.min_interval;
                let min = resp.min_interval.unwrap_or(floor).max(floor);
                let now = Instant::now();
                self.last_ok = Some((now, min));
                self.backoff = None;
                self.next_at = now + resp.interval.max(min);
                if !resp.peers.is_empty() {
                    // A closed receiver means the session is going away; the control channel
                    // will tell us to stop.
                    let _ = self.peers_tx.send(resp.peers);
                }
            }
            Err(e) => {
                let delay = self.backoff.unwrap_or(self.params.backoff_start);
                log::warn!("announce ({event:?}) failed, retrying in {delay:?}: {e}");
                self.next_at = Instant::now() + delay;
                self.backoff = Some((delay * 2).min(self.params.backoff_max));
            }
        }
    }

    fn need_peers(&mut self) {
        if self.backoff.is_some() {
            return; // failing: the backoff schedule decides
        }
        let now = Instant::now();
        let earliest = match self.last_ok {
            Some((at, min)) => (at + min).max(now),
            None => now,
        };
        self.next_at = self.next_at.min(earliest);
    }

    fn stop(&mut self) {
        if !self.started_sent {
            return;
        }
        let req = self.request(Event::Stopped);
        let config = self.params.config.for_shutdown();
        // The whole shutdown aims at under 2 s: `stopped` gets at most one of them.
        let deadline = Instant::now() + Duration::from_secs(1);
        match self.tiers.announce(&req, &config, Some(deadline)) {
            Ok((url, _)) => log::debug!("tracker {url}: stopped"),
            Err(e) => log::warn!("stopped announce failed: {e}"),
        }
    }

    fn run(mut self, control: Receiver<AnnouncerCommand>) {
        if self.tiers.is_empty() {
            log::warn!("no usable tracker for {}", self.params.info_hash);
            // Nothing to do but wait for the session to let us go.
            while control.recv().is_ok() {}
            return;
        }
        loop {
            let wait = self.next_at.saturating_duration_since(Instant::now());
            select! {
                recv(control) -> msg => match msg {
                    Ok(AnnouncerCommand::NeedPeers) => self.need_peers(),
                    Ok(AnnouncerCommand::Completed) => {
                        if !self.completed_wanted {
                            self.completed_wanted = true;
                            if self.backoff.is_none() {
                                self.next_at = Instant::now();
                            }
                        }
                    }
                    Err(_) => {
                        self.stop();
                        return;
                    }
                },
                default(wait) => self.announce_now(),
            }
        }
    }
}

/// Starts the announcer thread for one torrent.
///
/// `tiers` is the metainfo's `announce-list`, or `vec![vec![announce]]` without one. Peer
/// addresses from every successful announce go to `peers_tx`. Dropping the sender of
/// `control` makes the thread send `stopped` (bounded wait) and exit; join the handle.
pub fn spawn_announcer(
    tiers: Vec<Vec<String>>,
    params: AnnounceParams,
    stats: Arc<TransferStats>,
    peers_tx: Sender<Vec<SocketAddr>>,
    control: Receiver<AnnouncerCommand>,
) -> std::io::Result<JoinHandle<()>> {
    let announcer = Announcer {
        tiers: Tiers::new(tiers),
        params,
        stats,
        peers_tx,
        key: random_u64() as u32,
        tracker_id: None,
        started_sent: false,
        completed_wanted: false,
        completed_sent: false,
        next_at: Instant::now(),
        last_ok: None,
        backoff: None,
    };
    std::thread::Builder::new()
        .name("announcer".into())
        // Enough for ureq + rustls handshakes, far below the 2 MiB default.
        .stack_size(512 * 1024)
        .spawn(move || announcer.run(control))
}
