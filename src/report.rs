//! The run report: what a download cost and who it came from.
//!
//! Printed as a short text summary at the end of every run (a seed's, or a download's that a
//! signal stopped, included), and written as JSON with `--report FILE`. It is the raw material of the threads-vs-async lesson: per-peer bytes and
//! rates, the client's OS threads, peak private memory and context switches (from /proc), and
//! the time spent hashing and writing.

use crate::procstat;
use crate::session::Summary;
use std::fmt::Write as _;

/// Everything the report shows, gathered once at the end of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub info_hash: String,
    /// "complete", or why the run ended before (e.g. "stopped by SIGTERM").
    pub outcome: String,
    pub summary_elapsed_s: f64,
    pub total_length: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub wasted: u64,
    pub pieces_failed: u32,
    pub pieces_already_had: u32,
    pub hash_s: f64,
    pub write_s: f64,
    pub cpu_s: f64,
    pub peak_rss_anon: u64,
    pub peak_threads: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub peers: Vec<PeerLine>,
}

#[derive(Debug, Clone)]
pub struct PeerLine {
    pub addr: String,
    pub client: String,
    pub downloaded: u64,
    pub uploaded: u64,
    pub blocks: u64,
    pub seconds: f64,
}

impl Report {
    pub fn new(name: &str, info_hash: &str, s: &Summary) -> Report {
        let usage = procstat::sample();
        let mut peers: Vec<PeerLine> = s
            .stats
            .per_peer
            .iter()
            .map(|p| PeerLine {
                addr: p.addr.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
                client: p.client.clone(),
                downloaded: p.downloaded,
                uploaded: p.uploaded,
                blocks: p.blocks,
                seconds: p.connected_for.as_secs_f64(),
            })
            .collect();
        peers.sort_by(|a, b| {
            b.downloaded
                .cmp(&a.downloaded)
                .then(b.uploaded.cmp(&a.uploaded))
        });
        Report {
            name: name.to_string(),
            info_hash: info_hash.to_string(),
            outcome: s.ended_early.clone().unwrap_or_else(|| "complete".into()),
            summary_elapsed_s: s.elapsed.as_secs_f64(),
            total_length: s.total_length,
            downloaded: s.stats.downloaded,
            uploaded: s.stats.uploaded,
            wasted: s.stats.wasted,
            pieces_failed: s.stats.pieces_failed,
            pieces_already_had: s.pieces_already_had,
            hash_s: s.stats.hash_time.as_secs_f64(),
            write_s: s.stats.write_time.as_secs_f64(),
            cpu_s: procstat::cpu_seconds(),
            peak_rss_anon: s.stats.peak_rss_anon.max(usage.rss_anon),
            peak_threads: s.stats.peak_threads.max(usage.threads),
            voluntary_switches: usage.voluntary_switches,
            involuntary_switches: usage.involuntary_switches,
            peers,
        }
    }

    /// A few lines for the terminal.
    pub fn text(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "  downloaded {:.1} MB ({:.1} MB/s), uploaded {:.1} MB, wasted {:.1} MB, {} piece(s) failed",
            mb(self.downloaded),
            mb(self.downloaded) / self.summary_elapsed_s.max(1e-3),
            mb(self.uploaded),
            mb(self.wasted),
            self.pieces_failed
        );
        let _ = writeln!(
            t,
            "  cpu {:.2} s, hashing {:.2} s, writing {:.2} s, peak private memory {:.1} MiB, {} threads at most, {} context switches",
            self.cpu_s,
            self.hash_s,
            self.write_s,
            self.peak_rss_anon as f64 / (1 << 20) as f64,
            self.peak_threads,
            self.voluntary_switches + self.involuntary_switches
        );
        for p in self.peers.iter().take(8) {
            let _ = writeln!(
                t,
                "  peer {:<22} {:<10} down {:>8.1} MB  up {:>8.1} MB  {:>7} blocks  {:.1} s",
                p.addr,
                p.client,
                mb(p.downloaded),
                mb(p.uploaded),
                p.blocks,
                p.seconds
            );
        }
        if self.peers.len() > 8 {
            let _ = writeln!(t, "  … and {} more peers", self.peers.len() - 8);
        }
        t
    }

    /// The report as JSON (hand-written: the runtime needs no JSON crate).
    pub fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"name\": {},", quote(&self.name));
        let _ = writeln!(j, "  \"info_hash\": {},", quote(&self.info_hash));
        let _ = writeln!(j, "  \"outcome\": {},", quote(&self.outcome));
        let _ = writeln!(j, "  \"elapsed_s\": {:.3},", self.summary_elapsed_s);
        for (k, v) in [
            ("total_length", self.total_length),
            ("downloaded", self.downloaded),
            ("uploaded", self.uploaded),
            ("wasted", self.wasted),
            ("pieces_failed", self.pieces_failed as u64),
            ("pieces_already_had", self.pieces_already_had as u64),
            ("peak_rss_anon", self.peak_rss_anon),
            ("peak_threads", self.peak_threads),
            ("voluntary_switches", self.voluntary_switches),
            ("involuntary_switches", self.involuntary_switches),
        ] {
            let _ = writeln!(j, "  \"{k}\": {v},");
        }
        let _ = writeln!(j, "  \"cpu_s\": {:.3},", self.cpu_s);
        let _ = writeln!(j, "  \"hash_s\": {:.3},", self.hash_s);
        let _ = writeln!(j, "  \"write_s\": {:.3},", self.write_s);
        j.push_str("  \"peers\": [");
        for (i, p) in self.peers.iter().enumerate() {
            let _ = write!(
                j,
                "{}\n    {{\"addr\": {}, \"client\": {}, \"downloaded\": {}, \"uploaded\": {}, \"blocks\": {}, \"seconds\": {:.3}, \"rate\": {:.0}}}",
                if i == 0 { "" } else { "," },
                quote(&p.addr),
                quote(&p.client),
                p.downloaded,
                p.uploaded,
                p.blocks,
                p.seconds,
                p.downloaded as f64 / p.seconds.max(1e-3)
            );
        }
        j.push_str("\n  ]\n}\n");
        j
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_quotes_and_lists_peers() {
        let r = Report {
            name: "a\"b".into(),
            info_hash: "00".into(),
            outcome: "complete".into(),
            summary_elapsed_s: 1.0,
            total_length: 10,
            downloaded: 10,
            uploaded: 0,
            wasted: 0,
            pieces_failed: 0,
            pieces_already_had: 0,
            hash_s: 0.0,
            write_s: 0.0,
            cpu_s: 0.1,
            peak_rss_anon: 1,
            peak_threads: 3,
            voluntary_switches: 1,
            involuntary_switches: 1,
            peers: vec![PeerLine {
                addr: "127.0.0.1:1".into(),
                client: "MB 0001".into(),
                downloaded: 10,
                uploaded: 0,
                blocks: 1,
                seconds: 1.0,
            }],
        };
        let j = r.json();
        assert!(j.contains("\"name\": \"a\\\"b\""));
        assert!(j.contains("\"addr\": \"127.0.0.1:1\""));
        assert!(j.contains("\"downloaded\": 10,"));
        assert_eq!(j.matches('{').count(), j.matches('}').count());
    }
}
