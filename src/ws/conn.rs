//! One WebSocket client connection over any async byte stream: the only file of this layer that does
//! I/O. A thin loop over the pure pieces (`handshake`, `frame`, `message`).
//!
//! Buffers are allocated once per connection: a read buffer of `WS_READ_BUF_BYTES`, a frame payload
//! buffer that grows only up to the frame cap, and a reassembly buffer (`WS_MESSAGE_MAX_BYTES`,
//! touched only by fragmented messages). A frame or message announced over its cap is refused before
//! its payload is read.
//!
//! [`Conn::read_event`] is cancellation-safe: every byte read is stored in the connection before the
//! next await, so a caller may race it against timers and its outbox and call it again later. Sends
//! are not: a send, once started, must be awaited to its end.
use super::frame::{self, Header, Opcode};
use super::handshake::{self, Key};
use super::message::{Event, Reassembler};
use super::{
    Error as WireError, WS_CONTROL_FRAME_MAX_BYTES, WS_FRAME_HEADER_MAX_BYTES,
    WS_FRAME_PAYLOAD_MAX_BYTES, WS_HANDSHAKE_HEAD_MAX_BYTES, WS_HANDSHAKE_REQUEST_MAX_BYTES,
    WS_MESSAGE_MAX_BYTES,
};
use async_io::{Async, Timer};
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::fmt;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Read buffer of one connection. DockMon's messages to the agent are a few hundred bytes; a frame
/// header always fits, and larger payloads are copied out of it as they arrive.
pub const WS_READ_BUF_BYTES: usize = 8 * 1024;
/// Largest text payload copied behind its header and sent in one write; a larger one is masked in
/// place and sent in two writes. Stats and event frames (about 400 bytes) are well under it.
pub const WS_WRITE_BUF_BYTES: usize = 4 * 1024;

