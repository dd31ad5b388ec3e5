//! Resume and shutdown: a download killed (SIGKILL) or interrupted (SIGINT/SIGTERM) and started
//! again finishes with identical bytes and fetches little more than what was missing; Ctrl-C
//! saves the state and tells the tracker `stopped`; storage errors are one clear line.
//!
//! The seeder is the scripted slow peer from `rogue` (one block every 50 ms), so there is
//! time to interrupt a download on loopback, and it counts every payload byte it sends: the
//! bytes a leecher downloaded across runs, even runs killed with no chance to report.

use crate::rogue::{Mode, Rogue};
use crate::support::*;
use minibt::ids::{random_below, PeerId};
use minibt::resume::ResumeState;
use minibt::tracker::{AnnounceRequest, Event, TrackerConfig};
use minibt::tracker_server::TrackerServer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIECE: u64 = 16 * 1024;

struct Case {
    dir: PathBuf,
    torrent: PathBuf,
    content: Arc<Vec<u8>>,
    name: String,
    meta: minibt::metainfo::Metainfo,
}

fn case(name: &str, size: usize, trackers: &[String]) -> Case {
    let dir = scratch_dir(&format!("resume-{name}"));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let content = pseudo_random_bytes(21, size);
    std::fs::write(src.join(name), &content).unwrap();
    let torrent = dir.join("t.torrent");
    let meta = make_torrent(&src.join(name), trackers, PIECE, &torrent);
    Case {
        dir,
        torrent,
        content: Arc::new(content),
        name: name.to_string(),
        meta,
    }
}

/// Starts a leecher of `c` into `out`, dialling `peer`; returns it and its listening port.
fn leecher(c: &Case, out: &Path, peer: SocketAddr, run: usize, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let (port_s, peer_s) = (port.to_string(), peer.to_string());
    let mut args = vec![
        c.torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--port",
        &port_s,
        "--bind-ip",
        "127.0.0.1",
        "--peer",
        &peer_s,
        "--timeout",
        "60",
        "-q",
    ];
    args.extend_from_slice(extra);
    let log = c.dir.join(format!("leecher-{run}.log"));
    (minibt(&format!("leecher-{run}"), &args, &log), port)
}

