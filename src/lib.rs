//! dockmon-agent: a small, single-threaded DockMon agent for constrained Docker hosts.
//!
//! Layers, lowest first; imports only go down:
//!
//! ```text
//! limits            every capacity, timeout and budget, with its reason
//! alloc             the counting allocator (feature `count-alloc`)
//! config, cli       environment → Config and argv → Command, pure
//! rfc3339, logging  time stamps into stack buffers; text or JSON log lines
//! stats             a container's stats sample (either source) and the payload numbers of two samples
//! procfs            small local files: one capped reader, path building, decimals, byte helpers
//! textmem           gives the executable's pages a steady agent does not use back to the kernel
//! http              HTTP/1.1 wire: request heads, response heads, body decoders, one connection
//! ws                WebSocket wire (RFC 6455, client side) and its connection
//! dns, tls          host names → addresses without blocking; the rustls client configuration
//! proxy             HTTP_PROXY/HTTPS_PROXY/NO_PROXY and the CONNECT tunnel to DockMon
//! docker            the Engine API over the unix socket or tcp://: endpoint, version, calls, Docker's stats JSON;
//!                   also DockMon's list_containers payload (docker/mod.rs says why)
//! probe             one outbound HTTP(S) request to a user URL (agent-side health checks)
//! compose           compose files → Docker create bodies (bounded YAML, interpolation, strict model,
//!                   plan) and up/down/restart over `docker`
//! host, identity    host stats from /proc; container ID, hostname, host IPs
//! token             the permanent token file
//! privilege         dropping root in the image before any other thread exists
//! board, sampler    board profiles; the stats budget, container table, stats sources and the loop
//! outbox, dockmon   the send queue; the DockMon protocol: messages, the session state machine,
//!                   registration, typed commands and their handlers
//! modes             the drivers that own sockets and timers and execute the session's actions; the
//!                   health socket, the stats-service dual-send
//! ```
//!
//! Bytes and behaviour are kept apart: `http`, `ws` and the parsers under `docker` are pure functions over
//! borrowed bytes; one connection type per protocol touches a socket.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "count-alloc")]
pub mod alloc;
pub mod board;
pub mod cli;
pub mod compose;
pub mod config;
pub mod dns;
pub mod docker;
pub mod dockmon;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod http;
pub mod identity;
pub mod limits;
pub mod logging;
pub mod modes;
pub mod outbox;
pub mod privilege;
pub mod probe;
pub mod procfs;
pub mod proxy;
pub mod rfc3339;
pub mod sampler;
pub mod stats;
pub mod textmem;
pub mod tls;
pub mod token;
pub mod ws;

/// The version this binary reports (`VERSION` at build time, else the package version).
pub const VERSION: &str = env!("DOCKMON_AGENT_VERSION");
/// The git commit this binary was built from (`COMMIT` at build time, else `git rev-parse`).
pub const COMMIT: &str = env!("DOCKMON_AGENT_COMMIT");