/// Everything that can go wrong on a live WebSocket connection.
#[derive(Debug)]
pub enum Error {
    /// The server broke RFC 6455 (or sent more than our caps).
    Wire(WireError),
    /// The socket failed.
    Io(std::io::Error),
    /// The TLS layer failed.
    Tls(String),
    /// A stage took longer than its deadline.
    Timeout {
        /// The stage.
        what: &'static str,
        /// Its budget.
        ms: u64,
    },
    /// The server closed the TCP connection.
    Closed {
        /// What we were doing.
        during: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wire(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Tls(e) => write!(f, "tls: {e}"),
            Error::Timeout { what, ms } => write!(f, "timed out after {ms} ms waiting for {what}"),
            Error::Closed { during } => write!(f, "server closed the connection during {during}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Error::Wire(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// What arrived.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A whole text message (valid UTF-8).
    Text(&'a str),
    /// A whole binary message (DockMon never sends one); its length.
    Binary(usize),
    /// A ping; the connection has already answered it.
    Ping,
    /// A pong.
    Pong,
    /// The server's close frame: code and reason. The connection has answered it; stop using it.
    Close(Option<u16>, String),
}

/// TCP or TLS over TCP.
pub enum Transport {
    /// `ws://`
    Plain(Async<TcpStream>),
    /// `wss://`
    Tls(Box<futures_rustls::client::TlsStream<Async<TcpStream>>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// A payload masked in place for as long as this lives (masking is its own inverse).
struct Masked<'a>(&'a mut [u8], [u8; 4]);

impl<'a> Masked<'a> {
    fn new(text: &'a mut [u8], mask: [u8; 4]) -> Self {
        frame::apply_mask(text, mask, 0);
        Masked(text, mask)
    }
}

impl Drop for Masked<'_> {
    fn drop(&mut self) {
        frame::apply_mask(self.0, self.1, 0);
    }
}

/// A client WebSocket connection after a successful handshake.
pub struct Conn<S> {
    io: S,
    rbuf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The frame whose payload is being collected, if any.
    header: Option<Header>,
    payload: Vec<u8>,
    message: Vec<u8>,
    reassembler: Reassembler,
    wbuf: Vec<u8>,
    /// Mask keys: a xorshift generator seeded from the OS (RFC 6455 §5.3 asks for unpredictable keys;
    /// they protect intermediaries, not secrets).
    mask_state: u64,
    /// The server's close frame has arrived, or we sent ours: no more data frames.
    closing: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// A connection over `io` with nothing read yet; `seed` seeds the mask keys.
    fn new(io: S, seed: u64) -> Self {
        Conn {
            io,
            rbuf: vec![0u8; WS_READ_BUF_BYTES.max(WS_HANDSHAKE_HEAD_MAX_BYTES)].into_boxed_slice(),
            start: 0,
            end: 0,
            header: None,
            payload: Vec::new(),
            message: Vec::new(),
            reassembler: Reassembler::new(),
            wbuf: Vec::with_capacity(WS_FRAME_HEADER_MAX_BYTES + WS_WRITE_BUF_BYTES),
            mask_state: seed | 1,
            closing: false,
        }
    }

    /// Sends the upgrade request for `path` (with `Host: host_header` and `extra` headers) and checks
    /// the answer. `nonce` is 16 random bytes (the key) and `seed` seeds the mask keys.
    pub async fn handshake(
        mut io: S,
        host_header: &str,
        path: &str,
        extra: &[(&str, &str)],
        nonce: [u8; 16],
        seed: u64,
        timeout_ms: u64,
    ) -> Result<Self, Error> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let key = Key::new(&nonce);
        let mut request = [0u8; WS_HANDSHAKE_REQUEST_MAX_BYTES];
        let n = handshake::emit_request(&mut request, host_header, path, &key, extra)?;
        with_deadline(deadline, timeout_ms, "the upgrade request", async {
            io.write_all(&request[..n]).await?;
            io.flush().await
        })
        .await?;
        let mut conn = Conn::new(io, seed);
        loop {
            if let Some(len) = handshake::try_parse_response(&conn.rbuf[..conn.end], &key)? {
                conn.start = len;
                return Ok(conn);
            }
            if conn.end == conn.rbuf.len() {
                return Err(WireError::HeadTooLarge {
                    len: conn.end,
                    max: WS_HANDSHAKE_HEAD_MAX_BYTES,
                }
                .into());
            }
            let (io, free) = (&mut conn.io, &mut conn.rbuf[conn.end..]);
            let n = with_deadline(deadline, timeout_ms, "the upgrade response", async {
                io.read(free).await
            })
            .await?;
            if n == 0 {
                return Err(Error::Closed {
                    during: "the upgrade",
                });
            }
            conn.end += n;
        }
    }

    /// Waits for the next message or control frame. Pings are answered here (the pong is sent before
    /// this returns `Ping`); a close is answered too.
    pub async fn read_event(&mut self) -> Result<Incoming<'_>, Error> {
        loop {
            if let Some(ready) = self.try_frame()? {
                return Ok(match ready {
                    Ready::Text(which, range) => {
                        let bytes = match which {
                            Which::Payload => &self.payload[range],
                            Which::Message => &self.message[range],
                        };
                        // The reassembler checked this text as UTF-8 already; checking again is cheap
                        // and keeps this function free of unsafe.
                        Incoming::Text(std::str::from_utf8(bytes).map_err(|_| {
                            WireError::InvalidUtf8 {
                                what: "text message",
                                at: 0,
                            }
                        })?)
                    }
                    Ready::Binary(len) => Incoming::Binary(len),
                    Ready::Ping(payload) => {
                        if !self.closing {
                            self.send_control(Opcode::Pong, &payload).await?;
                        }
                        Incoming::Ping
                    }
                    Ready::Pong => Incoming::Pong,
                    Ready::Close(code, reason) => {
                        if !self.closing {
                            // Echo the code (RFC 6455 §5.5.1); a close without code is answered 1000.
                            let _ = self.send_close(code.unwrap_or(1000), "").await;
                        }
                        Incoming::Close(code, reason)
                    }
                });
            }
            self.fill().await?;
        }
    }

    /// Takes one whole frame out of the read buffer if it is all there, and feeds it to the
    /// reassembler. `None`: more bytes are needed.
    fn try_frame(&mut self) -> Result<Option<Ready>, Error> {
        let header = match self.header {
            Some(h) => h,
            None => {
                let Some((h, n)) = frame::try_parse_header(
                    &self.rbuf[self.start..self.end],
                    WS_FRAME_PAYLOAD_MAX_BYTES,
                )?
                else {
                    return Ok(None);
                };
                self.reassembler.check_header(&h, WS_MESSAGE_MAX_BYTES)?;
                self.start += n;
                self.header = Some(h);
                self.payload.clear();
                h
            }
        };
        let missing = header.payload_len - self.payload.len();
        let take = missing.min(self.end - self.start);
        self.payload
            .extend_from_slice(&self.rbuf[self.start..self.start + take]);
        self.start += take;
        if self.payload.len() < header.payload_len {
            return Ok(None);
        }
        self.header = None;
        // A whole message in one frame (every message DockMon sends) is taken straight from the
        // payload: the reassembly buffer is only needed, and only allocated, for fragments.
        let data = matches!(header.opcode, Opcode::Text | Opcode::Binary);
        if data && header.fin && !self.reassembler.is_open() {
            return Ok(Some(match header.opcode {
                Opcode::Text => match std::str::from_utf8(&self.payload) {
                    Ok(_) => Ready::Text(Which::Payload, 0..self.payload.len()),
                    Err(e) => {
                        return Err(WireError::InvalidUtf8 {
                            what: "text message",
                            at: e.valid_up_to(),
                        }
                        .into())
                    }
                },
                _ => Ready::Binary(self.payload.len()),
            }));
        }
        if self.message.is_empty() && !header.opcode.is_control() {
            // Zeroed pages from the allocator: only the bytes a fragmented message writes become resident.
            self.message = vec![0u8; WS_MESSAGE_MAX_BYTES];
        }
        let payload_base = self.payload.as_ptr() as usize;
        let payload_len = self.payload.len();
        let message_base = self.message.as_ptr() as usize;
        let event = self
            .reassembler
            .push(&mut self.message, &header, &self.payload)?;
        let ready = match event {
            None => return Ok(None),
            Some(Event::Text(text)) => {
                let at = text.as_ptr() as usize;
                let which = if at >= payload_base && at + text.len() <= payload_base + payload_len {
                    (Which::Payload, at - payload_base)
                } else {
                    (Which::Message, at - message_base)
                };
                Ready::Text(which.0, which.1..which.1 + text.len())
            }
            Some(Event::Binary(b)) => Ready::Binary(b.len()),
            Some(Event::Ping(p)) => {
                let mut v = heapless::Vec::new();
                // A control payload is at most 125 bytes (checked by the frame parser).
                let _ = v.extend_from_slice(p);
                Ready::Ping(v)
            }
            Some(Event::Pong(_)) => Ready::Pong,
            Some(Event::Close(c)) => Ready::Close(c.code, c.reason.to_string()),
        };
        // A large payload buffer is not kept for the connection's life.
        if self.payload.capacity() > 64 * 1024 && !matches!(ready, Ready::Text(Which::Payload, _)) {
            self.payload = Vec::new();
        }
        Ok(Some(ready))
    }

    async fn fill(&mut self) -> Result<(), Error> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.io.read(&mut self.rbuf[self.end..]).await?;
        if n == 0 {
            return Err(Error::Closed { during: "a read" });
        }
        self.end += n;
        Ok(())
    }

    /// Sends one text message as a single frame. The payload is masked in place and unmasked again
    /// before returning, whatever the outcome, so the caller can keep or requeue it: a large reply
    /// (the container list) is never held twice. A small one is copied behind its header in the
    /// connection's write buffer and goes out in one write.
    pub async fn send_text(&mut self, text: &mut [u8]) -> Result<(), Error> {
        self.flush_queued().await?;
        let mask = self.next_mask();
        let mut header = [0u8; WS_FRAME_HEADER_MAX_BYTES];
        let n = frame::emit_header(&mut header, Opcode::Text, true, text.len(), mask);
        // Unmasked again when dropped: also when this future is cancelled (a write timeout).
        let masked = Masked::new(text, mask);
        if masked.0.len() <= WS_WRITE_BUF_BYTES {
            self.wbuf.clear();
            self.wbuf.extend_from_slice(&header[..n]);
            self.wbuf.extend_from_slice(masked.0);
            self.io.write_all(&self.wbuf).await?;
        } else {
            // TCP_NODELAY is set and the payload is large: two writes cost a few header bytes in a
            // segment of their own, a copy would cost the payload's size.
            self.io.write_all(&header[..n]).await?;
            self.io.write_all(masked.0).await?;
        }
        drop(masked);
        self.io.flush().await?;
        Ok(())
    }

    /// Queues one text message as a single frame behind those already queued, to go out with them in
    /// one write ([`Conn::flush_queued`]): a run of small frames (a batch of stats) costs one system
    /// call per [`WS_WRITE_BUF_BYTES`] instead of one per frame (issue 18). The frame is copied (and
    /// masked) into the connection's write buffer, so `text` is untouched and free once this returns;
    /// what is queued already is written first when this one does not fit beside it, and a payload
    /// larger than the buffer is sent at once ([`Conn::send_text`]). Every other send writes what is
    /// queued first, so frames leave in the order they were given. Call [`Conn::flush_queued`] when
    /// the run ends.
    pub async fn queue_text(&mut self, text: &mut [u8]) -> Result<(), Error> {
        if text.len() > WS_WRITE_BUF_BYTES {
            return self.send_text(text).await;
        }
        if !self.fits_queued(text.len()) {
            self.flush_queued().await?;
        }
        let mask = self.next_mask();
        let mut header = [0u8; WS_FRAME_HEADER_MAX_BYTES];
        let n = frame::emit_header(&mut header, Opcode::Text, true, text.len(), mask);
        self.wbuf.extend_from_slice(&header[..n]);
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(text);
        frame::apply_mask(&mut self.wbuf[at..], mask, 0);
        Ok(())
    }

    /// Whether a text payload of `len` bytes fits in the write buffer beside what is queued (so
    /// [`Conn::queue_text`] writes nothing).
    pub fn fits_queued(&self, len: usize) -> bool {
        len <= WS_WRITE_BUF_BYTES
            && self.wbuf.len() + WS_FRAME_HEADER_MAX_BYTES + len
                <= WS_FRAME_HEADER_MAX_BYTES + WS_WRITE_BUF_BYTES
    }

    /// Writes the frames [`Conn::queue_text`] queued, in one write (nothing when none are queued).
    pub async fn flush_queued(&mut self) -> Result<(), Error> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // Taken out while written: a write that fails or is cancelled (a timeout) leaves nothing
        // queued, so no frame can go out twice or behind a partial one.
        let mut queued = core::mem::take(&mut self.wbuf);
        let result = self.io.write_all(&queued).await;
        queued.clear();
        self.wbuf = queued;
        result?;
        self.io.flush().await?;
        Ok(())
    }

