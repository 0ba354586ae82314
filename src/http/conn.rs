//! One HTTP/1.1 client connection over any async byte stream: the only file of this layer that does I/O.
//!
//! The read buffer (`CONN_BUF_BYTES`) is allocated once per connection and never grows. Every read
//! takes an optional [`Deadline`]: calls have one, so a peer that stalls or trickles cannot hold a
//! request open; long-lived streams (`/events`) pass none. A connection can be reused for the next
//! request only when the previous body was read to its end and the server allowed keep-alive.
use super::body::{Chunk, Chunked};
use super::head::{self, Framing, Head, Parsed};
use super::Error;
use crate::limits::CONN_BUF_BYTES;
use async_io::Timer;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::ops::Range;
use std::time::{Duration, Instant};

/// A point in time by which a stage must finish, and the budget it came from (for the error text).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    ms: u64,
}

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Deadline {
            at: Instant::now() + Duration::from_millis(ms),
            ms,
        }
    }
}

#[derive(Debug)]
enum Body {
    /// No head read yet, or the body is over.
    Done,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

/// A client connection: a stream plus its read buffer and the state of the current response body.
#[derive(Debug)]
pub struct Conn<S> {
    io: S,
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    body: Body,
    keep_alive: bool,
    /// False once anything went wrong or the server asked to close.
    healthy: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps a connected stream.
    pub fn new(io: S) -> Self {
        Conn {
            io,
            buf: vec![0u8; CONN_BUF_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            body: Body::Done,
            keep_alive: false,
            healthy: true,
        }
    }

    /// Writes `bytes` (a request head, then any body) and flushes.
    pub async fn write_all(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), Error> {
        let io = &mut self.io;
        let result = with_deadline(Some(deadline), "request write", async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await;
        if result.is_err() {
            self.healthy = false;
        }
        result
    }

    /// Reads a response head. `head_request` and `capture` as in [`head::try_parse`]. After it, the
    /// body is read with [`Conn::read_body_slice`] or [`Conn::read_body_to_end`].
    pub async fn read_head(
        &mut self,
        head_request: bool,
        capture: &[&str],
        deadline: Deadline,
    ) -> Result<Head, Error> {
        let result = self.read_head_inner(head_request, capture, deadline).await;
        if result.is_err() {
            self.healthy = false;
        }
        result
    }

    async fn read_head_inner(
        &mut self,
        head_request: bool,
        capture: &[&str],
        deadline: Deadline,
    ) -> Result<Head, Error> {
        loop {
            match head::try_parse(&self.buf[self.start..self.end], head_request, capture)? {
                Parsed::Complete(head, len) => {
                    self.start += len;
                    self.keep_alive = head.keep_alive;
                    self.body = match head.framing {
                        Framing::Empty | Framing::Length(0) => Body::Done,
                        Framing::Length(n) => Body::Length(n),
                        Framing::Chunked => Body::Chunked(Chunked::new()),
                        Framing::UntilClose => Body::UntilClose,
                    };
                    return Ok(head);
                }
                Parsed::Partial => {
                    let had = self.end - self.start;
                    if self.fill(Some(deadline), "response head").await? == 0 {
                        return Err(if had == 0 {
                            Error::Closed
                        } else {
                            Error::Truncated { what: "head" }
                        });
                    }
                }
            }
        }
    }

    /// The next slice of the body, `None` at its end. Slices are at most `CONN_BUF_BYTES` long and
    /// borrow the connection's buffer until the next call.
    pub async fn read_body_slice(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<Option<&[u8]>, Error> {
        match self.next_body_range(deadline).await {
            Ok(Some(r)) => Ok(Some(&self.buf[r])),
            Ok(None) => Ok(None),
            Err(e) => {
                self.healthy = false;
                self.body = Body::Done;
                Err(e)
            }
        }
    }

    async fn next_body_range(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<Option<Range<usize>>, Error> {
        loop {
            let buffered = self.start < self.end;
            match &mut self.body {
                Body::Done => return Ok(None),
                Body::Length(remaining) if buffered => {
                    let n = (*remaining).min((self.end - self.start) as u64) as usize;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.body = Body::Done;
                    }
                    let r = self.start..self.start + n;
                    self.start += n;
                    return Ok(Some(r));
                }
                Body::UntilClose if buffered => {
                    let r = self.start..self.end;
                    self.start = self.end;
                    return Ok(Some(r));
                }
                Body::Chunked(dec) => {
                    let base = self.start;
                    let (n, chunk) = dec.next(&self.buf[self.start..self.end])?;
                    self.start += n;
                    match chunk {
                        Chunk::Data(r) => return Ok(Some(base + r.start..base + r.end)),
                        Chunk::Done => {
                            self.body = Body::Done;
                            return Ok(None);
                        }
                        Chunk::NeedMore => {}
                    }
                }
                Body::Length(_) | Body::UntilClose => {}
            }
            if self.fill(deadline, "response body").await? == 0 {
                return match self.body {
                    Body::UntilClose => {
                        self.body = Body::Done;
                        self.healthy = false;
                        Ok(None)
                    }
                    Body::Length(_) => Err(Error::Truncated { what: "body" }),
                    Body::Chunked(_) => Err(Error::Truncated {
                        what: "chunked body",
                    }),
                    Body::Done => Ok(None),
                };
            }
        }
    }

    /// Reads the rest of the body into `out` (cleared first). A body longer than `max` is
    /// [`Error::BodyTooLarge`]: a Content-Length over the cap is refused before any of it is read.
    pub async fn read_body_to_end(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        deadline: Deadline,
    ) -> Result<(), Error> {
        out.clear();
        if let Body::Length(n) = self.body {
            if n > max as u64 {
                self.healthy = false;
                self.body = Body::Done;
                return Err(Error::BodyTooLarge { len: n, max });
            }
            // Reserve once: the length is known and within the cap.
            out.reserve(n as usize);
        }
        while let Some(slice) = self.read_body_slice(Some(deadline)).await? {
            if out.len() + slice.len() > max {
                let len = (out.len() + slice.len()) as u64;
                self.healthy = false;
                self.body = Body::Done;
                return Err(Error::BodyTooLarge { len, max });
            }
            out.extend_from_slice(slice);
        }
        Ok(())
    }

    /// Reads and drops the rest of the body, at most `max` bytes (more makes the connection unusable
    /// rather than an error: the caller already has what it needs).
    pub async fn skip_body(&mut self, max: usize, deadline: Deadline) -> Result<(), Error> {
        let mut seen = 0usize;
        while let Some(slice) = self.read_body_slice(Some(deadline)).await? {
            seen += slice.len();
            if seen > max {
                self.healthy = false;
                self.body = Body::Done;
                break;
            }
        }
        Ok(())
    }

    /// Whether another request may be sent: the last body was read to its end, nothing unexpected
    /// is buffered and the server allowed keep-alive.
    pub fn is_reusable(&self) -> bool {
        self.healthy && self.keep_alive && matches!(self.body, Body::Done) && self.start == self.end
    }

    /// Gives back the stream and any bytes already read past the head (for a protocol upgrade).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.buf[self.start..self.end].to_vec();
        (self.io, rest)
    }

    /// Reads more bytes into the buffer; returns how many (0 = end of stream).
    async fn fill(
        &mut self,
        deadline: Option<Deadline>,
        what: &'static str,
    ) -> Result<usize, Error> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Callers only fill when they cannot progress; a full buffer here is a bug, not input.
            return Err(Error::Malformed("read buffer full"));
        }
        let (io, free) = (&mut self.io, &mut self.buf[self.end..]);
        let n = with_deadline(deadline, what, async { io.read(free).await }).await?;
        self.end += n;
        Ok(n)
    }
}

/// Runs `fut`, failing with [`Error::Timeout`] if `deadline` passes first.
async fn with_deadline<T>(
    deadline: Option<Deadline>,
    what: &'static str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Error> {
    match deadline {
        None => Ok(fut.await?),
        Some(d) => {
            let timeout = async {
                Timer::at(d.at).await;
                Err(Error::Timeout { what, ms: d.ms })
            };
            smol::future::or(async { fut.await.map_err(Error::Io) }, timeout).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_io::Async;
    use std::os::unix::net::UnixStream;

    /// Serves `response` through a socket pair, written in pieces of `step` bytes, then closes it.
    fn run(response: &[u8], step: usize, max: usize) -> Result<(u16, Vec<u8>, bool), Error> {
        let (a, b) = UnixStream::pair().unwrap();
        let response = response.to_vec();
        async_io::block_on(async move {
            let mut server = Async::new(b).unwrap();
            let writer = async move {
                for piece in response.chunks(step.max(1)) {
                    let _ = server.write_all(piece).await;
                    let _ = server.flush().await;
                    Timer::after(Duration::from_micros(50)).await;
                }
            };
            let mut conn = Conn::new(Async::new(a).unwrap());
            let reader = async {
                let head = conn.read_head(false, &[], Deadline::after_ms(2000)).await?;
                let mut body = Vec::new();
                conn.read_body_to_end(&mut body, max, Deadline::after_ms(2000))
                    .await?;
                Ok((head.status, body, conn.is_reusable()))
            };
            let (result, ()) = smol::future::zip(reader, writer).await;
            result
        })
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies_in_any_pieces() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello", true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n", b"hello!", true),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil close", b"until close", false),
            (b"HTTP/1.1 204 No Content\r\n\r\n", b"", true),
        ];
        for (response, body, reusable) in cases {
            for step in [1, 2, 7, 1000] {
                let (status, got, reuse) = run(response, step, 1024).unwrap();
                assert_eq!(&got[..], *body, "step {step}");
                assert!(status == 200 || status == 204);
                assert_eq!(reuse, *reusable, "step {step}");
            }
        }
    }

    #[test]
    fn truncations_are_distinct_errors() {
        let closed = run(b"", 1, 1024).unwrap_err();
        assert!(matches!(closed, Error::Closed), "{closed}");
        let head = run(b"HTTP/1.1 200 OK\r\nContent-Le", 3, 1024).unwrap_err();
        assert!(matches!(head, Error::Truncated { what: "head" }), "{head}");
        let body = run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 3, 1024).unwrap_err();
        assert!(matches!(body, Error::Truncated { what: "body" }), "{body}");
        let chunk = run(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            3,
            1024,
        )
        .unwrap_err();
        assert!(
            matches!(
                chunk,
                Error::Truncated {
                    what: "chunked body"
                }
            ),
            "{chunk}"
        );
    }

    #[test]
    fn bodies_over_the_cap_are_refused() {
        let announced =
            run(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 100, 10).unwrap_err();
        assert!(
            matches!(announced, Error::BodyTooLarge { len: 100, max: 10 }),
            "{announced}"
        );
        let chunked = run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 5, 10).unwrap_err();
        assert!(
            matches!(chunked, Error::BodyTooLarge { max: 10, .. }),
            "{chunked}"
        );
    }

    #[test]
    fn a_stalled_peer_times_out() {
        let (a, b) = UnixStream::pair().unwrap();
        let err = async_io::block_on(async move {
            let _keep_open = b;
            let mut conn = Conn::new(Async::new(a).unwrap());
            conn.read_head(false, &[], Deadline::after_ms(100))
                .await
                .unwrap_err()
        });
        assert!(matches!(err, Error::Timeout { ms: 100, .. }), "{err}");
    }
}
