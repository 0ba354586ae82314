//! The Engine API calls, over the unix socket, TCP or TLS ([`super::stream`]) with a small keep-alive
//! pool.
//!
//! Every call has a body cap (`limits::*_BODY_MAX_BYTES`) and a deadline covering write, head and body,
//! so a stalled or trickling engine is an error naming the call, not a hang. Response bodies go into
//! a buffer the caller owns and reuses; parsed types borrow from it. Streams (`/events`) have no
//! deadline and never return to the pool.
//!
//! Pool policy: at most `IDLE_CONN_MAX_COUNT` idle connections; a connection goes back only when its
//! body was read to the end and the engine allowed keep-alive; when the pool is full it is closed.
//! A pooled connection the engine has closed meanwhile fails before any byte of an answer; such a
//! request is sent once more on a fresh connection.
use super::endpoint::{self, Endpoint};
use super::lines::Lines;
use super::stream::{self, DialError};
use super::types::{ContainerSummary, ErrorBody, Info, Version};
use super::version::{self, ApiVersion};
use super::{stats, Error, Unreachable};
use crate::http::conn::{Conn, Deadline};
use crate::http::head::Head;
use crate::http::{self, request};
use crate::limits::*;
use async_io::{Async, Timer};
use serde::Deserialize;
use std::cell::RefCell;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

/// A connection to the engine (unix, TCP or TLS).
pub(super) type UnixConn = Conn<stream::Stream>;

/// A client of one engine. Cheap to share behind an `Rc` between tasks of the local executor.
pub struct Client {
    endpoint: Endpoint,
    api: ApiVersion,
    idle: RefCell<heapless::Vec<UnixConn, IDLE_CONN_MAX_COUNT>>,
    /// The TLS configuration of a `tcp://` engine with `DOCKER_TLS_VERIFY`, built once.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// `Host` header value: Docker ignores it; the Go SDK sends `docker` over unix sockets too.
pub(super) const HOST: &str = "docker";

impl Client {
    /// Connects to `endpoint`, pings it and negotiates the API version.
    pub async fn connect(endpoint: Endpoint) -> Result<Client, Error> {
        let tls = match &endpoint {
            Endpoint::Tcp { tls: Some(dir), .. } => {
                Some(stream::tls_config(dir).map_err(|problem| Error::TlsFiles {
                    dir: dir.clone(),
                    problem,
                })?)
            }
            _ => None,
        };
        let mut client = Client {
            endpoint,
            api: ApiVersion::of(API_VERSION_MIN),
            idle: RefCell::new(heapless::Vec::new()),
            tls,
        };
        let mut buf = Vec::new();
        let head = client
            .exchange(
                "GET",
                "/_ping",
                false,
                &mut buf,
                PING_BODY_MAX_BYTES,
                CALL_TIMEOUT_MS,
                &["api-version"],
            )
            .await?;
        client.api = version::negotiate(head.captured[0].as_deref())?;
        Ok(client)
    }

    /// The socket this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The API version every call is made under.
    pub fn api_version(&self) -> ApiVersion {
        self.api
    }

