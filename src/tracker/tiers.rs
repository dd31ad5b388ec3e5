//! Tracker tiers (BEP 12): which tracker to ask, in which order.
//!
//! Owned by the announcer thread. Each tier is shuffled once; trackers are tried in order,
//! the one that answers moves to the front of its tier, and when a whole tier fails the next
//! tier is tried. A torrent without `announce-list` is a single tier of one tracker.
//! Every failure is logged with the tracker's URL and the reason.

use std::time::Instant;

use super::http::HttpTracker;
use super::udp::UdpTracker;
use super::{AnnounceRequest, AnnounceResponse, TrackerConfig, TrackerError};
use crate::ids::shuffle;

/// One tracker, by transport.
#[derive(Debug)]
pub enum Tracker {
    Http(HttpTracker),
    Udp(UdpTracker),
}

impl Tracker {
    /// Recognises `http://`, `https://` and `udp://` URLs.
    pub fn new(url: &str) -> Result<Tracker, TrackerError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("udp://") {
            Ok(Tracker::Udp(UdpTracker::new(url)?))
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            Ok(Tracker::Http(HttpTracker::new(url)?))
        } else {
            Err(TrackerError::BadUrl(format!("{url}: unsupported scheme")))
        }
    }

    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        config: &TrackerConfig,
    ) -> Result<AnnounceResponse, TrackerError> {
        match self {
            Tracker::Http(t) => t.announce(req, config),
            Tracker::Udp(t) => t.announce(req, config),
        }
    }
}

/// The tiers of one torrent, in BEP 12 order.
#[derive(Debug)]
pub struct Tiers {
    tiers: Vec<Vec<(String, Tracker)>>,
}

impl Tiers {
    /// Builds the tiers, shuffling each one. Unusable URLs and duplicates are dropped (with
    /// a warning); empty tiers disappear.
    pub fn new(urls: Vec<Vec<String>>) -> Tiers {
        let mut seen = std::collections::HashSet::new();
        let mut tiers = Vec::new();
        for tier in urls {
            let mut trackers = Vec::new();
            for url in tier {
                let url = url.trim().to_string();
                if !seen.insert(url.clone()) {
                    continue;
                }
                match Tracker::new(&url) {
                    Ok(t) => trackers.push((url, t)),
                    Err(e) => log::warn!("tracker {url}: skipped: {e}"),
                }
            }
            if !trackers.is_empty() {
                shuffle(&mut trackers);
                tiers.push(trackers);
            }
        }
        Tiers { tiers }
    }

    /// The URLs in current order, tier by tier.
    pub fn urls(&self) -> Vec<Vec<String>> {
        self.tiers
            .iter()
            .map(|t| t.iter().map(|(u, _)| u.clone()).collect())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Announces to the first tracker that answers; returns its URL and response. No new
    /// tracker is tried after `deadline` (if any). On total failure the error lists every
    /// tracker tried with its reason.
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        config: &TrackerConfig,
        deadline: Option<Instant>,
    ) -> Result<(String, AnnounceResponse), TrackerError> {
        let mut failures = Vec::new();
        for tier in &mut self.tiers {
            for i in 0..tier.len() {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(TrackerError::AllFailed(failures));
                }
                let (url, tracker) = &mut tier[i];
                match tracker.announce(req, config) {
                    Ok(resp) => {
                        if let Some(w) = &resp.warning {
                            log::warn!("tracker {url}: warning: {w}");
                        }
                        let url = url.clone();
                        // BEP 12: the tracker that answered moves to the front of its tier.
                        let entry = tier.remove(i);
                        tier.insert(0, entry);
                        return Ok((url, resp));
                    }
                    Err(e) => {
                        log::warn!("tracker {url}: announce failed: {e}");
                        failures.push((url.clone(), e));
                    }
                }
            }
        }
        Err(TrackerError::AllFailed(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_drop_bad_urls_duplicates_and_empty_tiers() {
        let t = Tiers::new(vec![
            vec!["ftp://x/".into(), "udp://a:1".into()],
            vec![],
            vec!["udp://a:1".into(), "http://b/announce".into()],
        ]);
        assert_eq!(
            t.urls(),
            vec![
                vec!["udp://a:1".to_string()],
                vec!["http://b/announce".into()]
            ]
        );
        assert!(Tiers::new(vec![vec!["nonsense".into()]]).is_empty());
    }

    #[test]
    fn each_tier_is_a_permutation_of_its_input() {
        let tier: Vec<String> = (1..=8).map(|i| format!("udp://h{i}:{i}")).collect();
        let t = Tiers::new(vec![tier.clone()]);
        let mut got = t.urls().remove(0);
        got.sort();
        let mut want = tier;
        want.sort();
        assert_eq!(got, want);
    }
}
