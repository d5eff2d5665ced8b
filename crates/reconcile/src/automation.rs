//! (in progress) automation
