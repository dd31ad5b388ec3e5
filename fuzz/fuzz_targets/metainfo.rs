//! Fuzz target: bencode and metainfo parsing (torrent files are untrusted input), plus the
//! resume state file. Must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibt::bencode::decode(data);
    let _ = minibt::bencode::decode_prefix(data);
    if let Ok(m) = minibt::metainfo::Metainfo::from_bytes(data) {
        // Whatever parses must lay out without panicking.
        let layout = m.layout();
        let _ = layout.num_pieces();
        let _ = m.file_paths();
    }
    let _ = minibt::resume::ResumeState::decode(data, 100, 3);
});
