//! (in progress) project
