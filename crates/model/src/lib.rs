//! Keelson model.
