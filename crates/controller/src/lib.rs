//! (in progress) the application controller
