//! Command line: pico-args → raw arguments → validated settings → the library.
//!
//! Called by `main.rs` ([`main_with_args`]). Parsing happens in two steps, ripgrep style:
//! [`RawArgs`] holds the strings as typed, [`Command`] the checked settings that the runners
//! take. Errors print `minibt: <error>` on one line and exit non-zero (2 for usage errors,
//! 1 for failures). Logging (env_logger, stderr) is set by `-v`/`-vv`/`-vvv` and `RUST_LOG`.
//!
//! To add a subcommand (`tracker`, `seed`, `demo`): a [`RawArgs`] variant and its parse arm
//! in [`parse_raw`], a [`Command`] variant built in [`validate`], a runner arm in [`run`], and
//! a line in `USAGE`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::coordinator::SeedPolicy;
use crate::create::{create_torrent, now_unix, CreateOptions};
use crate::metainfo::Metainfo;
use crate::progress::ProgressMode;
use crate::session::SessionConfig;
use std::time::Duration;

const USAGE: &str = "\
minibt — a small BitTorrent client

Usage:
  minibt FILE.torrent [options]  download into the current directory (or -o DIR)
  minibt seed FILE.torrent --from DIR [options]
                                 check the data in DIR and seed it (fetching any
                                 missing pieces); DIR must hold some of the files
  minibt demo [--seeders N] [--size SIZE] [--keep]
                                 a whole swarm on this machine: tracker, seeders, a download
  minibt tracker [--bind ADDR]   run the built-in tracker (HTTP and UDP, default 127.0.0.1:6969)
  minibt info FILE.torrent       show what a torrent contains
  minibt create PATH -t URL -o OUT.torrent [options]
                                 make a torrent from a file or directory

Download and seed options:
  -o, --output DIR               where the torrent's files go (default: .)
      --from DIR                 (seed) where the data is (default: .)
      --port N                   listening port (default 6881; the next free one up to 6889)
      --bind-ip IP               local address to listen on and connect from
      --peer HOST:PORT           also connect to this peer (repeatable)
      --no-tracker               do not announce (use with --peer)
      --max-peers N              connections to keep (default 50)
      --sequential               fetch pieces in order (for streaming media)
      --timeout SECS             give up when nothing verifies for this long (default 120)
      --snub-timeout SECS        re-request from others after this much silence (default 10)
      --recheck                  hash every piece on disk at start, ignoring the resume state
      --seed                     keep seeding after the download completes (until Ctrl-C)
      --seed-ratio R             ... until uploaded/size reaches R
      --seed-time SECS           ... for this many seconds
  -q, --quiet                    no progress display
      --max-upload-rate R        bytes per second for all peers together (K and M suffixes)
      --max-download-rate R      likewise for downloading
      --report FILE              write a JSON run report (peers, memory, threads, timings;
                                 also when stopped by a signal)

Progress is kept in .NAME.minibt-resume beside the download: an interrupted download
(Ctrl-C, SIGTERM, a crash) resumes where it stopped. Ctrl-C stops cleanly (exit 130);
a second Ctrl-C exits at once.

Global options:
  -v, -vv, -vvv                  more logging on stderr (RUST_LOG also works)
  -h, --help                     this help (`minibt create --help` for create's options)
  -V, --version                  print the version
";

const CREATE_USAGE: &str = "\
Usage: minibt create PATH --tracker URL [--tracker URL ...] -o OUT.torrent [options]

  -t, --tracker URL       announce URL; repeat for fallbacks (one BEP 12 tier each, in order)
  -o, --output FILE       where to write the torrent
  -l, --piece-length N    piece size in bytes, power of two >= 16 KiB; suffixes K and M allowed
                          (default: aims for 1000-2000 pieces, 16 KiB to 16 MiB)
  -p, --private           set the BEP 27 private flag
  -c, --comment TEXT      add a comment
      --no-date           leave out the creation date (reproducible output)
  -f, --force             overwrite OUT if it exists
";

const INFO_USAGE: &str = "Usage: minibt info FILE.torrent\n";

/// Runs minibt with the given arguments (without the program name); returns the exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let (verbosity, args) = take_verbosity(args);
    init_logging(verbosity);
    let command = match parse_raw(args).and_then(validate) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("minibt: {e}");
            return 2;
        }
    };
    match run(command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("minibt: {e}");
            // Stopped by a signal: say so in the exit status (130 for SIGINT, 143 for SIGTERM).
            crate::signals::received().map_or(1, crate::signals::exit_status)
        }
    }
}

