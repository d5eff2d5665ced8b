//! Manifest rendering (being written).
