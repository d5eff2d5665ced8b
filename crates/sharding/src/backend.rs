//! (in progress) backend