/// Arguments as typed, sorted by subcommand but not yet checked.
#[derive(Debug)]
pub enum RawArgs {
    Help(&'static str),
    Version,
    Info {
        file: OsString,
    },
    Create {
        path: OsString,
        trackers: Vec<String>,
        output: Option<OsString>,
        piece_length: Option<String>,
        private: bool,
        comment: Option<String>,
        no_date: bool,
        force: bool,
    },
    /// `minibt FILE.torrent [options...]`: the options belong to the download engine.
    Download {
        torrent: OsString,
        rest: Vec<OsString>,
    },
    /// `minibt seed FILE.torrent [--from DIR] [options...]`.
    Seed {
        rest: Vec<OsString>,
    },
    Tracker {
        bind: Option<String>,
    },
    Demo {
        seeders: Option<usize>,
        size: Option<String>,
        keep: bool,
    },
}

/// Checked settings, ready to run.
#[derive(Debug)]
pub enum Command {
    Help(&'static str),
    Version,
    Info {
        file: PathBuf,
    },
    Create {
        options: CreateOptions,
        output: PathBuf,
        force: bool,
    },
    Download {
        torrent: PathBuf,
        config: SessionConfig,
    },
    Seed {
        torrent: PathBuf,
        config: SessionConfig,
    },
    Tracker {
        bind: std::net::SocketAddr,
    },
    Demo(crate::demo::DemoOptions),
}

/// Removes `-v`, `-vv`, `-vvv`, `--verbose` (anywhere) and counts them.
fn take_verbosity(args: Vec<OsString>) -> (u8, Vec<OsString>) {
    let mut level = 0u8;
    let mut rest = Vec::with_capacity(args.len());
    for a in args {
        match a.to_str() {
            Some("--verbose") => level = level.saturating_add(1),
            Some(s) if s.len() >= 2 && s.starts_with('-') && s[1..].bytes().all(|b| b == b'v') => {
                level = level.saturating_add((s.len() - 1) as u8)
            }
            _ => rest.push(a),
        }
    }
    (level, rest)
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.target(env_logger::Target::Stderr);
    // Milliseconds: at loopback speeds a whole download takes a couple of seconds.
    builder.format_timestamp_millis();
    // Already initialised when called twice in one process (tests): keep the first.
    let _ = builder.try_init();
}

fn usage_err(e: pico_args::Error) -> String {
    e.to_string()
}

/// Sorts the arguments by subcommand.
pub fn parse_raw(args: Vec<OsString>) -> Result<RawArgs, String> {
    let first = args.first().and_then(|a| a.to_str()).map(str::to_string);
    let help = |a: &[OsString]| a.iter().any(|x| x == "-h" || x == "--help");
    match first.as_deref() {
        None => Ok(RawArgs::Help(USAGE)),
        Some("-h" | "--help" | "help") => Ok(RawArgs::Help(USAGE)),
        Some("-V" | "--version") => Ok(RawArgs::Version),
        Some("info") if help(&args) => Ok(RawArgs::Help(INFO_USAGE)),
        Some("create") if help(&args) => Ok(RawArgs::Help(CREATE_USAGE)),
        Some("info") => {
            let mut p = pico_args::Arguments::from_vec(args[1..].to_vec());
            let file = p
                .free_from_os_str::<OsString, String>(|s| Ok(s.to_os_string()))
                .map_err(|_| "info: missing FILE.torrent (try `minibt info --help`)".to_string())?;
            no_leftovers(p, "info")?;
            Ok(RawArgs::Info { file })
        }
        Some("create") => {
            let mut p = pico_args::Arguments::from_vec(args[1..].to_vec());
            let trackers = p.values_from_str(["-t", "--tracker"]).map_err(usage_err)?;
            let output = p
                .opt_value_from_os_str::<_, OsString, String>(["-o", "--output"], |s| {
                    Ok(s.to_os_string())
                })
                .map_err(usage_err)?;
            let piece_length = p
                .opt_value_from_str(["-l", "--piece-length"])
                .map_err(usage_err)?;
            let comment = p
                .opt_value_from_str(["-c", "--comment"])
                .map_err(usage_err)?;
            let private = p.contains(["-p", "--private"]);
            let no_date = p.contains("--no-date");
            let force = p.contains(["-f", "--force"]);
            let path = p
                .free_from_os_str::<OsString, String>(|s| Ok(s.to_os_string()))
                .map_err(|_| "create: missing PATH (try `minibt create --help`)".to_string())?;
            no_leftovers(p, "create")?;
            Ok(RawArgs::Create {
                path,
                trackers,
                output,
                piece_length,
                private,
                comment,
                no_date,
                force,
            })
        }
        Some("tracker") if help(&args) => Ok(RawArgs::Help(USAGE)),
        Some("tracker") => {
            let mut p = pico_args::Arguments::from_vec(args[1..].to_vec());
            let bind = p.opt_value_from_str("--bind").map_err(usage_err)?;
            no_leftovers(p, "tracker")?;
            Ok(RawArgs::Tracker { bind })
        }
        Some("demo") if help(&args) => Ok(RawArgs::Help(USAGE)),
        Some("demo") => {
            let mut p = pico_args::Arguments::from_vec(args[1..].to_vec());
            let seeders = p.opt_value_from_str("--seeders").map_err(usage_err)?;
            let size = p.opt_value_from_str("--size").map_err(usage_err)?;
            let keep = p.contains("--keep");
            no_leftovers(p, "demo")?;
            Ok(RawArgs::Demo {
                seeders,
                size,
                keep,
            })
        }
        Some("seed") if help(&args) => Ok(RawArgs::Help(USAGE)),
        Some("seed") => Ok(RawArgs::Seed {
            rest: args[1..].to_vec(),
        }),
        Some(s) if s.starts_with('-') => Err(format!("unknown option {s:?} (try --help)")),
        // Anything else is a torrent to download (the path may not be UTF-8: use the OsString).
        _ if help(&args) => Ok(RawArgs::Help(USAGE)),
        _ => {
            let mut args = args;
            let torrent = args.remove(0);
            Ok(RawArgs::Download {
                torrent,
                rest: args,
            })
        }
    }
}

fn no_leftovers(p: pico_args::Arguments, cmd: &str) -> Result<(), String> {
    let rest = p.finish();
    if rest.is_empty() {
        Ok(())
    } else {
        // Only `create` has a help text of its own; there is no `download` subcommand.
        let help = if cmd == "create" {
            "minibt create --help"
        } else {
            "minibt --help"
        };
        Err(format!(
            "{cmd}: unexpected arguments {rest:?} (try `{help}`)"
        ))
    }
}

/// `16384`, `256K`, `256KiB`, `4M`, `4MiB` → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Checks raw arguments and builds the settings.
pub fn validate(raw: RawArgs) -> Result<Command, String> {
    Ok(match raw {
        RawArgs::Help(text) => Command::Help(text),
        RawArgs::Version => Command::Version,
        RawArgs::Info { file } => Command::Info {
            file: PathBuf::from(file),
        },
        RawArgs::Create {
            path,
            trackers,
            output,
            piece_length,
            private,
            comment,
            no_date,
            force,
        } => {
            if trackers.is_empty() {
                return Err("create: at least one --tracker URL is required".into());
            }
            for t in &trackers {
                if !(t.starts_with("http://")
                    || t.starts_with("https://")
                    || t.starts_with("udp://"))
                {
                    return Err(format!(
                        "create: --tracker {t:?} is not an http://, https:// or udp:// URL"
                    ));
                }
            }
            let Some(output) = output else {
                return Err("create: -o/--output FILE is required".into());
            };
            let piece_length = match piece_length {
                None => None,
                Some(s) => {
                    let n = parse_size(&s)
                        .ok_or_else(|| format!("create: --piece-length {s:?} is not a size"))?;
                    crate::create::check_piece_length(n).map_err(|e| format!("create: {e}"))?;
                    Some(n)
                }
            };
            let mut options = CreateOptions::new(PathBuf::from(path));
            options.trackers = trackers;
            options.piece_length = piece_length;
            options.private = private;
            options.comment = comment;
            options.creation_date = if no_date { None } else { Some(now_unix()) };
            Command::Create {
                options,
                output: PathBuf::from(output),
                force,
            }
        }
        RawArgs::Download { torrent, rest } => {
            let mut p = pico_args::Arguments::from_vec(rest);
            let config = session_options(&mut p, "download")?;
            no_leftovers(p, "download")?;
            Command::Download {
                torrent: PathBuf::from(torrent),
                config,
            }
        }
        RawArgs::Seed { rest } => {
            let mut p = pico_args::Arguments::from_vec(rest);
            let mut config = session_options(&mut p, "seed")?;
            config.seed = SeedPolicy::Forever;
            let torrent: OsString = p
                .free_from_os_str(|s| Ok::<_, String>(s.to_os_string()))
                .map_err(|_| "seed: missing FILE.torrent (try --help)".to_string())?;
            no_leftovers(p, "seed")?;
            Command::Seed {
                torrent: PathBuf::from(torrent),
                config,
            }
        }
        RawArgs::Demo {
            seeders,
            size,
            keep,
        } => Command::Demo(crate::demo::DemoOptions {
            seeders: seeders.unwrap_or(3).clamp(1, 50),
            size: match size {
                None => 64 << 20,
                Some(s) => parse_size(&s)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("demo: --size {s:?} is not a size"))?,
            },
            keep,
        }),
        RawArgs::Tracker { bind } => Command::Tracker {
            bind: bind
                .as_deref()
                .unwrap_or("127.0.0.1:6969")
                .parse()
                .map_err(|_| "tracker: --bind wants IP:PORT".to_string())?,
        },
    })
}

/// Runs a validated command.
pub fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Command::Version => {
            println!("minibt {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Info { file } => {
            let m = Metainfo::load(&file).map_err(|e| e.to_string())?;
            print!("{}", info_text(&m));
            Ok(())
        }
        Command::Create {
            options,
            output,
            force,
        } => run_create(&options, &output, force),
        Command::Download { torrent, config } => run_session(&torrent, config, false),
        Command::Seed { torrent, config } => run_session(&torrent, config, true),
        Command::Demo(opts) => crate::demo::run_demo(&opts),
        Command::Tracker { bind } => {
            eprintln!("minibt tracker on {bind} (HTTP and UDP); Ctrl-C stops it");
            crate::tracker_server::run_tracker(bind).map_err(|e| format!("tracker on {bind}: {e}"))
        }
    }
}