    /// Sends a ping with `payload` (at most 125 bytes).
    pub async fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(Opcode::Ping, payload).await
    }

    /// Sends a close frame (RFC 6455 §5.5.1) and stops sending data.
    pub async fn send_close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        self.flush_queued().await?;
        self.closing = true;
        let mask = self.next_mask();
        let mut out = [0u8; WS_CONTROL_FRAME_MAX_BYTES];
        let n = frame::emit_close(&mut out, Some((code, reason)), mask)?;
        self.io.write_all(&out[..n]).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Gives back the stream (to shut it down).
    pub fn into_inner(self) -> S {
        self.io
    }

    async fn send_control(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), Error> {
        self.flush_queued().await?;
        let mask = self.next_mask();
        let mut out = [0u8; WS_CONTROL_FRAME_MAX_BYTES];
        let n = match opcode {
            Opcode::Ping => frame::emit_ping(&mut out, payload, mask)?,
            _ => frame::emit_pong(&mut out, payload, mask)?,
        };
        self.io.write_all(&out[..n]).await?;
        self.io.flush().await?;
        Ok(())
    }

    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        (x as u32).to_le_bytes()
    }
}

enum Which {
    Payload,
    Message,
}

enum Ready {
    Text(Which, std::ops::Range<usize>),
    Binary(usize),
    Ping(heapless::Vec<u8, 125>),
    Pong,
    Close(Option<u16>, String),
}

