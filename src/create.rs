//! `minibt create`. TODO(foundation).
