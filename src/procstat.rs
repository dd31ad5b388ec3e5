//! This process's resource use, read from `/proc/self` (Linux; zeros elsewhere).
//!
//! Used by the run report: private memory (RssAnon — file pages of the memory map are not
//! counted, which is what makes it honest for an mmap client), OS threads, context switches.

/// One reading.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub rss_anon: u64,
    pub threads: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

/// Memory and thread count only, from `/proc/self/status`: one small read, cheap enough for
/// the coordinator's one-second tick (switches are left at zero).
pub fn memory_and_threads() -> Usage {
    let mut u = Usage::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        u.rss_anon = field(&status, "RssAnon:") * 1024;
        u.threads = field(&status, "Threads:");
    }
    u
}

/// [`memory_and_threads`] plus context switches summed over every thread in `/proc/self/task`
/// (the process-level counters cover the main thread only). That is a file per thread, so
/// it is read once, for the report.
pub fn sample() -> Usage {
    let mut u = memory_and_threads();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(status) = std::fs::read_to_string(task.path().join("status")) {
                u.voluntary_switches += field(&status, "voluntary_ctxt_switches:");
                u.involuntary_switches += field(&status, "nonvoluntary_ctxt_switches:");
            }
        }
    }
    u
}

/// The first number after `name` at the start of a line (`VmRSS:  1234 kB` → 1234).
fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Total CPU time (user + system) of this process so far, in seconds, from `/proc/self/stat`.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status_fields() {
        let text = "Name:\tx\nRssAnon:\t  2048 kB\nThreads:\t5\n";
        assert_eq!(super::field(text, "RssAnon:"), 2048);
        assert_eq!(super::field(text, "Threads:"), 5);
        assert_eq!(super::field(text, "Missing:"), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let u = super::sample();
        assert!(u.threads >= 1);
        assert!(u.rss_anon > 0);
        assert!(u.voluntary_switches + u.involuntary_switches > 0);
        let m = super::memory_and_threads();
        assert!(m.threads >= 1 && m.rss_anon > 0);
        assert_eq!(m.voluntary_switches + m.involuntary_switches, 0);
    }
}
