//! (in progress) history
