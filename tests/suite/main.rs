//! minibt's integration tests: one binary, shared support code, one module per area.
//! Everything talks to real sockets on loopback (127.0.0.1) only.

mod create;
mod download;
mod hostile;
mod interop;
mod metainfo;
mod progress;
mod resume;
mod rogue;
mod seed;
mod support;
mod tracker;