/// Options shared by download and seed.
fn session_options(p: &mut pico_args::Arguments, cmd: &str) -> Result<SessionConfig, String> {
    let mut c = SessionConfig::default();
    let output: Option<OsString> = p
        .opt_value_from_os_str(["-o", "--output"], |s| Ok::<_, String>(s.to_os_string()))
        .map_err(usage_err)?;
    let from: Option<OsString> = p
        .opt_value_from_os_str("--from", |s| Ok::<_, String>(s.to_os_string()))
        .map_err(usage_err)?;
    if let Some(dir) = from.or(output) {
        c.output_dir = PathBuf::from(dir);
    }
    if let Some(port) = p.opt_value_from_str("--port").map_err(usage_err)? {
        c.port = port;
    }
    c.bind_ip = p.opt_value_from_str("--bind-ip").map_err(usage_err)?;
    let peers: Vec<String> = p.values_from_str("--peer").map_err(usage_err)?;
    for peer in peers {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&peer)
            .map_err(|e| format!("{cmd}: --peer {peer}: {e}"))?
            .next()
            .ok_or_else(|| format!("{cmd}: --peer {peer}: no address"))?;
        c.peers.push(addr);
    }
    c.use_trackers = !p.contains("--no-tracker");
    if let Some(n) = p.opt_value_from_str("--max-peers").map_err(usage_err)? {
        c.max_peers = n;
    }
    c.sequential = p.contains("--sequential");
    if let Some(secs) = p
        .opt_value_from_str::<_, u64>("--snub-timeout")
        .map_err(usage_err)?
    {
        c.snub_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = p
        .opt_value_from_str::<_, u64>("--timeout")
        .map_err(usage_err)?
    {
        c.timeout = Duration::from_secs(secs.max(1));
    }
    if p.contains("--seed") {
        c.seed = SeedPolicy::Forever;
    }
    if let Some(r) = p
        .opt_value_from_str::<_, f64>("--seed-ratio")
        .map_err(usage_err)?
    {
        c.seed = SeedPolicy::Ratio(r);
    }
    if let Some(t) = p
        .opt_value_from_str::<_, u64>("--seed-time")
        .map_err(usage_err)?
    {
        c.seed = SeedPolicy::Time(Duration::from_secs(t));
    }
    if p.contains(["-q", "--quiet"]) {
        c.progress = ProgressMode::Quiet;
    }
    c.recheck = p.contains("--recheck");
    // Hidden, for tests: a shorter slowloris deadline.
    if let Some(secs) = p
        .opt_value_from_str::<_, u64>("--frame-timeout")
        .map_err(usage_err)?
    {
        c.frame_timeout = Duration::from_secs(secs.max(1));
    }
    for (flag, slot) in [
        ("--max-upload-rate", &mut c.max_upload_rate),
        ("--max-download-rate", &mut c.max_download_rate),
    ] {
        if let Some(rate) = p.opt_value_from_str::<_, String>(flag).map_err(usage_err)? {
            *slot = Some(
                parse_size(&rate).ok_or_else(|| format!("{cmd}: {flag} {rate:?} is not a size"))?,
            );
        }
    }
    c.report = p
        .opt_value_from_os_str("--report", |s| Ok::<_, String>(PathBuf::from(s)))
        .map_err(usage_err)?;
    Ok(c)
}

