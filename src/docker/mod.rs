//! The Docker Engine API over the unix socket.
pub mod stats;
