//! Fuzz target: tracker responses (BEP 3 HTTP bodies, BEP 15 UDP packets) and the requests the
//! built-in tracker parses. Must never panic, and peer lists stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibt::tracker::udp_codec::{self, Family};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = minibt::tracker::response::parse_http_response(data) {
        assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
    }
    let tid = data
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    for family in [Family::V4, Family::V6] {
        if let Ok(Some(r)) = udp_codec::decode_announce_response(data, tid, family) {
            assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
        }
    }
    let _ = udp_codec::decode_connect_response(data, tid);
    let _ = udp_codec::decode_request(data);
    let _ = minibt::tracker_server::http::parse_announce_query(data);
});
