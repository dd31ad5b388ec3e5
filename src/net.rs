//! Socket set-up the standard library cannot express: binding an outgoing connection to a chosen
//! local address (`--bind-ip`, so several minibt instances can face one peer from distinct
//! loopback addresses) and picking a listening port from a range.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Connects to `to` from local address `from` (any port).
pub fn connect_from(from: IpAddr, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SockAddr::from(SocketAddr::new(from, 0)))?;
    socket.connect_timeout(&SockAddr::from(to), timeout)?;
    Ok(socket.into())
}

/// Binds a listener on `ip` at `port`, or at the next free port of `port..port+span`.
/// Port 0 asks the OS for any free port.
pub fn bind_listener(ip: IpAddr, port: u16, span: u16) -> io::Result<TcpListener> {
    let mut last_err = None;
    for offset in 0..span.max(1) {
        let Some(p) = port.checked_add(offset) else {
            break;
        };
        match TcpListener::bind(SocketAddr::new(ip, p)) {
            Ok(l) => return Ok(l),
            Err(e) => last_err = Some(e),
        }
        if port == 0 {
            break;
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no port to try")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_free_port_is_taken_when_the_first_is_busy() {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        if let Ok(second) = bind_listener(ip, port, 9) {
            assert_ne!(second.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn connect_from_a_chosen_loopback_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let from: IpAddr = "127.0.0.2".parse().unwrap();
        let _out = connect_from(from, to, Duration::from_secs(2)).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), from);
    }
}
