//! SIGINT / SIGTERM → a message on a crossbeam channel, so the coordinator can stop cleanly.
//!
//! Called once by the CLI ([`install`]) before a download or seed starts; the session hands the
//! receiver to the coordinator, which selects on it like any other input. No async runtime:
//! the handler (installed with `sigaction` from `libc`) only does async-signal-safe things:
//! it bumps a counter and writes the signal number into a pipe ("self-pipe"); a small thread
//! reads the pipe and forwards the number on the channel. A second signal while the first is
//! being handled exits at once (`_exit(128 + signal)`), as users expect from a second Ctrl-C.
//!
//! `libc` rather than the `signal-hook` crate: it is already in the dependency tree (memmap2
//! uses it), and the forty lines here are all that is needed.

use crossbeam_channel::{unbounded, Receiver};
use std::io;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;

static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);
static CHANNEL: OnceLock<Receiver<i32>> = OnceLock::new();

/// The conventional exit status of a process ended by `signal`.
pub fn exit_status(signal: i32) -> i32 {
    128 + signal
}

/// The first SIGINT/SIGTERM received since [`install`], if any.
pub fn received() -> Option<i32> {
    (RECEIVED.load(Ordering::SeqCst) > 0).then(|| LAST.load(Ordering::SeqCst))
}

/// A readable name for the signals we handle.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    if RECEIVED.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(exit_status(signal)) };
    }
    LAST.store(signal, Ordering::SeqCst);
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Installs the SIGINT and SIGTERM handlers (once per process) and returns a receiver that
/// yields the signal number when one arrives.
pub fn install() -> io::Result<Receiver<i32>> {
    if let Some(rx) = CHANNEL.get() {
        return Ok(rx.clone());
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // The reading end blocks; only the handler's end must never block.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(read_fd, libc::F_SETFL, 0) };
    PIPE_WRITE.store(write_fd, Ordering::SeqCst);
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(32 * 1024)
        .spawn(move || loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a live local.
            let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                if tx.send(i32::from(byte)).is_err() {
                    return;
                }
            } else if n == 0
                || (n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
            {
                return;
            }
        })?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with our handler; SA_RESTART keeps blocking socket calls
        // in other threads from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    let _ = CHANNEL.set(rx.clone());
    Ok(rx)
}
