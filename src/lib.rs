//! minibt: a small BitTorrent client built from blocking sockets and OS threads.
//!
//! Data flows one way:
//!
//! ```text
//! metainfo ──► tracker (announcer thread) ──► peer addresses
//!                                                │
//!                    peer threads (one per TCP connection, blocking std::net)
//!                                                │ events (crossbeam channel)
//!                                                ▼
//!                     coordinator thread: picker, per-peer state, verification
//!                                                │ verified pieces
//!                                                ▼
//!                                   storage (memory-mapped files)
//! ```
//!
//! The pure parts (bencode/metainfo, wire codec, picker, file layout) do no I/O and are
//! unit-tested without sockets; threads and sockets live at the edges.

pub mod bencode;
pub mod bitfield;
pub mod bufpool;
pub mod choker;
pub mod cli;
pub mod coordinator;
pub mod create;
pub mod demo;
pub mod ids;
pub mod layout;
pub mod metainfo;
pub mod net;
pub mod peer;
pub mod picker;
pub mod procstat;
pub mod progress;
pub mod ratelimit;
pub mod report;
pub mod resume;
pub mod resume_store;
pub mod session;
pub mod sha1;
pub mod signals;
pub mod spare_threads;
pub mod storage;
pub mod tracker;
pub mod tracker_server;
pub mod verify;
pub mod wire;
