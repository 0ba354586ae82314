//! The Docker Engine API over the unix socket or TCP (with TLS). Builds on [`crate::http`]; knows nothing of DockMon's
//! session or messages, with one exception, [`list`]: it writes the `list_containers` payload because
//! that payload is Docker's own list passed through byte for byte with three keys spliced in while the
//! answer streams past. Building it in `dockmon` would mean holding Docker's answer whole or exporting
//! the splice's internals; the shape it writes is named there, the spec section beside it.
//!
//! - [`endpoint`]: which socket (`DOCKER_HOST`, else the usual paths), pure.
//! - [`version`]: API version parsing and negotiation, pure.
//! - [`client`]: the calls, each with its body cap and deadline, over a small keep-alive pool.
//! - [`types`]: the fields we read from Docker's JSON, borrowed from the caller's buffer.
//! - [`lines`]: newline-delimited JSON streams (`/events`, streamed stats) cut into bounded lines.
//! - [`stream`]: the connection: unix socket, TCP or TLS (`DOCKER_TLS_VERIFY`).
//! - [`exec`]: the web shell's exec: create, start attached (the hijacked stream), resize, inspect.
//! - [`stats`]: Docker's stats JSON → [`crate::stats::Sample`], pure (the math is in [`crate::stats`]).
//! - [`ops`]: start, stop, restart, kill, rename, remove; image digests and the daemon's start time.
//! - [`logs`]: the multiplexed log stream cut apart and kept within a cap (pure), and the logs call.
//! - [`list`]: DockMon's `list_containers` payload (spec 3.7.1): Docker's list with three keys spliced in
//!   (the exception above).
//! - [`array`](mod@array): a JSON array read in slices, cut into its elements (the list, never held whole).
//! - [`pull`]: image pulls and their progress stream (parser, layer table, throttle; spec 3.8.1).
//! - [`recreate`]: a container's config cloned with a new image, create and network connect (spec 3.8.1).
//! - [`images`], [`volumes`], [`networks`]: DockMon's Images, Volumes and Networks pages' calls;
//!   [`usage`]: which containers use which image, volume and network, from one list.
pub mod array;
pub mod client;
pub mod endpoint;
pub mod exec;
pub mod images;
pub mod lines;
pub mod list;
pub mod logs;
pub mod networks;
pub mod ops;
pub mod pull;
pub mod recreate;
pub mod stats;
pub mod stream;
pub mod types;
pub mod usage;
pub mod version;
pub mod volumes;

pub use client::Client;
pub use endpoint::Endpoint;

use std::fmt;

/// Why the socket could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No file at the socket path.
    NoSuchFile,
    /// The file exists but we may not open it.
    PermissionDenied,
    /// The file exists but nothing listens on it (dockerd stopped and left its socket).
    Refused,
    /// The path is not a socket.
    NotASocket,
    /// Connecting took longer than `ENGINE_CONNECT_TIMEOUT_MS`.
    Timeout,
    /// Any other error of `connect(2)`.
    Other(std::io::ErrorKind),
}

