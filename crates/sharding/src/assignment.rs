//! (in progress) assignment
