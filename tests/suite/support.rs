//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh scratch directory under the target dir, removed and recreated.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// True when CI=true: a missing interop client is then a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}
