//! The piece picker (BEP 3 rarest-first); implementation follows.
