//! The `minibt` binary: parse arguments, start logging, run, map errors to an exit code.

fn main() {
    limit_malloc_arenas();
    std::process::exit(minibt::cli::main_with_args(
        std::env::args_os().skip(1).collect(),
    ));
}

/// glibc gives threads that allocate their own malloc arenas (up to 8 per core) and keeps freed
/// memory in each one; with hundreds of peer threads that idle memory becomes most of the
/// process's private memory. The hot allocations (block buffers) are pooled, so two arenas
/// are plenty.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
