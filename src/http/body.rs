//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally from borrowed bytes. No I/O, no
//! buffering: the decoder walks the input byte by byte through a small state machine, so a size line,
//! a CRLF or a trailer may be split across reads anywhere.
//!
//! Each call answers one of three things: some data (a range of the input), "need more bytes" (all
//! input consumed), or the end of the body. Size lines and trailer lines longer than
//! `CHUNK_LINE_MAX_BYTES` and sizes that overflow `u64` are errors. A bare LF is accepted where CRLF
//! is due (RFC 9112 §2.2 allows a recipient to).
use super::Error;
use crate::limits::CHUNK_LINE_MAX_BYTES;
use std::ops::Range;

/// What [`Chunked::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Body bytes: this range of the input given to `next`.
    Data(Range<usize>),
    /// The input is used up; call again with more.
    NeedMore,
    /// The last chunk and the trailer section have been read; the body is over.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Reading hex digits.
    Size,
    /// After the size: whitespace or `;extension` up to the line end.
    Extension,
    /// Saw CR at the end of the size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After the data: expecting CR or LF.
    DataEnd,
    /// After the data and CR: expecting LF.
    DataEndLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Saw CR of the final empty line.
    FinalLf,
    /// The body is over.
    Done,
}

/// The decoder state for one chunked body.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    /// Chunk size while reading it, then the data bytes left in the chunk.
    remaining: u64,
    /// Bytes of the current size or trailer line, for the line cap.
    line_len: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunked {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Chunked {
            state: State::SizeStart,
            remaining: 0,
            line_len: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes from the start of `input`. Returns how many were consumed and what they held.
    /// On `NeedMore` every byte was consumed; on `Data(r)` the consumed count is `r.end`; on `Done`
    /// the bytes after the consumed count belong to whatever follows the body.
    pub fn next(&mut self, input: &[u8]) -> Result<(usize, Chunk), Error> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Data => {
                    let avail = input.len() - i;
                    let n = if self.remaining < avail as u64 {
                        self.remaining as usize
                    } else {
                        avail
                    };
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataEnd;
                    }
                    return Ok((i + n, Chunk::Data(i..i + n)));
                }
                State::SizeStart | State::Size => {
                    self.count_line_byte()?;
                    if let Some(d) = hex(b) {
                        self.remaining = self
                            .remaining
                            .checked_mul(16)
                            .and_then(|r| r.checked_add(u64::from(d)))
                            .ok_or(Error::BadChunk("chunk size overflows 64 bits"))?;
                        self.state = State::Size;
                    } else if self.state == State::SizeStart {
                        return Err(Error::BadChunk("chunk size is not hexadecimal"));
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::Extension;
                    } else if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' {
                        self.end_size_line();
                    } else {
                        return Err(Error::BadChunk("chunk size is not hexadecimal"));
                    }
                }
                State::Extension => {
                    self.count_line_byte()?;
                    if b == b'\n' {
                        self.end_size_line();
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(Error::BadChunk("CR without LF after chunk size"));
                    }
                    self.end_size_line();
                }
                State::DataEnd => match b {
                    b'\r' => self.state = State::DataEndLf,
                    b'\n' => self.state = State::SizeStart,
                    _ => return Err(Error::BadChunk("chunk data longer than its size")),
                },
                State::DataEndLf => {
                    if b != b'\n' {
                        return Err(Error::BadChunk("CR without LF after chunk data"));
                    }
                    self.state = State::SizeStart;
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::FinalLf,
                    b'\n' => {
                        self.state = State::Done;
                        return Ok((i + 1, Chunk::Done));
                    }
                    _ => {
                        self.line_len = 0;
                        self.count_line_byte()?;
                        self.state = State::Trailer;
                    }
                },
                State::Trailer => {
                    self.count_line_byte()?;
                    if b == b'\n' {
                        self.state = State::TrailerStart;
                    }
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(Error::BadChunk("CR without LF at the end of the body"));
                    }
                    self.state = State::Done;
                    return Ok((i + 1, Chunk::Done));
                }
                State::Done => return Ok((i, Chunk::Done)),
            }
            i += 1;
        }
        if self.state == State::Done {
            return Ok((i, Chunk::Done));
        }
        Ok((i, Chunk::NeedMore))
    }

    fn count_line_byte(&mut self) -> Result<(), Error> {
        self.line_len += 1;
        if self.line_len > CHUNK_LINE_MAX_BYTES {
            return Err(Error::BadChunk(
                "chunk size or trailer line longer than CHUNK_LINE_MAX_BYTES",
            ));
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        self.line_len = 0;
        self.state = if self.remaining == 0 {
            State::TrailerStart
        } else {
            State::Data
        };
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one after another (as separate reads) and returns the body, or the first error.
    /// Leftover bytes after `Done` are returned too.
    fn decode(parts: &[&[u8]]) -> Result<(Vec<u8>, bool, Vec<u8>), Error> {
        let mut dec = Chunked::new();
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for part in parts {
            pending.extend_from_slice(part);
            loop {
                let (n, c) = dec.next(&pending)?;
                match c {
                    Chunk::Data(r) => {
                        body.extend_from_slice(&pending[r]);
                        pending.drain(..n);
                    }
                    Chunk::NeedMore => {
                        assert_eq!(n, pending.len(), "NeedMore consumes everything");
                        pending.clear();
                        break;
                    }
                    Chunk::Done => {
                        pending.drain(..n);
                        return Ok((body, true, pending));
                    }
                }
            }
        }
        Ok((body, false, pending))
    }

    // (input, expected body, complete)
    const CASES: &[(&[u8], &[u8], bool)] = &[
        (b"0\r\n\r\n", b"", true),
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello", true),
        (
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
            true,
        ),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", true),
        (
            b"a;name=value\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            true,
        ),
        (
            b"3 \r\nabc\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n",
            b"abc",
            true,
        ),
        (b"3\nabc\n0\n\n", b"abc", true),
        (b"000003\r\nabc\r\n0000\r\n\r\n", b"abc", true),
        (b"5\r\nhel", b"hel", false),
        (b"5\r\nhello\r\n", b"hello", false),
        (b"5\r\nhello\r\n0\r\n", b"", false), // body below is checked separately
    ];

    #[test]
    fn table() {
        for (input, expected, complete) in CASES {
            let (body, done, rest) = decode(&[input]).unwrap();
            if *complete {
                assert_eq!(&body[..], *expected, "{}", String::from_utf8_lossy(input));
            }
            assert_eq!(done, *complete, "{}", String::from_utf8_lossy(input));
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn every_split_point_and_one_byte_reads_give_the_same_body() {
        for (input, _, _) in CASES {
            let whole = decode(&[input]).unwrap();
            for cut in 0..=input.len() {
                let (a, b) = input.split_at(cut);
                assert_eq!(decode(&[a, b]).unwrap(), whole, "split at {cut}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(decode(&bytes).unwrap(), whole);
        }
    }

    #[test]
    fn bytes_after_the_body_are_left_for_the_next_response() {
        let (body, done, rest) = decode(&[b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"]).unwrap();
        assert_eq!(
            (&body[..], done, &rest[..]),
            (&b"ok"[..], true, &b"HTTP/1.1 200 OK\r\n"[..])
        );
    }

    #[test]
    fn errors() {
        let cases: &[&[u8]] = &[
            b"x\r\n",
            b"\r\n",
            b"5\rx",
            b"2\r\nabc\r\n",
            b"2\r\nab\rx",
            b"0\r\n\rx",
            b"11111111111111111\r\n",
            b"-1\r\n",
        ];
        for input in cases {
            assert!(
                decode(&[input]).is_err(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let long_ext = format!("1;{}\r\n", "e".repeat(CHUNK_LINE_MAX_BYTES));
        let err = decode(&[long_ext.as_bytes()]).unwrap_err();
        assert!(err.to_string().contains("CHUNK_LINE_MAX_BYTES"));
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "t".repeat(CHUNK_LINE_MAX_BYTES));
        assert!(decode(&[long_trailer.as_bytes()]).is_err());
    }

    #[test]
    fn a_huge_chunk_streams_without_buffering() {
        let mut dec = Chunked::new();
        let (n, c) = dec.next(b"ffffffffffffffff\r\n").unwrap();
        assert_eq!((n, c), (18, Chunk::NeedMore));
        let data = [7u8; 1000];
        let (n, c) = dec.next(&data).unwrap();
        assert_eq!((n, c), (1000, Chunk::Data(0..1000)));
        assert!(!dec.is_done());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..3000 {
            let mut buf = Vec::new();
            for _ in 0..(x % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                const ALPHABET: &[u8] = b"0123456789abcdefXYZ;\r\n \t";
                buf.push(ALPHABET[(x % ALPHABET.len() as u64) as usize]);
            }
            let _ = decode(&[&buf]);
        }
    }
}