fn signal(p: &Proc, sig: i32) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    let rc = unsafe { libc::kill(p.child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill failed");
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn read_state(c: &Case, out: &Path) -> ResumeState {
    let path = minibt::resume_store::state_path(out, &c.name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ResumeState::decode(&bytes, c.meta.num_pieces(), 1).unwrap()
}

#[test]
fn sigkill_at_random_points_then_finish_downloads_each_piece_about_once() {
    let c = case(
        "killed",
        4 * 1024 * 1024 + 4321,
        &["http://127.0.0.1:9/a".into()],
    );
    let seeder = Rogue::start(Mode::Slow, c.meta.info_hash, c.content.clone(), PIECE);
    let out = c.dir.join("out");
    const KILLS: usize = 3;
    let mut progress_at_kill = Vec::new();
    for run in 0..KILLS {
        let before = seeder.bytes_sent.load(Ordering::SeqCst);
        let (mut p, _) = leecher(&c, &out, seeder.addr, run, &[]);
        // Let it fetch 40..80 pieces' worth before the kill (the seeder sends 20 a second).
        let target = before + (40 + random_below(40)) * PIECE as usize;
        assert!(
            wait_until(Duration::from_secs(30), || seeder
                .bytes_sent
                .load(Ordering::SeqCst)
                >= target),
            "run {run} made no progress"
        );
        signal(&p, libc::SIGKILL);
        let status = p.wait_for(Duration::from_secs(10)).expect("killed");
        assert!(!status.success());
        progress_at_kill.push(seeder.bytes_sent.load(Ordering::SeqCst) - before);
    }
    let (mut p, _) = leecher(&c, &out, seeder.addr, KILLS, &[]);
    let status = p
        .wait_for(Duration::from_secs(120))
        .expect("final run ends");
    let log = std::fs::read_to_string(c.dir.join(format!("leecher-{KILLS}.log"))).unwrap();
    assert!(status.success(), "final run failed: {log}");
    assert!(
        std::fs::read(out.join(&c.name)).unwrap() == *c.content,
        "downloaded file differs"
    );
    // What may be lost at a kill is what was in flight: requests outstanding (at this rate
    // the client keeps 32) and pieces queued at or inside the verifiers (2 per worker queued,
    // 1 per worker hashing). One block per piece here, so pieces = blocks.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let in_flight = (32 + 3 * workers) * PIECE as usize;
    let total = seeder.bytes_sent.load(Ordering::SeqCst);
    let size = c.content.len();
    assert!(
        total <= size + KILLS * in_flight,
        "downloaded {total} bytes for a {size}-byte file over {KILLS} kills \
         (progress per killed run {progress_at_kill:?}, allowed {in_flight} lost per kill)"
    );
    // Without resume every run would start over: each killed run fetched more than can be lost.
    assert!(progress_at_kill.iter().all(|&b| b > in_flight));
}

#[test]
fn sigint_stops_quickly_saves_state_tells_tracker_and_resumes() {
    let tracker = TrackerServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = tracker.http_announce_url();
    let c = case(
        "interrupted",
        3 * 1024 * 1024 + 99,
        std::slice::from_ref(&url),
    );
    let seeder = Rogue::start(Mode::Slow, c.meta.info_hash, c.content.clone(), PIECE);
    let out = c.dir.join("out");
    let (mut p, port) = leecher(&c, &out, seeder.addr, 0, &[]);
    let me: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Another peer asks the tracker who is in the swarm.
    let swarm = || {
        let req = AnnounceRequest {
            info_hash: c.meta.info_hash,
            peer_id: PeerId(*b"-XX0001-observer0001"),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: 1,
            event: Event::None,
            numwant: 50,
            key: 1,
            tracker_id: None,
            ip: None,
        };
        minibt::tracker::announce(&url, &req, &TrackerConfig::default())
            .map(|r| r.peers)
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(20), || swarm().contains(&me)),
        "the leecher never announced"
    );
    assert!(
        wait_until(Duration::from_secs(30), || seeder
            .bytes_sent
            .load(Ordering::SeqCst)
            >= 40 * PIECE as usize),
        "no progress"
    );
    let sent_at_stop = Instant::now();
    signal(&p, libc::SIGINT);
    // It aims at 2 s; the bound here is generous for a loaded machine.
    let status = p
        .wait_for(Duration::from_secs(5))
        .expect("exits after SIGINT");
    let took = sent_at_stop.elapsed();
    let log = std::fs::read_to_string(c.dir.join("leecher-0.log")).unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(log.contains("stopped by SIGINT"), "{log}");
    assert!(
        !swarm().contains(&me),
        "the tracker still lists the leecher"
    );

    let state = read_state(&c, &out);
    let done = state.pieces.count();
    assert!(
        done > 0 && done < c.meta.num_pieces(),
        "{done} pieces recorded"
    );
    let missing: usize = (0..c.meta.num_pieces())
        .filter(|&i| !state.pieces.has(i))
        .map(|i| c.meta.layout().piece_len(i) as usize)
        .sum();

    let before = seeder.bytes_sent.load(Ordering::SeqCst);
    let (mut p, _) = leecher(&c, &out, seeder.addr, 1, &[]);
    let status = p
        .wait_for(Duration::from_secs(120))
        .expect("second run ends");
    let log = std::fs::read_to_string(c.dir.join("leecher-1.log")).unwrap();
    assert!(status.success(), "{log}");
    assert!(std::fs::read(out.join(&c.name)).unwrap() == *c.content);
    let second = seeder.bytes_sent.load(Ordering::SeqCst) - before;
    assert!(
        second <= missing,
        "second run fetched {second} bytes, {missing} were missing"
    );
    if state.files.iter().all(|f| f.mtime_ns.is_some()) {
        // A clean stop recorded exact mtimes: nothing needed hashing.
        assert!(
            log.contains(&format!("({done} trusted from the resume state, 0 hashed)")),
            "{log}"
        );
    }
    // Complete now: the state says so, and a third start trusts it all.
    assert_eq!(read_state(&c, &out).pieces.count(), c.meta.num_pieces());
}

#[test]
fn sigterm_stops_a_seeder_with_status_143_and_its_report() {
    let c = case("termed", 100_000, &["http://127.0.0.1:9/a".into()]);
    let src = c.dir.join("src");
    let port = free_port().to_string();
    let report = c.dir.join("report.json");
    let args = [
        "seed",
        c.torrent.to_str().unwrap(),
        "--from",
        src.to_str().unwrap(),
        "--port",
        &port,
        "--bind-ip",
        "127.0.0.1",
        "--no-tracker",
        "--report",
        report.to_str().unwrap(),
        "-q",
    ];
    let mut p = minibt("seeder", &args, &c.dir.join("seeder.log"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(wait_listening(addr, Duration::from_secs(30)));
    signal(&p, libc::SIGTERM);
    let status = p
        .wait_for(Duration::from_secs(5))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(143));
    // The seeder recorded every piece as verified beside its data.
    assert_eq!(read_state(&c, &src).pieces.count(), c.meta.num_pieces());
    // A seed only ever ends early, and `--report` still gets its report, saying how it ended.
    let report = std::fs::read_to_string(&report).expect("a report after SIGTERM");
    assert!(
        report.contains("\"outcome\": \"stopped by SIGTERM\""),
        "{report}"
    );
}

#[test]
fn recheck_finds_damage_the_resume_state_would_hide() {
    let c = case("recheck", 200_000, &["http://127.0.0.1:9/a".into()]);
    let src = c.dir.join("src");
    // Seed once to write a state file recording every piece, then damage a byte and restore
    // the file's mtime so only --recheck can notice.
    let port = free_port().to_string();
    let seed_args = |extra: &'static str| {
        let mut a = vec![
            "seed".to_string(),
            c.torrent.to_str().unwrap().to_string(),
            "--from".into(),
            src.to_str().unwrap().into(),
            "--port".into(),
            port.clone(),
            "--bind-ip".into(),
            "127.0.0.1".into(),
            "--no-tracker".into(),
            "-q".into(),
        ];
        if !extra.is_empty() {
            a.push(extra.into());
        }
        a
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let run = |extra: &'static str, log: &str| {
        let args = seed_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut p = minibt("seeder", &args, &c.dir.join(log));
        assert!(wait_listening(addr, Duration::from_secs(30)));
        signal(&p, libc::SIGINT);
        assert_eq!(
            p.wait_for(Duration::from_secs(5)).and_then(|s| s.code()),
            Some(130)
        );
        read_state(&c, &src)
    };
    assert_eq!(run("", "s1.log").pieces.count(), c.meta.num_pieces());
    let file = src.join(&c.name);
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[5] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // Unchanged size and mtime: the record is trusted.
    let trusted = run("", "s2.log");
    assert_eq!(trusted.pieces.count(), c.meta.num_pieces());
    // The data was not flushed: the record names this boot, so only a crash of the machine
    // (a new boot id) can have lost it...
    assert!(minibt::resume_store::boot_id().is_some());
    assert_eq!(trusted.unflushed_boot, minibt::resume_store::boot_id());
    // ...and a record from another boot is not trusted: everything is hashed, piece 0 is bad.
    let from_before_a_reboot = ResumeState {
        unflushed_boot: Some("00000000-0000-0000-0000-000000000000".into()),
        ..trusted
    };
    let state_file = minibt::resume_store::state_path(&src, &c.name);
    minibt::resume_store::save(&state_file, &from_before_a_reboot, false).unwrap();
    let state = run("", "s-reboot.log");
    assert!(!state.pieces.has(0));
    assert_eq!(state.pieces.count(), c.meta.num_pieces() - 1);
    // --recheck hashes everything and finds piece 0 bad.
    let state = run("--recheck", "s3.log");
    assert!(!state.pieces.has(0));
    assert_eq!(state.pieces.count(), c.meta.num_pieces() - 1);
}

#[test]
fn unwritable_output_is_one_clear_line_naming_the_path() {
    let c = case("unwritable", 50_000, &["http://127.0.0.1:9/a".into()]);
    // A path below a regular file cannot be created, even by root.
    let blocker = c.dir.join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("out");
    let port = free_port();
    let (mut p, _) = leecher(
        &c,
        &out,
        format!("127.0.0.1:{port}").parse().unwrap(),
        0,
        &[],
    );
    let status = p.wait_for(Duration::from_secs(30)).expect("exits");
    let log = std::fs::read_to_string(c.dir.join("leecher-0.log")).unwrap();
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("minibt: ")).collect();
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains(out.to_str().unwrap()), "{log}");
    assert!(errors[0].contains("Not a directory"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn file_too_big_for_the_limit_is_an_error_at_start_not_a_crash() {
    use std::os::unix::process::CommandExt;
    let c = case("nospace", 300_000, &["http://127.0.0.1:9/a".into()]);
    let out = c.dir.join("out");
    let log_path = c.dir.join("leecher.log");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_minibt"));
    cmd.args([
        c.torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-tracker",
        "--bind-ip",
        "127.0.0.1",
        "--port",
        &free_port().to_string(),
        "-q",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log_path).unwrap());
    // SAFETY: only async-signal-safe calls between fork and exec. A 64 KiB file size limit
    // stands in for a full disk: growing the file fails (EFBIG) as it would with ENOSPC.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let mut p = Proc {
        child,
        name: "leecher".into(),
    };
    let status = p.wait_for(Duration::from_secs(30)).expect("exits");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let file = out.join(&c.name);
    assert!(log.contains(file.to_str().unwrap()), "{log}");
    assert!(log.contains("File too large"), "{log}");
}
