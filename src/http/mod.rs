//! HTTP/1.1 client wire format (RFC 9112) and one client connection. Knows nothing of Docker.
//!
//! - [`request`]: request heads written into a caller buffer.
//! - [`head`]: response heads parsed with httparse into status, framing and a few captured headers.
//! - [`body`]: the chunked transfer coding decoder (pure, incremental).
//! - [`conn`]: one connection over any async byte stream: write a request, read a head, read a body
//!   whole (capped) or slice by slice (streams), with a deadline on every read.
//!
//! Policy when full: a head larger than [`crate::limits::HEAD_MAX_BYTES`], more headers than
//! [`crate::limits::HEADER_MAX_COUNT`] or a body over its caller-given cap is an error naming the cap;
//! nothing grows past a limit.
pub mod body;
pub mod conn;
pub mod head;
pub mod request;

use std::fmt;

/// Everything that can go wrong on the HTTP layer. The caller adds which request it was.
#[derive(Debug)]
pub enum Error {
    /// The socket failed.
    Io(std::io::Error),
    /// No complete answer before the deadline; `what` is the stage (head, body, write).
    Timeout {
        /// The stage that ran out of time.
        what: &'static str,
        /// The deadline, in milliseconds from the start of the call.
        ms: u64,
    },
    /// The peer closed the connection before sending any byte of a response.
    Closed,
    /// The peer closed the connection in the middle of a head or body.
    Truncated {
        /// Where: "head", "body" or "chunked body".
        what: &'static str,
    },
    /// The response head is larger than its cap.
    HeadTooLarge {
        /// Bytes buffered without finding the end of the head.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The response has more headers than we have slots for.
    TooManyHeaders {
        /// The cap.
        max: usize,
    },
    /// The head is not valid HTTP/1.1.
    Malformed(&'static str),
    /// The body is larger than the cap for this request.
    BodyTooLarge {
        /// Bytes announced or received.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// A chunked body broke RFC 9112 §7.1.
    BadChunk(&'static str),
    /// The request itself could not be written (a target with a space or a line break, too long).
    BadRequest(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Timeout { what, ms } => write!(f, "timed out after {ms} ms waiting for the {what}"),
            Error::Closed => write!(f, "connection closed before any response"),
            Error::Truncated { what } => write!(f, "connection closed in the middle of the {what}"),
            Error::HeadTooLarge { len, max } => write!(
                f,
                "response head exceeds {max} bytes (HEAD_MAX_BYTES) with {len} bytes and no end in sight"
            ),
            Error::TooManyHeaders { max } => {
                write!(f, "response has more than {max} headers (HEADER_MAX_COUNT)")
            }
            Error::Malformed(what) => write!(f, "malformed response head: {what}"),
            Error::BodyTooLarge { len, max } => {
                write!(f, "response body of {len} bytes exceeds the cap of {max} bytes")
            }
            Error::BadChunk(what) => write!(f, "malformed chunked body: {what}"),
            Error::BadRequest(what) => write!(f, "cannot write request: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
