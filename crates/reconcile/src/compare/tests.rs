//! Tests of `compare` on whole applications.