    /// `GET /info`.
    pub async fn info<'b>(&self, buf: &'b mut Vec<u8>) -> Result<Info<'b>, Error> {
        self.get("/info", buf, INFO_BODY_MAX_BYTES).await?;
        parse_json("GET /info", buf)
    }

    /// `GET /version`.
    pub async fn version<'b>(&self, buf: &'b mut Vec<u8>) -> Result<Version<'b>, Error> {
        self.get("/version", buf, VERSION_BODY_MAX_BYTES).await?;
        parse_json("GET /version", buf)
    }

    /// `GET /containers/json`, every container when `all`, else the running ones.
    pub async fn containers<'b>(
        &self,
        all: bool,
        buf: &'b mut Vec<u8>,
    ) -> Result<Vec<ContainerSummary<'b>>, Error> {
        let target = if all {
            "/containers/json?all=1"
        } else {
            "/containers/json"
        };
        self.get(target, buf, LIST_BODY_MAX_BYTES).await?;
        parse_json("GET /containers/json", buf)
    }

    /// `GET /containers/{id}/json`: Docker's inspect JSON, left in `buf` as it came (checked to be a
    /// JSON object).
    pub async fn inspect_raw(&self, id: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        let mut target = String::with_capacity(64);
        target.push_str("/containers/");
        request::push_encoded(&mut target, id);
        target.push_str("/json");
        self.get(&target, buf, INSPECT_BODY_MAX_BYTES).await?;
        parse_json::<serde::de::IgnoredAny>("GET /containers/{id}/json", buf)?;
        Ok(())
    }

    /// One stats reading of a running container: `stream=false&one-shot=true` where the API has
    /// one-shot (1.41+), else `stream=false` (Docker then waits about a second to fill precpu).
    pub async fn stats(&self, id: &str, buf: &mut Vec<u8>) -> Result<crate::stats::Sample, Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/containers/");
        request::push_encoded(&mut target, id);
        target.push_str(if self.api.has_one_shot() {
            "/stats?stream=false&one-shot=true"
        } else {
            "/stats?stream=false"
        });
        let call = "GET /containers/{id}/stats";
        self.exchange(
            "GET",
            &target,
            true,
            buf,
            STATS_BODY_MAX_BYTES,
            STATS_TIMEOUT_MS,
            &[],
        )
        .await?;
        stats::parse(buf).map_err(|e| Error::Json {
            call: call.to_string(),
            message: e.to_string(),
        })
    }

    /// `GET /events` for container events, as a stream of JSON lines. The engine filters by type, so
    /// image, network and volume events never cross the socket.
    pub async fn events(&self) -> Result<Stream, Error> {
        self.events_since(None).await
    }

    /// As [`events`](Self::events), replaying first the events since `since` (time since the Unix
    /// epoch): a re-subscription after the stream ended asks for the events of the gap, so a
    /// container started while dockerd restarted is not missed (issue 17).
    pub async fn events_since(&self, since: Option<Duration>) -> Result<Stream, Error> {
        self.stream(&events_target(since), "GET /events").await
    }

    /// A `GET` under the negotiated version, with the ordinary call deadline.
    async fn get(&self, target: &str, buf: &mut Vec<u8>, cap: usize) -> Result<(), Error> {
        self.exchange("GET", target, true, buf, cap, CALL_TIMEOUT_MS, &[])
            .await
            .map(|_| ())
    }

    /// Opens a streaming `GET`: the head is read within the call deadline, the body has none.
    pub async fn stream(&self, target: &str, call: &'static str) -> Result<Stream, Error> {
        let full = self.versioned(target);
        let deadline = Deadline::after_ms(CALL_TIMEOUT_MS);
        let mut head_bytes = Vec::with_capacity(128);
        request::emit(&mut head_bytes, "GET", &full, HOST, &[], None).map_err(http_err(call))?;
        let mut conn = self.dial().await?;
        conn.write_all(&head_bytes, deadline)
            .await
            .map_err(http_err(call))?;
        let head = conn
            .read_head(false, &[], deadline)
            .await
            .map_err(http_err(call))?;
        if !(200..300).contains(&head.status) {
            return Err(status_error(call, head.status, &mut conn, deadline).await);
        }
        Ok(Stream {
            conn,
            lines: Lines::new(EVENT_LINE_MAX_BYTES),
            call,
        })
    }

    /// One request under the negotiated version and its whole answer into `out` (at most `cap`
    /// bytes) within `timeout_ms`. `body` is `(content type, bytes)`. Non-2xx answers become
    /// [`Error::Status`] with Docker's message. For endpoint modules of this layer (`ops`, `logs`).
    pub(crate) async fn call(
        &self,
        method: &'static str,
        target: &str,
        body: Option<(&str, &[u8])>,
        out: &mut Vec<u8>,
        cap: usize,
        timeout_ms: u64,
    ) -> Result<(), Error> {
        self.exchange_with(method, target, true, body, out, cap, timeout_ms, &[])
            .await
            .map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        method: &'static str,
        target: &str,
        versioned: bool,
        out: &mut Vec<u8>,
        cap: usize,
        timeout_ms: u64,
        capture: &[&str],
    ) -> Result<Head, Error> {
        self.exchange_with(
            method, target, versioned, None, out, cap, timeout_ms, capture,
        )
        .await
    }

    /// One request and its whole answer. Returns the head (for captured headers).
    #[allow(clippy::too_many_arguments)]
    async fn exchange_with(
        &self,
        method: &'static str,
        target: &str,
        versioned: bool,
        body: Option<(&str, &[u8])>,
        out: &mut Vec<u8>,
        cap: usize,
        timeout_ms: u64,
        capture: &[&str],
    ) -> Result<Head, Error> {
        let call = call_name(method, target);
        let deadline = Deadline::after_ms(timeout_ms);
        let (mut conn, head) = self
            .open(&call, method, target, versioned, body, capture, deadline)
            .await?;
        conn.read_body_to_end(out, cap, deadline)
            .await
            .map_err(|e| Error::Http { call, source: e })?;
        self.give_back(conn);
        Ok(head)
    }

    /// [`Client::call`] for a body the caller bounds itself (`logs`): each slice of the body (at most
    /// `CONN_BUF_BYTES`, borrowed until the next one) goes to `each` as it arrives, all within
    /// `timeout_ms`. An error from `each` stops the read and is returned; that connection is closed,
    /// not pooled.
    pub(crate) async fn call_each(
        &self,
        method: &'static str,
        target: &str,
        timeout_ms: u64,
        each: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let call = call_name(method, target);
        let deadline = Deadline::after_ms(timeout_ms);
        let (mut conn, _) = self
            .open(&call, method, target, true, None, &[], deadline)
            .await?;
        loop {
            match conn.read_body_slice(Some(deadline)).await {
                Ok(Some(slice)) => each(slice)?,
                Ok(None) => break,
                Err(source) => return Err(Error::Http { call, source }),
            }
        }
        self.give_back(conn);
        Ok(())
    }

    /// Sends one request (on a pooled connection when there is one) and reads the head of a 2xx
    /// answer; the body is left for the caller. Non-2xx answers become [`Error::Status`].
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn open(
        &self,
        call: &str,
        method: &'static str,
        target: &str,
        versioned: bool,
        body: Option<(&str, &[u8])>,
        capture: &[&str],
        deadline: Deadline,
    ) -> Result<(UnixConn, Head), Error> {
        self.open_with(
            call,
            method,
            target,
            versioned,
            &[],
            body,
            capture,
            deadline,
        )
        .await
    }

    /// [`Client::open`] with extra request headers (`X-Registry-Auth` of a pull).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn open_with(
        &self,
        call: &str,
        method: &'static str,
        target: &str,
        versioned: bool,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
        capture: &[&str],
        deadline: Deadline,
    ) -> Result<(UnixConn, Head), Error> {
        let full = if versioned {
            self.versioned(target)
        } else {
            target.to_string()
        };
        let mut head_bytes = Vec::with_capacity(128);
        request::emit(
            &mut head_bytes,
            method,
            &full,
            HOST,
            headers,
            body.map(|(ct, b)| (ct, b.len())),
        )
        .map_err(|e| Error::Http {
            call: call.to_string(),
            source: e,
        })?;
        if let Some((_, b)) = body {
            // Head and body in one write: one syscall, one packet.
            head_bytes.extend_from_slice(b);
        }

        let pooled = self.idle.borrow_mut().pop();
        let (mut conn, reused) = match pooled {
            Some(c) => (c, true),
            None => (self.dial().await?, false),
        };
        let mut result = send_and_read_head(&mut conn, &head_bytes, capture, deadline).await;
        if reused && matches!(result, Err(http::Error::Closed) | Err(http::Error::Io(_))) {
            // The engine closed the idle connection; nothing of ours was processed.
            conn = self.dial().await?;
            result = send_and_read_head(&mut conn, &head_bytes, capture, deadline).await;
        }
        let head = result.map_err(|e| Error::Http {
            call: call.to_string(),
            source: e,
        })?;
        if !(200..300).contains(&head.status) {
            let err = status_error_owned(call.to_string(), head.status, &mut conn, deadline).await;
            self.give_back(conn);
            return Err(err);
        }
        Ok((conn, head))
    }

    pub(super) fn give_back(&self, conn: UnixConn) {
        if conn.is_reusable() {
            // A full pool drops (closes) the connection: the stated policy.
            let _ = self.idle.borrow_mut().push(conn);
        }
    }

    pub(super) fn versioned(&self, target: &str) -> String {
        let mut s = String::with_capacity(target.len() + 6);
        s.push_str("/v");
        s.push_str(&self.api.to_string());
        s.push_str(target);
        s
    }

    pub(super) async fn dial(&self) -> Result<UnixConn, Error> {
        let unreachable = |why| Error::Unreachable {
            endpoint: self.endpoint.to_string(),
            why,
        };
        let kind = |e: &std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Unreachable::NoSuchFile,
            std::io::ErrorKind::PermissionDenied => Unreachable::PermissionDenied,
            std::io::ErrorKind::ConnectionRefused => Unreachable::Refused,
            kind => Unreachable::Other(kind),
        };
        let path = match &self.endpoint {
            Endpoint::Unix(path) => path,
            Endpoint::Tcp { host, port, .. } => {
                return match stream::dial_tcp(host, *port, self.tls.as_ref()).await {
                    Ok(s) => Ok(Conn::new(s)),
                    Err(DialError::Io(None)) => Err(unreachable(Unreachable::Timeout)),
                    Err(DialError::Io(Some(e))) => Err(unreachable(kind(&e))),
                    Err(DialError::Resolve(message) | DialError::Handshake(message)) => {
                        Err(Error::Handshake {
                            endpoint: self.endpoint.to_string(),
                            message,
                        })
                    }
                };
            }
        };
        let connect = async { Some(Async::<UnixStream>::connect(path).await) };
        let timeout = async {
            Timer::after(Duration::from_millis(ENGINE_CONNECT_TIMEOUT_MS)).await;
            None
        };
        match smol::future::or(connect, timeout).await {
            None => Err(unreachable(Unreachable::Timeout)),
            Some(Ok(s)) => Ok(Conn::new(stream::Stream::Unix(s))),
            Some(Err(e)) => Err(unreachable(match e.kind() {
                std::io::ErrorKind::ConnectionRefused
                    if path.exists() && !endpoint::is_socket(path) =>
                {
                    Unreachable::NotASocket
                }
                _ => kind(&e),
            })),
        }
    }
}

