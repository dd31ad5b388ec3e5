//! HTTP(S) tracker client (BEP 3 announce, BEP 23 `compact=1`) on ureq.
//!
//! Owned by [`super::tiers::Tracker`]. Builds the announce URL (binary `info_hash` and
//! `peer_id` percent-encoded byte by byte, an existing query string kept), performs a GET with
//! bounded connect and whole-request timeouts, reads at most [`MAX_HTTP_BODY`] bytes and hands
//! the body to [`super::response::parse_http_response`].

use super::response::parse_http_response;
use super::{AnnounceRequest, AnnounceResponse, TrackerConfig, TrackerError, MAX_HTTP_BODY};

/// Percent-encodes every byte except RFC 3986 unreserved characters.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// The full GET URL of an announce. A fragment in `base` is dropped; an existing query
/// string (e.g. a passkey) is kept and extended with `&`.
pub fn announce_url(base: &str, req: &AnnounceRequest) -> String {
    let base = base.split('#').next().unwrap_or(base);
    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    url.push(if base.contains('?') { '&' } else { '?' });
    url.push_str("info_hash=");
    url.push_str(&percent_encode(&req.info_hash.0));
    url.push_str("&peer_id=");
    url.push_str(&percent_encode(&req.peer_id.0));
    url.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}&key={:08x}",
        req.port, req.uploaded, req.downloaded, req.left, req.numwant, req.key
    ));
    if let Some(event) = req.event.http_name() {
        url.push_str("&event=");
        url.push_str(event);
    }
    if let Some(id) = &req.tracker_id {
        url.push_str("&trackerid=");
        url.push_str(&percent_encode(id));
    }
    if let Some(ip) = req.ip {
        url.push_str(&format!("&ip={ip}"));
    }
    url
}

/// One `http://` or `https://` tracker.
pub struct HttpTracker {
    url: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTracker")
            .field("url", &self.url)
            .finish()
    }
}

fn transport(e: ureq::Error) -> TrackerError {
    match e {
        ureq::Error::Timeout(_) => TrackerError::Timeout,
        ureq::Error::BodyExceedsLimit(n) => {
            TrackerError::Garbage(format!("response body larger than {n} bytes"))
        }
        other => TrackerError::Transport(other.to_string()),
    }
}

impl HttpTracker {
    pub fn new(url: &str) -> Result<HttpTracker, TrackerError> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(TrackerError::BadUrl(format!("{url}: not http(s)")));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("minibt/", env!("CARGO_PKG_VERSION")))
            .max_redirects(3)
            .build()
            .into();
        Ok(HttpTracker {
            url: url.to_string(),
            agent,
        })
    }

    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        config: &TrackerConfig,
    ) -> Result<AnnounceResponse, TrackerError> {
        let url = announce_url(&self.url, req);
        let mut response = self
            .agent
            .get(&url)
            .config()
            .timeout_connect(Some(config.http_connect_timeout))
            .timeout_global(Some(config.http_timeout))
            .build()
            .call()
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_HTTP_BODY)
            .read_to_vec()
            .map_err(transport)?;
        match parse_http_response(&body) {
            // A tracker may send its failure reason with a non-200 status.
            Err(TrackerError::Garbage(_)) if status != 200 => Err(TrackerError::Status(status)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InfoHash, PeerId};
    use crate::tracker::Event;

    #[test]
    fn percent_encoding_of_raw_bytes() {
        assert_eq!(percent_encode(b"aZ9-._~"), "aZ9-._~");
        assert_eq!(
            percent_encode(&[0, 0xff, b' ', b'&', b'%']),
            "%00%FF%20%26%25"
        );
    }

    #[test]
    fn announce_url_keeps_query_and_encodes_fields() {
        let req = AnnounceRequest {
            info_hash: InfoHash([0x12; 20]),
            peer_id: PeerId(*b"-MB0100-abcdefghijkl"),
            port: 6881,
            uploaded: 10,
            downloaded: 20,
            left: 30,
            event: Event::Started,
            numwant: 50,
            key: 0xab,
            tracker_id: Some(b"t i".to_vec()),
            ip: None,
        };
        let url = announce_url("http://t.example/announce?passkey=abc#frag", &req);
        assert!(url.starts_with("http://t.example/announce?passkey=abc&info_hash=%12%12"));
        assert!(url.contains("&peer_id=-MB0100-abcdefghijkl&port=6881&uploaded=10"));
        assert!(url.contains("&downloaded=20&left=30&compact=1&numwant=50&key=000000ab"));
        assert!(url.ends_with("&event=started&trackerid=t%20i"));
        assert!(!url.contains("frag"));
        let plain = announce_url(
            "http://t.example/announce",
            &AnnounceRequest {
                event: Event::None,
                tracker_id: None,
                ip: None,
                ..req
            },
        );
        assert!(plain.starts_with("http://t.example/announce?info_hash="));
        assert!(!plain.contains("event="));
    }
}