/// Loads the torrent, runs a download or (`seeding`) a seed of data already in the directory,
/// and prints the summary; writes the `--report` even when the run ends early.
fn run_session(torrent: &Path, mut config: SessionConfig, seeding: bool) -> Result<(), String> {
    let m = Metainfo::load(torrent).map_err(|e| e.to_string())?;
    if seeding {
        require_some_data(&m, &config.output_dir)?;
    }
    config.stop = Some(
        crate::signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?,
    );
    let quiet = config.progress == ProgressMode::Quiet;
    let name = m.info.name.clone();
    let dir = config.output_dir.clone();
    let info_hash = m.info_hash.hex();
    let report_path = config.report.clone();
    let write_report = |summary: &crate::session::Summary| {
        let report = crate::report::Report::new(&name, &info_hash, summary);
        if let Some(path) = &report_path {
            std::fs::write(path, report.json())
                .map_err(|e| format!("cannot write report {}: {e}", path.display()))?;
        }
        Ok::<_, String>(report)
    };
    let summary = match crate::session::run(m, config, |_| {}) {
        Ok(summary) => summary,
        Err(e) => {
            // A run that ended early (a seed always does) still reports what it did.
            if let Some(summary) = &e.summary {
                let report = write_report(summary)?;
                if !quiet {
                    eprint!("{}", report.text());
                }
            }
            return Err(format!("{name}: {e}"));
        }
    };
    let report = write_report(&summary)?;
    if !quiet {
        let secs = summary.elapsed.as_secs_f64().max(1e-3);
        let fetched = summary.stats.downloaded;
        eprintln!(
            "{name}: complete and verified in {}: {} in {:.1} s ({}/s average), uploaded {}",
            dir.join(&name).display(),
            human_size(summary.total_length),
            secs,
            human_size((fetched as f64 / secs) as u64),
            human_size(summary.stats.uploaded),
        );
        eprint!("{}", report.text());
    }
    Ok(())
}

