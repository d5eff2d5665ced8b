//! (in progress) liveness
