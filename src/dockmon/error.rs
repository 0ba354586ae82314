//! Why talking to DockMon failed, typed, so the session decides by variant and never by message text
//! (issue 10). `Display` gives the one-line texts a user reads in the log; they are the texts the
//! agent has always logged (tests assert some of them).
use crate::ws::conn::Error as WsError;
use std::fmt;
use std::time::Duration;

/// Opening the transport to DockMon: DNS, TCP, TLS (spec 2.1, 2.9).
#[derive(Debug)]
pub enum Connect {
    /// The host name did not resolve.
    Resolve(crate::dns::Error),
    /// Resolution gave no address.
    NoAddress,
    /// TCP to the last address tried failed.
    Tcp {
        /// The address.
        addr: std::net::SocketAddr,
        /// The socket error.
        error: std::io::Error,
    },
    /// TCP to the last address tried did not finish within the connect timeout.
    TcpTimeout {
        /// The address.
        addr: std::net::SocketAddr,
    },
    /// The host is not a valid TLS server name.
    ServerName(crate::tls::Error),
    /// The TLS handshake failed (a certificate the trust store rejects, among others).
    Tls(std::io::Error),
    /// The TLS handshake did not finish within the connect timeout.
    TlsTimeout,
    /// The proxy settings are unusable, or the proxy refused or did not answer the tunnel; the
    /// text names the proxy (never its credentials) and the variable it came from.
    Proxy(String),
}

impl Connect {
    /// Whether the server's certificate was refused (unknown issuer, expired, wrong name): a
    /// `check` hint then names SSL_CERT_FILE and INSECURE_SKIP_VERIFY.
    pub fn is_certificate(&self) -> bool {
        match self {
            Connect::Tls(e) => e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| {
                    matches!(
                        r,
                        rustls::Error::InvalidCertificate(_)
                            | rustls::Error::NoCertificatesPresented
                    )
                }),
            _ => false,
        }
    }
}

impl fmt::Display for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connect::Resolve(e) => write!(f, "{e}"),
            Connect::NoAddress => write!(f, "no address"),
            Connect::Tcp { addr, error } => write!(f, "tcp {addr}: {error}"),
            Connect::TcpTimeout { addr } => write!(f, "tcp {addr}: connect timed out"),
            Connect::ServerName(e) => write!(f, "{e}"),
            Connect::Tls(e) => write!(f, "tls handshake: {e}"),
            Connect::TlsTimeout => write!(f, "tls handshake: timed out"),
            Connect::Proxy(why) => write!(f, "{why}"),
        }
    }
}

/// A write (or read) on the live socket that failed or ran past its deadline.
#[derive(Debug)]
pub enum Io {
    /// The WebSocket layer failed.
    Ws(WsError),
    /// The deadline passed.
    Timeout(Duration),
}

impl fmt::Display for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Io::Ws(e) => write!(f, "{e}"),
            Io::Timeout(d) => write!(f, "timed out after {} s", d.as_secs()),
        }
    }
}

impl From<WsError> for Io {
    fn from(e: WsError) -> Self {
        Io::Ws(e)
    }
}

/// How the backend answered a registration with `auth_error` (spec 2.4, 2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `Extra inputs are not permitted (field: X)` for an optional key we can leave out.
    RefusedKey(&'static str),
    /// `Invalid registration token`: the token (permanent or not) is unknown (spec 2.10).
    InvalidToken,
    /// Anything else.
    Other,
}

impl Rejection {
    /// Classifies an `auth_error` text. The texts are the backend's (spec 2.4), compared whole.
    pub fn of(error: &str) -> Rejection {
        if let Some(key) = super::register::refused_key(error) {
            return Rejection::RefusedKey(key);
        }
        if error == "Invalid registration token" {
            return Rejection::InvalidToken;
        }
        Rejection::Other
    }
}

/// Why one attempt to connect and register failed (spec 2.5: every one counts for the backoff).
#[derive(Debug)]
pub enum Error {
    /// DNS, TCP or TLS.
    Connect(Connect),
    /// The WebSocket upgrade failed.
    Upgrade(WsError),
    /// The register frame could not be written.
    SendRegistration(Io),
    /// Reading the answer failed.
    Registration(WsError),
    /// No answer within `AUTH_REPLY_TIMEOUT_MS`.
    AuthTimeout,
    /// The answer is not a JSON object.
    AnswerNotJson(serde_json::Error),
    /// The answer has no `agent_id` or `host_id`.
    AnswerIncomplete,
    /// The server closed the connection instead of answering.
    ClosedDuringRegistration {
        /// The close code (1005 when none was given).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// `auth_error`.
    Rejected {
        /// The backend's text.
        error: String,
        /// What it means.
        kind: Rejection,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "{e}"),
            Error::Upgrade(e) => write!(f, "websocket upgrade: {e}"),
            Error::SendRegistration(e) => write!(f, "sending the registration: {e}"),
            Error::Registration(e) => write!(f, "registration: {e}"),
            Error::AuthTimeout => write!(f, "registration: no answer within 10 s"),
            Error::AnswerNotJson(e) => write!(f, "registration answer: {e}"),
            Error::AnswerIncomplete => write!(f, "registration answer: no agent_id/host_id"),
            Error::ClosedDuringRegistration { code, reason } => write!(
                f,
                "registration: server closed the connection ({code} {reason})"
            ),
            Error::Rejected { error, .. } => write!(f, "{error}"),
        }
    }
}

impl From<Connect> for Error {
    fn from(e: Connect) -> Self {
        Error::Connect(e)
    }
}

/// Why an established (registered) connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The server sent a close frame.
    Closed {
        /// The close code (1005 when none was given).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Reading failed (the socket, TLS or a protocol violation).
    Read(WsError),
    /// Nothing arrived for `READ_DEADLINE_MS` (spec 2.7).
    Silent,
    /// A ping could not be written.
    Ping(Io),
    /// A frame could not be written.
    Write(Io),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Closed { code, reason } => {
                write!(f, "server closed the connection ({code} {reason})")
            }
            Ended::Read(e) => write!(f, "{e}"),
            Ended::Silent => write!(f, "nothing received for 40 s"),
            Ended::Ping(e) => write!(f, "ping failed: {e}"),
            Ended::Write(e) => write!(f, "write failed: {e}"),
        }
    }
}

/// The text a reply shows for a failed Docker call: Docker's own message for error statuses, worded
/// as the Go SDK words it (`Error response from daemon: …`), an in-band stream error (a pull's
/// `errorDetail`) as Docker wrote it, the whole error otherwise.
pub fn docker_text(e: &crate::docker::Error) -> String {
    match e {
        crate::docker::Error::Status { message, .. } => {
            format!("Error response from daemon: {message}")
        }
        crate::docker::Error::Stream { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_classified_by_the_whole_text() {
        assert_eq!(
            Rejection::of("Invalid registration token"),
            Rejection::InvalidToken
        );
        assert_eq!(
            Rejection::of(
                "Invalid registration data: Extra inputs are not permitted (field: host_ips)"
            ),
            Rejection::RefusedKey("host_ips")
        );
        assert_eq!(Rejection::of("Token expired"), Rejection::Other);
    }

    #[test]
    fn texts_stay_as_users_know_them() {
        assert_eq!(Ended::Silent.to_string(), "nothing received for 40 s");
        assert_eq!(
            Ended::Closed {
                code: 1000,
                reason: "bye".into()
            }
            .to_string(),
            "server closed the connection (1000 bye)"
        );
        assert_eq!(
            Error::AuthTimeout.to_string(),
            "registration: no answer within 10 s"
        );
    }
}
