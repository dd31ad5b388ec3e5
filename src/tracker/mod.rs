//! Trackers. TODO(trackers).
