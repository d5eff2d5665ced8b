//! (in progress) compare
