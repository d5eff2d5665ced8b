//! (in progress) unit