/// Everything that can go wrong talking to the engine. Each variant names the endpoint or the call.
#[derive(Debug)]
pub enum Error {
    /// `DOCKER_HOST` names a scheme we do not speak yet.
    UnsupportedHost(String),
    /// `DOCKER_HOST` is not a URL we understand.
    BadHost(String),
    /// The TLS files of a `tcp://` engine (`DOCKER_CERT_PATH`) are missing or unusable.
    TlsFiles {
        /// `DOCKER_CERT_PATH`.
        dir: std::path::PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The TLS handshake with a `tcp://` engine failed (its certificate, or ours, was refused).
    Handshake {
        /// `tcp://host:port`.
        endpoint: String,
        /// rustls' reason.
        message: String,
    },
    /// Connecting to the socket failed.
    Unreachable {
        /// `unix:///path`.
        endpoint: String,
        /// Why.
        why: Unreachable,
    },
    /// The engine speaks an API older than we support.
    ApiTooOld {
        /// What `/_ping` said.
        server: String,
    },
    /// The HTTP exchange failed (timeout, truncation, oversized head or body, garbage).
    Http {
        /// `METHOD /path` of the call.
        call: String,
        /// The HTTP layer's error.
        source: crate::http::Error,
    },
    /// The engine answered with an error status.
    Status {
        /// `METHOD /path` of the call.
        call: String,
        /// The status code.
        status: u16,
        /// Docker's `message`, or the start of the body.
        message: String,
    },
    /// The engine's JSON did not have the shape we need.
    Json {
        /// `METHOD /path` of the call.
        call: String,
        /// serde's message (with line and column).
        message: String,
    },
    /// A streamed body broke its framing or carried an error in-band (the multiplexed log stream).
    Stream {
        /// `METHOD /path` of the call.
        call: String,
        /// What was wrong.
        message: String,
    },
    /// A stream line was longer than its cap.
    LineTooLong {
        /// `METHOD /path` of the stream.
        call: String,
        /// The cap.
        max: usize,
    },
}

impl Error {
    /// True when the container (or other object) named in the call does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { status: 404, .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedHost(h) => write!(
                f,
                "DOCKER_HOST={h} is not supported: use unix:///path/to/docker.sock or tcp://host:port (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS)"
            ),
            Error::BadHost(h) => write!(
                f,
                "DOCKER_HOST={h:?} is not a Docker endpoint; use unix:///path/to/docker.sock or tcp://host:port"
            ),
            Error::TlsFiles { dir, problem } => write!(
                f,
                "DOCKER_CERT_PATH={}: {problem}; with DOCKER_TLS_VERIFY set it must hold ca.pem (the engine's CA), cert.pem and key.pem (this client's certificate and key)",
                dir.display()
            ),
            Error::Handshake { endpoint, message } => write!(
                f,
                "cannot reach Docker at {endpoint}: TLS handshake failed: {message}; check ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (or unset DOCKER_TLS_VERIFY for a plain tcp:// engine)"
            ),
            Error::Unreachable { endpoint, why } => match why {
                Unreachable::NoSuchFile => write!(
                    f,
                    "cannot reach Docker at {endpoint}: no such file; is dockerd running? set DOCKER_HOST"
                ),
                Unreachable::Refused if endpoint.starts_with("tcp://") => write!(
                    f,
                    "cannot reach Docker at {endpoint}: connection refused; is dockerd listening there? check DOCKER_HOST"
                ),
                Unreachable::PermissionDenied => write!(
                    f,
                    "cannot reach Docker at {endpoint}: permission denied; run as root, add this user to the docker group, or in a container add --group-add $(stat -c %g {})",
                    endpoint.trim_start_matches("unix://")
                ),
                Unreachable::Refused => write!(
                    f,
                    "cannot reach Docker at {endpoint}: connection refused; the socket exists but dockerd is not listening (is it running?)"
                ),
                Unreachable::NotASocket => write!(
                    f,
                    "cannot reach Docker at {endpoint}: not a socket; set DOCKER_HOST to the engine's socket"
                ),
                Unreachable::Timeout => write!(
                    f,
                    "cannot reach Docker at {endpoint}: connect timed out after {} ms",
                    crate::limits::ENGINE_CONNECT_TIMEOUT_MS
                ),
                Unreachable::Other(kind) => {
                    write!(f, "cannot reach Docker at {endpoint}: {kind}")
                }
            },
            Error::ApiTooOld { server } => write!(
                f,
                "the engine speaks Docker API {server}, older than the {}.{} this agent needs",
                crate::limits::API_VERSION_MIN.0,
                crate::limits::API_VERSION_MIN.1
            ),
            Error::Http { call, source } => write!(f, "docker {call}: {source}"),
            Error::Status {
                call,
                status,
                message,
            } => write!(f, "docker {call}: HTTP {status}: {message}"),
            Error::Json { call, message } => {
                write!(f, "docker {call}: unexpected JSON: {message}")
            }
            Error::Stream { call, message } => write!(f, "docker {call}: {message}"),
            Error::LineTooLong { call, max } => write!(
                f,
                "docker {call}: stream line longer than {max} bytes (EVENT_LINE_MAX_BYTES)"
            ),
        }
    }
}

impl std::error::Error for Error {}
