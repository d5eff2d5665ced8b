//! (in progress) a deduplicating work queue
