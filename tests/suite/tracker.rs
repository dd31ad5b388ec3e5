//! Trackers end to end: the client against the built-in tracker (HTTP, UDP, IPv6), against
//! opentracker, against broken trackers (hanging, garbage, failure reason, silent UDP), the
//! announcer thread, and a mutation run over the response parsers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use minibt::ids::{InfoHash, PeerId};
use minibt::tracker::response::parse_http_response;
use minibt::tracker::udp_codec::{self, Family, UdpRequest};
use minibt::tracker::{
    announce, spawn_announcer, AnnounceParams, AnnounceRequest, AnnounceResponse, AnnouncerCommand,
    Event, Tiers, TrackerConfig, TrackerError, TransferStats,
};
use minibt::tracker_server::{ServerConfig, TrackerServer};

use crate::support;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn request(hash: InfoHash, who: u8, port: u16, event: Event) -> AnnounceRequest {
    let mut id = *b"-MB0100-000000000000";
    id[19] = who;
    AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId(id),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 1000,
        event,
        numwant: 50,
        key: u32::from(who),
        tracker_id: None,
        ip: None,
    }
}

/// Short timeouts so the fault tests finish quickly.
fn short() -> TrackerConfig {
    TrackerConfig {
        http_connect_timeout: Duration::from_secs(1),
        http_timeout: Duration::from_secs(1),
        udp_timeouts: vec![Duration::from_millis(200), Duration::from_millis(400)],
        local_ip: None,
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Two peers meet through `url`; then one stops and disappears from the other's view.
/// `returns_self`: opentracker lists the asker too, the built-in tracker does not.
fn two_peers_meet_and_part(url: &str, hash: InfoHash, base: u16, returns_self: bool) {
    let config = TrackerConfig::default();
    let (a, b) = (base, base + 1);
    let first = announce(url, &request(hash, 1, a, Event::Started), &config).unwrap();
    assert!(!first.peers.contains(&addr(b)), "{url}: {first:?}");
    let second = announce(url, &request(hash, 2, b, Event::Started), &config).unwrap();
    assert!(second.peers.contains(&addr(a)), "{url}: {second:?}");
    assert_eq!(second.peers.contains(&addr(b)), returns_self, "{url}");
    assert!(second.interval >= Duration::from_secs(1));
    assert_eq!(second.incomplete, Some(2), "{url}");
    let again = announce(url, &request(hash, 1, a, Event::None), &config).unwrap();
    assert!(again.peers.contains(&addr(b)), "{url}: {again:?}");

    announce(url, &request(hash, 1, a, Event::Stopped), &config).unwrap();
    let after = announce(url, &request(hash, 2, b, Event::None), &config).unwrap();
    assert!(
        !after.peers.contains(&addr(a)),
        "{url}: stopped peer still listed"
    );
    assert_eq!(after.incomplete, Some(1), "{url}");
}

#[test]
fn builtin_tracker_over_http() {
    let server = TrackerServer::start(loopback()).unwrap();
    two_peers_meet_and_part(&server.http_announce_url(), InfoHash([1; 20]), 7001, false);
}

#[test]
fn builtin_tracker_over_udp() {
    let server = TrackerServer::start(loopback()).unwrap();
    two_peers_meet_and_part(&server.udp_announce_url(), InfoHash([2; 20]), 7101, false);
}

#[test]
fn builtin_tracker_shares_swarms_between_http_and_udp() {
    let server = TrackerServer::start(loopback()).unwrap();
    let hash = InfoHash([3; 20]);
    let config = TrackerConfig::default();
    let r = announce(
        &server.http_announce_url(),
        &request(hash, 1, 7201, Event::Started),
        &config,
    )
    .unwrap();
    assert!(r.peers.is_empty());
    let r = announce(
        &server.udp_announce_url(),
        &request(hash, 2, 7202, Event::Started),
        &config,
    )
    .unwrap();
    assert_eq!(r.peers, vec![addr(7201)]);
}

#[test]
fn builtin_tracker_respects_numwant_and_serves_dictionary_peers() {
    let server = TrackerServer::start(loopback()).unwrap();
    let hash = InfoHash([4; 20]);
    let url = server.http_announce_url();
    let config = TrackerConfig::default();
    for who in 1..=10u8 {
        announce(
            &url,
            &request(hash, who, 7300 + u16::from(who), Event::Started),
            &config,
        )
        .unwrap();
    }
    let mut req = request(hash, 99, 7399, Event::None);
    req.numwant = 3;
    assert_eq!(announce(&url, &req, &config).unwrap().peers.len(), 3);

    // compact=0 by hand: the dictionary model (BEP 3).
    let query = format!(
        "/announce?info_hash={}&peer_id=-MB0100-zzzzzzzzzzzz&port=7400&left=0&compact=0&numwant=100",
        "%04".repeat(20)
    );
    let body = raw_get(server.local_addr(), &query);
    let r = parse_http_response(&body).unwrap();
    assert_eq!(r.peers.len(), 11, "{}", String::from_utf8_lossy(&body));
    assert!(r.peers.contains(&addr(7301)));
    assert!(body.windows(7).any(|w| w == b"peer id"));
}

/// One HTTP/1.0 GET on a fresh connection; returns the body.
fn raw_get(server: SocketAddr, target: &str) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {target} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(all.starts_with(b"HTTP/1.1 200"));
    all[split + 4..].to_vec()
}

#[test]
fn builtin_tracker_answers_bad_requests_clearly() {
    let server = TrackerServer::start(loopback()).unwrap();
    let body = raw_get(server.local_addr(), "/announce?info_hash=short&port=1");
    match parse_http_response(&body) {
        Err(TrackerError::Failure(reason)) => assert!(reason.contains("info_hash"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    // An oversized request head is refused, not buffered.
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(&vec![b'a'; 64 * 1024]);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(reply.starts_with(b"HTTP/1.1 400"), "{reply:?}");
    // A UDP announce with a made-up connection id gets an error packet.
    let udp = UdpSocket::bind(loopback()).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let packet =
        udp_codec::encode_announce(12345, 77, &request(InfoHash([5; 20]), 1, 1, Event::None));
    udp.send_to(&packet, server.local_addr()).unwrap();
    let mut buf = [0u8; 2048];
    let n = udp.recv(&mut buf).unwrap();
    match udp_codec::decode_announce_response(&buf[..n], 77, Family::V4) {
        Err(TrackerError::Failure(m)) => assert!(m.contains("connection id"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn builtin_tracker_over_ipv6() {
    let bind: SocketAddr = "[::1]:0".parse().unwrap();
    let server = match TrackerServer::start(bind) {
        Ok(s) => s,
        Err(e) => {
            println!("SKIP builtin_tracker_over_ipv6: cannot bind [::1]: {e}");
            return;
        }
    };
    let hash = InfoHash([6; 20]);
    let config = TrackerConfig::default();
    let v6 = |port: u16| -> SocketAddr { format!("[::1]:{port}").parse().unwrap() };
    for (url, base) in [
        (server.http_announce_url(), 7501),
        (server.udp_announce_url(), 7601),
    ] {
        announce(&url, &request(hash, 1, base, Event::Started), &config).unwrap();
        let r = announce(&url, &request(hash, 2, base + 1, Event::Started), &config).unwrap();
        assert_eq!(r.peers, vec![v6(base)], "{url}");
        announce(&url, &request(hash, 1, base, Event::Stopped), &config).unwrap();
        announce(&url, &request(hash, 2, base + 1, Event::Stopped), &config).unwrap();
    }
}

#[test]
fn builtin_tracker_forgets_silent_peers() {
    let config = ServerConfig::with_interval(Duration::from_millis(300));
    let server = TrackerServer::start_with(loopback(), config).unwrap();
    let url = server.udp_announce_url();
    let hash = InfoHash([7; 20]);
    let tc = TrackerConfig::default();
    announce(&url, &request(hash, 1, 7701, Event::Started), &tc).unwrap();
    let r = announce(&url, &request(hash, 2, 7702, Event::Started), &tc).unwrap();
    assert_eq!(r.peers, vec![addr(7701)]);
    // Peer 1 stays silent for more than 2 × interval.
    std::thread::sleep(Duration::from_millis(900));
    let r = announce(&url, &request(hash, 2, 7702, Event::None), &tc).unwrap();
    assert!(r.peers.is_empty(), "{r:?}");
}

// ---- opentracker -------------------------------------------------------------------------

/// A running opentracker, killed on drop.
struct OpenTracker {
    child: Child,
    port: u16,
}

impl Drop for OpenTracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port currently free for both TCP and UDP on 127.0.0.1.
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind(loopback()).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(addr(port)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair on loopback");
}

fn start_opentracker(hashes: &[InfoHash]) -> Option<OpenTracker> {
    let bin = std::path::Path::new("/usr/bin/opentracker");
    if !bin.exists() {
        assert!(!support::in_ci(), "opentracker is required in CI");
        println!("SKIP: /usr/bin/opentracker not installed");
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    // opentracker chroots into -d and drops to `nobody`: the whitelist must be readable there.
    let dir = support::scratch_dir("opentracker");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let list = dir.join("whitelist");
    let lines: String = hashes.iter().map(|h| format!("{}\n", h.hex())).collect();
    std::fs::write(&list, lines).unwrap();
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .current_dir(&dir)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .args(["-w", "whitelist", "-d"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning opentracker");
    let tracker = OpenTracker { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "opentracker did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(tracker)
}

#[test]
fn opentracker_over_http_and_udp() {
    let hash = InfoHash::from_hex("0123456789abcdef0123456789abcdef01234567").unwrap();
    let hash2 = InfoHash::from_hex("89abcdef0123456789abcdef0123456789abcdef").unwrap();
    let Some(ot) = start_opentracker(&[hash, hash2]) else {
        return;
    };
    let http = format!("http://127.0.0.1:{}/announce", ot.port);
    let udp = format!("udp://127.0.0.1:{}", ot.port);
    two_peers_meet_and_part(&http, hash, 7801, true);
    two_peers_meet_and_part(&udp, hash2, 7811, true);
    // A hash outside the whitelist gets opentracker's failure reason.
    match announce(
        &http,
        &request(InfoHash([9; 20]), 1, 7821, Event::Started),
        &short(),
    ) {
        Err(TrackerError::Failure(reason)) => assert!(!reason.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
}

// ---- broken trackers ---------------------------------------------------------------------

/// A TCP "tracker" on loopback whose answer is chosen by the test; stops on drop.
struct FakeHttp {
    addr: SocketAddr,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    /// `answer`: bytes written after reading the request; `None` = accept and never answer.
    fn start(answer: Option<Vec<u8>>) -> FakeHttp {
        let listener = TcpListener::bind(loopback()).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(0);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Err(TryRecvError::Empty) = stopped.try_recv() {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        if let Some(answer) = &answer {
                            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                            let mut buf = [0u8; 4096];
                            let _ = s.read(&mut buf);
                            let _ = s.write_all(answer);
                        }
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeHttp {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.take(); // disconnects the channel: the accept loop ends
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn http_reply(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Announces through tiers [[bad], [good]]: the good tracker must answer with the peer that
/// announced there, within a bounded time. Returns the bad tracker's own error.
fn falls_through(bad: &str) -> TrackerError {
    let server = TrackerServer::start(loopback()).unwrap();
    let hash = InfoHash([8; 20]);
    let good = server.http_announce_url();
    announce(&good, &request(hash, 1, 7901, Event::Started), &short()).unwrap();

    let mut tiers = Tiers::new(vec![vec![bad.to_string()], vec![good.clone()]]);
    let t0 = Instant::now();
    let (url, resp): (String, AnnounceResponse) = tiers
        .announce(&request(hash, 2, 7902, Event::Started), &short(), None)
        .unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(url, good);
    assert_eq!(resp.peers, vec![addr(7901)]);
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");

    let t0 = Instant::now();
    let err = announce(bad, &request(hash, 3, 7903, Event::Started), &short()).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(20));
    err
}

#[test]
fn hanging_http_tracker_times_out_and_next_tier_answers() {
    let fake = FakeHttp::start(None);
    let err = falls_through(&fake.url());
    assert!(matches!(err, TrackerError::Timeout), "{err}");
}

#[test]
fn garbage_http_tracker_is_reported_and_next_tier_answers() {
    let fake = FakeHttp::start(Some(http_reply(b"<html>this is not bencode</html>")));
    let err = falls_through(&fake.url());
    assert!(matches!(err, TrackerError::Garbage(_)), "{err}");
}

#[test]
fn failure_reason_is_reported_and_next_tier_answers() {
    let fake = FakeHttp::start(Some(http_reply(b"d14:failure reason6:bannede")));
    let err = falls_through(&fake.url());
    match err {
        TrackerError::Failure(reason) => assert_eq!(reason, "banned"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn silent_udp_tracker_times_out_and_next_tier_answers() {
    let silent = UdpSocket::bind(loopback()).unwrap();
    let url = format!("udp://{}", silent.local_addr().unwrap());
    let err = falls_through(&url);
    assert!(matches!(err, TrackerError::Timeout), "{err}");
    // Every attempt of the schedule was sent before giving up.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let mut connects = 0;
    while let Ok(n) = silent.recv(&mut buf) {
        if matches!(
            udp_codec::decode_request(&buf[..n]),
            Ok(UdpRequest::Connect { .. })
        ) {
            connects += 1;
        }
    }
    assert_eq!(connects, 2 * short().udp_timeouts.len());
}

#[test]
fn tracker_that_answered_moves_to_the_front_of_its_tier() {
    let server = TrackerServer::start(loopback()).unwrap();
    let good = server.http_announce_url();
    let fake = FakeHttp::start(Some(http_reply(b"d14:failure reason4:nopee")));
    let mut tiers = Tiers::new(vec![vec![fake.url(), good.clone()]]);
    let hash = InfoHash([13; 20]);
    for who in 1..=3 {
        let (url, _) = tiers
            .announce(
                &request(hash, who, 8100 + u16::from(who), Event::Started),
                &short(),
                None,
            )
            .unwrap();
        assert_eq!(url, good);
        assert_eq!(tiers.urls(), vec![vec![good.clone(), fake.url()]]);
    }
}

#[test]
fn oversized_http_body_is_refused() {
    let mut reply =
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nd5:peers99999999:".to_vec();
    reply.resize(reply.len() + 5 * 1024 * 1024, 0);
    let fake = FakeHttp::start(Some(reply));
    let err = announce(
        &fake.url(),
        &request(InfoHash([14; 20]), 1, 1, Event::None),
        &TrackerConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, TrackerError::Garbage(ref m) if m.contains("larger")),
        "{err}"
    );
}

/// A UDP tracker that ignores the first connect (forcing a retransmission), precedes every
/// answer with stray datagrams, and counts connects.
#[test]
fn udp_client_retransmits_ignores_strays_and_reuses_connection_id() {
    let socket = UdpSocket::bind(loopback()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let url = format!("udp://{}/announce", socket.local_addr().unwrap());
    let connects = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let counter = connects.clone();
    let fake = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut seen = 0;
        while let Err(TryRecvError::Empty) = stopped.try_recv() {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            seen += 1;
            if seen == 1 {
                continue; // lost packet
            }
            let reply = match udp_codec::decode_request(&buf[..n]) {
                Ok(UdpRequest::Connect { transaction_id }) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    udp_codec::encode_connect_response(transaction_id, 0xc0ffee)
                }
                Ok(UdpRequest::Announce {
                    connection_id,
                    transaction_id,
                    ..
                }) => {
                    assert_eq!(connection_id, 0xc0ffee);
                    let peers = [addr(1234)];
                    udp_codec::encode_announce_response(
                        transaction_id,
                        Duration::from_secs(60),
                        1,
                        0,
                        &peers,
                    )
                }
                _ => continue,
            };
            let tid = u32::from_be_bytes(reply[4..8].try_into().unwrap());
            socket.send_to(b"junk", from).unwrap();
            let mut stray = reply.clone();
            stray[4..8].copy_from_slice(&tid.wrapping_add(1).to_be_bytes());
            socket.send_to(&stray, from).unwrap();
            socket.send_to(&reply, from).unwrap();
        }
    });
    let config = TrackerConfig {
        udp_timeouts: vec![Duration::from_millis(300), Duration::from_secs(3)],
        ..TrackerConfig::default()
    };
    let mut tiers = Tiers::new(vec![vec![url]]);
    let hash = InfoHash([10; 20]);
    for _ in 0..2 {
        let (_, r) = tiers
            .announce(&request(hash, 1, 1, Event::None), &config, None)
            .unwrap();
        assert_eq!(r.peers, vec![addr(1234)]);
    }
    assert_eq!(
        connects.load(Ordering::SeqCst),
        1,
        "connection id not reused"
    );
    drop(stop);
    fake.join().unwrap();
}

// ---- announcer ---------------------------------------------------------------------------

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn announcer_lifecycle_started_needpeers_completed_stopped() {
    let server = TrackerServer::start_with(
        loopback(),
        ServerConfig::with_interval(Duration::from_secs(60)),
    )
    .unwrap();
    let url = server.http_announce_url();
    let hash = InfoHash([11; 20]);
    let tc = TrackerConfig::default();
    announce(&url, &request(hash, 1, 8001, Event::Started), &tc).unwrap();

    // The first tier is a dead UDP tracker: the announcer must move on to the second.
    let silent = UdpSocket::bind(loopback()).unwrap();
    let tiers = vec![
        vec![format!("udp://{}", silent.local_addr().unwrap())],
        vec![url.clone()],
    ];
    let mut params = AnnounceParams::new(hash, request(hash, 50, 8050, Event::None).peer_id, 8050);
    params.config = short();
    params.min_interval = Duration::from_millis(200);
    let stats = Arc::new(TransferStats::new(1000));
    let (peers_tx, peers_rx) = crossbeam_channel::unbounded();
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    let handle = spawn_announcer(tiers, params, stats.clone(), peers_tx, control_rx).unwrap();

    let first = peers_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(first, vec![addr(8001)]);
    let seen = announce(&url, &request(hash, 1, 8001, Event::None), &tc).unwrap();
    assert_eq!(
        seen.peers,
        vec![addr(8050)],
        "announcer's started not recorded"
    );

    // A new peer appears; NeedPeers makes the announcer ask again long before the interval.
    announce(&url, &request(hash, 2, 8002, Event::Started), &tc).unwrap();
    control_tx.send(AnnouncerCommand::NeedPeers).unwrap();
    let again = peers_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(again.contains(&addr(8002)), "{again:?}");

    // Completed: the tracker now counts the announcer as a seeder.
    stats.left.store(0, Ordering::Relaxed);
    control_tx.send(AnnouncerCommand::Completed).unwrap();
    wait_until("completed announce", || {
        announce(&url, &request(hash, 1, 8001, Event::None), &tc)
            .unwrap()
            .complete
            == Some(1)
    });

    // Dropping the control channel: `stopped` is sent and the thread ends.
    drop(control_tx);
    wait_until("announcer exit", || handle.is_finished());
    handle.join().unwrap();
    let after = announce(&url, &request(hash, 1, 8001, Event::None), &tc).unwrap();
    assert!(!after.peers.contains(&addr(8050)), "{after:?}");
    assert_eq!(after.complete, Some(0));
}

#[test]
fn announcer_with_only_dead_trackers_stops_promptly() {
    let silent = UdpSocket::bind(loopback()).unwrap();
    let tiers = vec![vec![format!("udp://{}", silent.local_addr().unwrap())]];
    let mut params = AnnounceParams::new(InfoHash([12; 20]), PeerId([1; 20]), 9000);
    params.config = short();
    params.backoff_start = Duration::from_millis(50);
    let (peers_tx, peers_rx) = crossbeam_channel::unbounded();
    let (control_tx, control_rx) = crossbeam_channel::unbounded::<AnnouncerCommand>();
    let handle = spawn_announcer(
        tiers,
        params,
        Arc::new(TransferStats::new(1)),
        peers_tx,
        control_rx,
    )
    .unwrap();
    // Let it fail and back off a few times (each round: 2 connects).
    wait_until("several failed rounds", || {
        silent.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let mut n = 0;
        while silent.recv(&mut buf).is_ok() {
            n += 1;
        }
        n > 0
    });
    drop(control_tx);
    wait_until("announcer exit", || handle.is_finished());
    handle.join().unwrap();
    assert!(peers_rx.try_recv().is_err());
}

// ---- mutation run --------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if at < v.len() => v[at] = rng.next() as u8,
            1 if at < v.len() => v[at] ^= 1 << rng.below(8),
            2 => v.insert(at, b"0123456789:ilde-"[rng.below(16)]),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 => v.truncate(at),
            5 => {
                let end = (at + rng.below(16)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => v
                .splice(at..at, b"999999999:".iter().copied())
                .for_each(drop),
        }
    }
    v
}

#[test]
fn parsers_survive_100k_mutated_inputs() {
    let reply = udp_codec::encode_announce_response(
        9,
        Duration::from_secs(60),
        1,
        2,
        &[addr(1), addr(2), "[::1]:3".parse().unwrap()],
    );
    let seeds: Vec<Vec<u8>> = vec![
        b"d8:completei3e10:incompletei1e8:intervali900e12:min intervali60e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50e".to_vec(),
        b"d8:intervali60e5:peersld2:ip9:127.0.0.27:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000eee6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1b\x58e".to_vec(),
        b"d14:failure reason6:banned15:warning message2:hie".to_vec(),
        b"d8:intervali60e10:tracker id3:abce".to_vec(),
        udp_codec::encode_connect_response(9, 42),
        udp_codec::encode_error(9, "nope"),
        reply,
        udp_codec::encode_connect(9).to_vec(),
        udp_codec::encode_announce(42, 9, &request(InfoHash([1; 20]), 1, 1, Event::Started)),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut parsed_ok = 0;
    for i in 0..100_000 {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        if let Ok(r) = parse_http_response(&input) {
            assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
            parsed_ok += 1;
        }
        let _ = udp_codec::decode_connect_response(&input, 9);
        for family in [Family::V4, Family::V6] {
            if let Ok(Some(r)) = udp_codec::decode_announce_response(&input, 9, family) {
                assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
            }
        }
        let _ = udp_codec::decode_request(&input);
    }
    // The mutations are mild enough that some inputs still parse.
    assert!(parsed_ok > 100, "{parsed_ok}");
}
