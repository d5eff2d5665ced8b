//! Two-level manifest cache (being written).