/// `seed` where none of the torrent's files exists is almost surely a wrong `--from`: say so,
/// rather than create empty files there and wait for peers to fill them. (Some files, or
/// files in part, are fine: they are checked, and what is missing is fetched.)
fn require_some_data(m: &Metainfo, dir: &Path) -> Result<(), String> {
    let layout = m.layout();
    let expected: Vec<PathBuf> = layout
        .files()
        .iter()
        .filter(|f| !f.padding)
        .map(|f| dir.join(&f.path))
        .collect();
    if expected.is_empty() || expected.iter().any(|p| p.is_file()) {
        return Ok(());
    }
    let others = match expected.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Err(format!(
        "seed: none of {}'s files is in {} (looked for {}{others}; is --from right? to download \
         it, run `minibt FILE.torrent -o DIR`)",
        m.info.name,
        dir.display(),
        expected[0].display(),
    ))
}

fn run_create(options: &CreateOptions, output: &Path, force: bool) -> Result<(), String> {
    if output.exists() && !force {
        return Err(format!(
            "{}: already exists (use --force to overwrite)",
            output.display()
        ));
    }
    let bytes = create_torrent(options).map_err(|e| e.to_string())?;
    std::fs::write(output, &bytes).map_err(|e| format!("{}: {e}", output.display()))?;
    let m = Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())?;
    println!(
        "wrote {} ({} pieces, info hash {})",
        output.display(),
        m.num_pieces(),
        m.info_hash
    );
    Ok(())
}

