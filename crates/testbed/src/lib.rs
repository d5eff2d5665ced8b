//! Keelson test harness.