async fn with_deadline<T>(
    deadline: Instant,
    ms: u64,
    what: &'static str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Error> {
    let timeout = async {
        Timer::at(deadline).await;
        Err(Error::Timeout { what, ms })
    };
    smol::future::or(async { fut.await.map_err(Error::Io) }, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io;
    use std::task::Waker;

    /// A stream that records what is written, or never accepts a write (`stall`).
    struct Sink {
        written: Vec<u8>,
        writes: usize,
        stall: bool,
    }

    impl AsyncRead for Sink {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let me = self.get_mut();
            if me.stall {
                return Poll::Pending;
            }
            me.written.extend_from_slice(buf);
            me.writes += 1;
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn conn(stall: bool) -> Conn<Sink> {
        let sink = Sink {
            written: Vec::new(),
            writes: 0,
            stall,
        };
        Conn::new(sink, 0x9E37_79B9_7F4A_7C15)
    }

    /// The payload of one masked client text frame (RFC 6455 §5.2), unmasked.
    fn unmask(frame: &[u8]) -> Vec<u8> {
        assert_eq!(frame[0], 0x81, "FIN + text");
        assert!(frame[1] & 0x80 != 0, "client frames are masked");
        let (len, at) = match frame[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
            127 => (
                u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        let mask: [u8; 4] = frame[at..at + 4].try_into().unwrap();
        let mut payload = frame[at + 4..].to_vec();
        assert_eq!(payload.len(), len);
        frame::apply_mask(&mut payload, mask, 0);
        payload
    }

    #[test]
    fn text_frames_small_and_large_leave_the_payload_as_it_was() {
        for (len, writes) in [
            (0, 1),
            (300, 1),
            (WS_WRITE_BUF_BYTES, 1),
            (WS_WRITE_BUF_BYTES + 1, 2),
            (200_000, 2),
        ] {
            let original: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut text = original.clone();
            let mut c = conn(false);
            smol::block_on(c.send_text(&mut text)).unwrap();
            assert_eq!(
                text, original,
                "len {len}: the caller's payload is unmasked again"
            );
            assert_eq!(unmask(&c.io.written), original, "len {len}");
            assert_eq!(c.io.writes, writes, "len {len}");
            assert!(c.wbuf.capacity() <= WS_FRAME_HEADER_MAX_BYTES + WS_WRITE_BUF_BYTES + 64);
        }
    }

    /// Issue 18: queued frames go out together, in order, as whole frames, a write per full buffer.
    #[test]
    fn queued_frames_go_out_in_one_write_per_buffer_in_order() {
        let mut c = conn(false);
        let texts: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'a' + i; 400]).collect();
        smol::block_on(async {
            for t in &texts {
                let mut t = t.clone();
                c.queue_text(&mut t).await.unwrap();
            }
            // A large frame flushes what is queued before it, keeping the order.
            let mut big = vec![b'z'; WS_WRITE_BUF_BYTES + 1];
            c.queue_text(&mut big).await.unwrap();
            let mut last = b"last".to_vec();
            c.queue_text(&mut last).await.unwrap();
            c.flush_queued().await.unwrap();
            c.flush_queued().await.unwrap();
        });
        let mut want = texts.clone();
        want.push(vec![b'z'; WS_WRITE_BUF_BYTES + 1]);
        want.push(b"last".to_vec());
        let mut got = Vec::new();
        let mut rest = &c.io.written[..];
        while !rest.is_empty() {
            let (len, at) = match rest[1] & 0x7F {
                126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
                n => (usize::from(n), 2),
            };
            got.push(unmask(&rest[..at + 4 + len]));
            rest = &rest[at + 4 + len..];
        }
        assert_eq!(got, want);
        // 20 × 406 bytes fill two buffers (10 frames each), then the large frame's two writes and
        // the last frame's one; the second flush writes nothing.
        assert_eq!(c.io.writes, 2 + 2 + 1);
        assert!(c.wbuf.capacity() <= WS_FRAME_HEADER_MAX_BYTES + WS_WRITE_BUF_BYTES + 64);
    }

    #[test]
    fn a_cancelled_send_leaves_the_payload_as_it_was() {
        let original = vec![b'x'; 10_000];
        let mut text = original.clone();
        let mut c = conn(true);
        {
            let fut = c.send_text(&mut text);
            let mut fut = std::pin::pin!(fut);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(text, original);
    }
}
