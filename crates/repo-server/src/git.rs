//! Git mirrors (being written).
