//! Progress display and transfer rates.
//!
//! The coordinator calls [`Progress::update`] about once a second with a [`Snapshot`]. On a
//! terminal the line is redrawn in place (bar, percent, pieces, rates, peers, ETA); when stderr
//! is not a terminal a plain log line is printed every few seconds instead; `-q` prints nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A byte counter with a smoothed rate, sampled by the coordinator's tick.
#[derive(Debug, Default, Clone)]
pub struct RateMeter {
    total: u64,
    at_last_sample: u64,
    rate: f64,
}

impl RateMeter {
    pub fn add(&mut self, bytes: u64) {
        self.total += bytes;
    }

    /// Folds the bytes since the last sample into the rate (exponential moving average).
    pub fn sample(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let instant = (self.total - self.at_last_sample) as f64 / secs;
        self.at_last_sample = self.total;
        self.rate = if self.rate == 0.0 {
            instant
        } else {
            0.5 * self.rate + 0.5 * instant
        };
    }

    /// Bytes per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Redraw on a terminal, periodic log lines otherwise.
    Auto,
    /// Nothing (`-q`).
    Quiet,
}

/// What the display shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub name: String,
    pub have_bytes: u64,
    pub total_bytes: u64,
    pub pieces_done: u32,
    pub pieces_total: u32,
    pub down_rate: f64,
    pub up_rate: f64,
    pub peers_connected: usize,
    pub peers_known: usize,
    pub seeding: bool,
}

pub struct Progress {
    mode: ProgressMode,
    tty: bool,
    last_line: Option<Instant>,
    drawn: bool,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        Progress {
            mode,
            tty: std::io::stderr().is_terminal(),
            last_line: None,
            drawn: false,
        }
    }

    pub fn update(&mut self, s: &Snapshot) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", render_line(s, true));
            let _ = err.flush();
            self.drawn = true;
        } else if self
            .last_line
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            self.last_line = Some(Instant::now());
            eprintln!("{}", render_line(s, false));
        }
    }

    /// Ends the redrawn line so later output starts on a fresh one.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }

    pub fn message(&mut self, text: &str) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        self.finish();
        eprintln!("{text}");
    }
}

/// One line of progress, e.g.
/// `[#########...........]  45.0%  460/1024 pieces  ↓ 12.3 MB/s ↑ 1.0 MB/s  peers 3/5  ETA 0:42`.
pub fn render_line(s: &Snapshot, bar: bool) -> String {
    let fraction = if s.total_bytes == 0 {
        1.0
    } else {
        s.have_bytes as f64 / s.total_bytes as f64
    };
    let mut line = String::new();
    if bar {
        let width = 24;
        let filled = ((fraction * width as f64).round() as usize).min(width);
        line.push('[');
        line.push_str(&"#".repeat(filled));
        line.push_str(&".".repeat(width - filled));
        line.push_str("] ");
    } else {
        line.push_str(&format!("{}: ", s.name));
    }
    line.push_str(&format!(
        "{:5.1}%  {}/{} pieces  down {}/s  up {}/s  peers {}/{}",
        fraction * 100.0,
        s.pieces_done,
        s.pieces_total,
        human_bytes(s.down_rate as u64),
        human_bytes(s.up_rate as u64),
        s.peers_connected,
        s.peers_known
    ));
    if s.seeding {
        line.push_str("  seeding");
    } else {
        let left = s.total_bytes.saturating_sub(s.have_bytes);
        let eta = if s.down_rate >= 1.0 {
            format_duration(Duration::from_secs_f64(left as f64 / s.down_rate))
        } else {
            "--:--".to_string()
        };
        line.push_str(&format!("  ETA {eta}"));
    }
    line
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `h:mm:ss` or `m:ss`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_bar_percent_pieces_rates_peers_and_eta() {
        let s = Snapshot {
            name: "x".into(),
            have_bytes: 512,
            total_bytes: 1024,
            pieces_done: 2,
            pieces_total: 4,
            down_rate: 256.0,
            up_rate: 0.0,
            peers_connected: 1,
            peers_known: 3,
            seeding: false,
        };
        let line = render_line(&s, true);
        assert!(line.starts_with("[############............]"), "{line}");
        assert!(line.contains(" 50.0%"));
        assert!(line.contains("2/4 pieces"));
        assert!(line.contains("down 256 B/s"));
        assert!(line.contains("peers 1/3"));
        assert!(line.contains("ETA 0:02"));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(format_duration(Duration::from_secs(3725)), "1:02:05");
    }

    #[test]
    fn rate_meter_smooths() {
        let mut r = RateMeter::default();
        r.add(1000);
        r.sample(Duration::from_secs(1));
        assert_eq!(r.rate(), 1000.0);
        r.sample(Duration::from_secs(1));
        assert_eq!(r.rate(), 500.0);
        assert_eq!(r.total(), 1000);
    }
}
