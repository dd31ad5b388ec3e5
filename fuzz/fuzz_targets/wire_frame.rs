//! Fuzz target: the peer wire codec (BEP 3/10 frames, handshakes, bitfields). Must never
//! panic; whatever decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibt::wire::{self, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = wire::decode_frame(data) {
        let limits = Limits::for_torrent(1000);
        let _ = limits.check_message(&msg);
        let mut out = Vec::new();
        wire::encode(&msg, &mut out);
        assert_eq!(&out[4..], data, "re-encoding differs");
    }
    if data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let _ = wire::check_frame_len(len, &Limits::for_torrent(1000));
    }
    if let Ok(hs) = <&[u8; 68]>::try_from(data) {
        let _ = wire::Handshake::decode(hs);
    }
    let n = data.len() as u32 * 8;
    let _ = minibt::bitfield::Bitfield::from_bytes(
        data,
        n.saturating_sub(data.first().map_or(0, |b| u32::from(b % 8))),
    );
});