/// `1536` → `1.50 KiB`; below 1 KiB: `512 B`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// Seconds since the Unix epoch → `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn utc_date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant): shift the epoch to 0000-03-01 so leap days end a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The human-readable description `minibt info` prints.
pub fn info_text(m: &Metainfo) -> String {
    let mut s = String::new();
    let total = m.total_length();
    let pl = m.info.piece_length;
    let _ = writeln!(s, "name:          {}", m.info.name);
    let _ = writeln!(s, "info hash:     {}", m.info_hash);
    let _ = writeln!(s, "total size:    {} ({total} bytes)", human_size(total));
    let _ = writeln!(
        s,
        "pieces:        {} x {} ({pl} bytes)",
        m.num_pieces(),
        human_size(pl)
    );
    let _ = writeln!(
        s,
        "private:       {}",
        if m.info.private { "yes" } else { "no" }
    );
    if let Some(c) = &m.comment {
        let _ = writeln!(s, "comment:       {c}");
    }
    if let Some(c) = &m.created_by {
        let _ = writeln!(s, "created by:    {c}");
    }
    if let Some(d) = m.creation_date {
        let _ = writeln!(s, "creation date: {}", utc_date_time(d));
    }
    let tiers = m.tracker_tiers();
    if tiers.is_empty() {
        let _ = writeln!(s, "trackers:      none");
    } else {
        let _ = writeln!(s, "trackers:");
        for (i, tier) in tiers.iter().enumerate() {
            for (j, url) in tier.iter().enumerate() {
                if j == 0 {
                    let _ = writeln!(s, "  tier {}: {url}", i + 1);
                } else {
                    let _ = writeln!(s, "          {url}");
                }
            }
        }
    }
    let paths = m.file_paths();
    let _ = writeln!(s, "files ({}):", paths.len());
    for (path, f) in paths.iter().zip(&m.info.files) {
        let pad = if f.padding { "  [padding]" } else { "" };
        let _ = writeln!(
            s,
            "  {:>10}  {:>12} B  {}{pad}",
            human_size(f.length),
            f.length,
            path.display()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn dates_are_computed_by_hand() {
        assert_eq!(utc_date_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_date_time(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc_date_time(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.50 KiB");
        assert_eq!(human_size(5 << 30), "5.00 GiB");
        assert_eq!(parse_size("16384"), Some(16384));
        assert_eq!(parse_size("256K"), Some(256 << 10));
        assert_eq!(parse_size("4MiB"), Some(4 << 20));
        assert_eq!(parse_size("4X"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn verbosity_flags_are_counted_anywhere() {
        let (v, rest) = take_verbosity(os(&["-v", "info", "-vv", "x", "--verbose"]));
        assert_eq!(v, 4);
        assert_eq!(rest, os(&["info", "x"]));
    }

    #[test]
    fn subcommands_dispatch() {
        assert!(matches!(parse_raw(os(&[])), Ok(RawArgs::Help(_))));
        assert!(matches!(
            parse_raw(os(&["--version"])),
            Ok(RawArgs::Version)
        ));
        assert!(matches!(
            parse_raw(os(&["create", "--help"])),
            Ok(RawArgs::Help(t)) if t == CREATE_USAGE
        ));
        assert!(matches!(
            parse_raw(os(&["info", "a.torrent"])),
            Ok(RawArgs::Info { file }) if file == "a.torrent"
        ));
        assert!(parse_raw(os(&["info"])).is_err());
        assert!(parse_raw(os(&["info", "a", "b"])).is_err());
        assert!(parse_raw(os(&["--bogus"])).is_err());
        assert!(matches!(
            parse_raw(os(&["x.torrent", "--out", "d"])),
            Ok(RawArgs::Download { torrent, rest }) if torrent == "x.torrent" && rest.len() == 2
        ));
        assert!(matches!(
            parse_raw(os(&["x.torrent", "--help"])),
            Ok(RawArgs::Help(t)) if t == USAGE
        ));
    }

    #[test]
    fn a_stray_argument_points_to_a_help_that_exists() {
        let download = parse_raw(os(&["x.torrent", "--bogus"])).and_then(validate);
        let err = download.expect_err("--bogus refused");
        assert!(err.contains("(try `minibt --help`)"), "{err}");
        let create = parse_raw(os(&["create", "dir", "-t", "http://a/", "--bogus"]));
        let err = create.and_then(validate).expect_err("--bogus refused");
        assert!(err.contains("(try `minibt create --help`)"), "{err}");
    }

    #[test]
    fn create_arguments_are_validated() {
        let raw = parse_raw(os(&[
            "create",
            "dir",
            "-t",
            "http://a/",
            "--tracker",
            "udp://b:1",
            "-o",
            "o.torrent",
            "-l",
            "32K",
            "--private",
            "--no-date",
            "-c",
            "hi",
        ]))
        .unwrap();
        let Command::Create {
            options,
            output,
            force,
        } = validate(raw).unwrap()
        else {
            panic!("not a create command");
        };
        assert_eq!(options.trackers, vec!["http://a/", "udp://b:1"]);
        assert_eq!(options.piece_length, Some(32768));
        assert!(options.private);
        assert_eq!(options.creation_date, None);
        assert_eq!(options.comment.as_deref(), Some("hi"));
        assert_eq!(output, PathBuf::from("o.torrent"));
        assert!(!force);

        let bad = |args: &[&str]| parse_raw(os(args)).and_then(validate).unwrap_err();
        assert!(bad(&["create", "dir", "-o", "x"]).contains("--tracker"));
        assert!(bad(&["create", "dir", "-t", "http://a/"]).contains("--output"));
        assert!(bad(&["create", "dir", "-t", "ftp://a/", "-o", "x"]).contains("ftp"));
        assert!(
            bad(&["create", "dir", "-t", "http://a/", "-o", "x", "-l", "1000"])
                .contains("power of two")
        );
        assert!(bad(&["create", "-t", "http://a/", "-o", "x"]).contains("PATH"));
    }
}