/// An open streaming response (events, streamed stats): JSON lines until the engine ends it.
pub struct Stream {
    conn: UnixConn,
    lines: Lines,
    call: &'static str,
}

impl Stream {
    /// The next line, `None` when the engine ended the stream. Waits as long as it takes.
    pub async fn next_line(&mut self) -> Result<Option<&[u8]>, Error> {
        let call = self.call;
        loop {
            if let Some(r) = self.lines.next_range().map_err(|_| too_long(call))? {
                return Ok(Some(self.lines.get(r)));
            }
            match self
                .conn
                .read_body_slice(None)
                .await
                .map_err(http_err(call))?
            {
                None => return Ok(None),
                Some(bytes) => self.lines.push(bytes).map_err(|_| too_long(call))?,
            }
        }
    }
}

fn too_long(call: &'static str) -> Error {
    Error::LineTooLong {
        call: call.to_string(),
        max: EVENT_LINE_MAX_BYTES,
    }
}

async fn send_and_read_head(
    conn: &mut UnixConn,
    head_bytes: &[u8],
    capture: &[&str],
    deadline: Deadline,
) -> Result<Head, http::Error> {
    conn.write_all(head_bytes, deadline).await?;
    conn.read_head(false, capture, deadline).await
}

fn http_err(call: &'static str) -> impl Fn(http::Error) -> Error {
    move |source| Error::Http {
        call: call.to_string(),
        source,
    }
}

