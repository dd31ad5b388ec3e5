//! Bencode (BEP 3). TODO(foundation).
