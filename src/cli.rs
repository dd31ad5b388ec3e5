//! Command line: pico-args → validated settings → the library. TODO(foundation).

use std::ffi::OsString;

/// Runs minibt with the given arguments (without the program name); returns the exit code.
pub fn main_with_args(_args: Vec<OsString>) -> i32 {
    0
}
