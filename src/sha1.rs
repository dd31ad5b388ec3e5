//! SHA-1 behind one small interface, so the hasher can be swapped at build time.
//!
//! The default is `sha1_smol` (portable pure Rust, the design card's crate). Building with
//! `--features fast-sha1` switches to RustCrypto's `sha1`, which uses the CPU's SHA
//! instructions where present; nothing else in the client changes.

/// An incremental SHA-1.
#[derive(Clone, Default)]
pub struct Sha1 {
    #[cfg(not(feature = "fast-sha1"))]
    inner: sha1_smol::Sha1,
    #[cfg(feature = "fast-sha1")]
    inner: sha1_fast::Sha1,
}

impl Sha1 {
    pub fn new() -> Sha1 {
        Sha1::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        #[cfg(feature = "fast-sha1")]
        sha1_fast::Digest::update(&mut self.inner, data);
        #[cfg(not(feature = "fast-sha1"))]
        self.inner.update(data);
    }

    pub fn digest(self) -> [u8; 20] {
        #[cfg(feature = "fast-sha1")]
        return sha1_fast::Digest::finalize(self.inner).into();
        #[cfg(not(feature = "fast-sha1"))]
        self.inner.digest().bytes()
    }
}

/// SHA-1 of one buffer.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(data);
    h.digest()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vectors() {
        assert_eq!(
            crate::ids::to_hex(&super::sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let mut h = super::Sha1::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.digest(), super::sha1(b"abc"));
    }
}