async fn status_error(
    call: &'static str,
    status: u16,
    conn: &mut UnixConn,
    deadline: Deadline,
) -> Error {
    status_error_owned(call.to_string(), status, conn, deadline).await
}

/// Reads Docker's `{"message": ...}` (or the start of whatever the body is) into a status error.
pub(super) async fn status_error_owned(
    call: String,
    status: u16,
    conn: &mut UnixConn,
    deadline: Deadline,
) -> Error {
    let mut body = Vec::new();
    let message = match conn
        .read_body_to_end(&mut body, ERROR_BODY_MAX_BYTES, deadline)
        .await
    {
        Ok(()) => match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) if !e.message.is_empty() => e.message.trim().to_string(),
            _ => String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        },
        Err(e) => format!("(error body unreadable: {e})"),
    };
    Error::Status {
        call,
        status,
        message,
    }
}

/// `METHOD /path` without the query and with IDs kept (they help the user).
fn call_name(method: &str, target: &str) -> String {
    let path = target.split('?').next().unwrap_or(target);
    format!("{method} {path}")
}

pub(super) fn parse_json<'b, T: Deserialize<'b>>(call: &str, buf: &'b [u8]) -> Result<T, Error> {
    serde_json::from_slice(buf).map_err(|e| Error::Json {
        call: call.to_string(),
        message: e.to_string(),
    })
}

/// The `/events` target: container events only (`filters={"type":["container"]}`), from `since`
/// (seconds.nanoseconds since the epoch, the form the engine's `since` parameter takes) when given.
fn events_target(since: Option<Duration>) -> String {
    const FILTER: &str = "filters=%7B%22type%22%3A%5B%22container%22%5D%7D";
    match since {
        Some(t) => format!(
            "/events?since={}.{:09}&{FILTER}",
            t.as_secs(),
            t.subsec_nanos()
        ),
        None => format!("/events?{FILTER}"),
    }
}

#[cfg(test)]
mod events_target_tests {
    use super::events_target;
    use std::time::Duration;

    #[test]
    fn since_is_seconds_dot_nanoseconds_before_the_filter() {
        assert_eq!(
            events_target(None),
            "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"
        );
        assert_eq!(
            events_target(Some(Duration::new(1_796_600_000, 5))),
            "/events?since=1796600000.000000005&filters=%7B%22type%22%3A%5B%22container%22%5D%7D"
        );
    }
}
