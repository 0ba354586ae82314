//! Messages from frames (RFC 6455 §5.4 fragmentation, §5.5 control frames, §8.1 UTF-8). Read §5.4 first.
//!
//! [`Reassembler`] is a pure state machine: the connection parses a header with
//! [`super::frame::try_parse_header`], reads the payload, and hands both to [`Reassembler::push`], which
//! answers with at most one [`Event`]. It never reads, writes or allocates.
//!
//! Rules enforced (§5.4): a fragmented message starts with a text or binary frame without FIN and goes
//! on with continuation frames until one has FIN; control frames may come between fragments and are
//! answered at once; a text or binary frame inside an unfinished message, or a continuation frame
//! outside one, is an error. Text is checked as UTF-8 fragment by fragment, so a byte that can never
//! become valid fails at the fragment that carries it (§8.1, "fail fast"), and a sequence left open at
//! the end of the message fails with the last fragment.
//!
//! Storage and policy when full: the caller owns the reassembly buffer and passes the same one to every
//! call; its length is the message cap. A message that would outgrow it is refused with
//! [`Error::MessageTooLarge`] before a byte of the frame is copied, and [`Reassembler::check_header`]
//! lets the connection refuse it before it even reads the payload. An unfragmented data frame is not
//! copied: its event borrows the payload.
//!
//! After any error the connection must be failed (close with [`Error::close_code`]); the reassembler is
//! reset to idle so nothing of the broken message can leak into a later one.
use super::frame::{check_control, parse_close, Close, Header, Opcode};
use super::Error;

/// What one frame amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message, valid UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A ping; answer with a pong carrying the same payload (§5.5.2, §5.5.3).
    Ping(&'a [u8]),
    /// A pong (an answer to our ping, or unsolicited, which §5.5.3 allows and asks nothing of).
    Pong(&'a [u8]),
    /// A close frame with a valid code and UTF-8 reason; answer with a close and stop sending (§5.5.1).
    Close(Close<'a>),
}

/// The kind of the fragmented message in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Reassembles fragmented messages; see the module doc for the rules and the buffer contract.
#[derive(Debug, Clone, Default)]
pub struct Reassembler {
    /// `Some` while a fragmented message is open.
    open: Option<Kind>,
    /// Bytes of the open message in the caller's buffer, `buf[..len]`.
    len: usize,
    /// For text: `buf[..utf8_checked]` is valid UTF-8 and only an incomplete sequence may follow it.
    utf8_checked: usize,
}

impl Reassembler {
    /// An idle reassembler: no message open.
    pub const fn new() -> Reassembler {
        Reassembler {
            open: None,
            len: 0,
            utf8_checked: 0,
        }
    }

    /// Whether a fragmented message has started and not yet received its final fragment.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Bytes of the open message buffered so far (0 when idle).
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// Drops any open message and returns to idle.
    pub fn reset(&mut self) {
        *self = Reassembler::new();
    }

    /// Checks a frame header against the message state and the cap `message_max` (the length of the
    /// buffer the caller will pass to [`Reassembler::push`]) without changing anything, so the
    /// connection can refuse a frame before reading its payload. [`Reassembler::push`] makes the same
    /// checks.
    pub fn check_header(&self, header: &Header, message_max: usize) -> Result<(), Error> {
        self.check(header.opcode, header.fin, header.payload_len, message_max)
    }

    /// Feeds one frame: `header` as parsed, `payload` the frame's whole payload (unmasked; its length is
    /// what counts, `header.payload_len` is not consulted). `buf` is the reassembly buffer; pass the same
    /// one on every call, and do not touch `buf[..self.buffered()]` between calls.
    ///
    /// Answers `Ok(Some(event))` for a whole message or a control frame, `Ok(None)` when a fragment was
    /// stored and the message is not finished, and `Err` when the frame breaks §5.4, §5.5, §8.1 or the
    /// cap (the reassembler is then reset). The event borrows `buf` or `payload`.
    pub fn push<'a>(
        &mut self,
        buf: &'a mut [u8],
        header: &Header,
        payload: &'a [u8],
    ) -> Result<Option<Event<'a>>, Error> {
        let result = self.step(buf, header, payload);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn check(&self, opcode: Opcode, fin: bool, len: usize, max: usize) -> Result<(), Error> {
        check_control(opcode, fin, Some(len as u64))?;
        match opcode {
            Opcode::Close | Opcode::Ping | Opcode::Pong => Ok(()),
            Opcode::Continuation => {
                if self.open.is_none() {
                    return Err(Error::UnexpectedContinuation);
                }
                // In u64, saturating, so that a huge announced length next to a full buffer cannot overflow.
                let total = (self.len as u64).saturating_add(len as u64);
                if total > max as u64 {
                    return Err(Error::MessageTooLarge { len: total, max });
                }
                Ok(())
            }
            Opcode::Text | Opcode::Binary => {
                if self.open.is_some() {
                    return Err(Error::UnfinishedMessage {
                        opcode: opcode.bits(),
                    });
                }
                if len > max {
                    return Err(Error::MessageTooLarge {
                        len: len as u64,
                        max,
                    });
                }
                Ok(())
            }
        }
    }

    fn step<'a>(
        &mut self,
        buf: &'a mut [u8],
        header: &Header,
        payload: &'a [u8],
    ) -> Result<Option<Event<'a>>, Error> {
        self.check(header.opcode, header.fin, payload.len(), buf.len())?;
        let kind = match header.opcode {
            Opcode::Ping => return Ok(Some(Event::Ping(payload))),
            Opcode::Pong => return Ok(Some(Event::Pong(payload))),
            Opcode::Close => return parse_close(payload).map(|close| Some(Event::Close(close))),
            Opcode::Text => Kind::Text,
            Opcode::Binary => Kind::Binary,
            Opcode::Continuation => {
                self.append(buf, payload, header.fin)?;
                if !header.fin {
                    return Ok(None);
                }
                let (kind, len) = (self.open, self.len);
                self.reset();
                let buf: &'a [u8] = buf;
                // check() made sure a message was open and append() kept len within buf.
                let body = buf.get(..len).ok_or(Error::MessageTooLarge {
                    len: len as u64,
                    max: buf.len(),
                })?;
                return match kind {
                    Some(Kind::Text) => text(body).map(|s| Some(Event::Text(s))),
                    _ => Ok(Some(Event::Binary(body))),
                };
            }
        };
        if header.fin {
            // A whole message in one frame: no copy, the event borrows the payload.
            return match kind {
                Kind::Text => text(payload).map(|s| Some(Event::Text(s))),
                Kind::Binary => Ok(Some(Event::Binary(payload))),
            };
        }
        self.open = Some(kind);
        self.append(buf, payload, false)?;
        Ok(None)
    }

    /// Copies a fragment behind the open message; for a text message that is not finishing, checks the
    /// new bytes as UTF-8 so an impossible byte fails now (the final fragment is checked whole).
    fn append(&mut self, buf: &mut [u8], payload: &[u8], fin: bool) -> Result<(), Error> {
        let end = self.len + payload.len();
        let max = buf.len();
        // check() compared end with buf.len(); `get_mut` keeps even a caller who swapped buffers safe.
        let dst = buf.get_mut(self.len..end).ok_or(Error::MessageTooLarge {
            len: end as u64,
            max,
        })?;
        dst.copy_from_slice(payload);
        self.len = end;
        if self.open == Some(Kind::Text) && !fin {
            let tail = buf.get(self.utf8_checked..end).unwrap_or_default();
            match std::str::from_utf8(tail) {
                Ok(_) => self.utf8_checked = end,
                Err(e) => {
                    let at = self.utf8_checked + e.valid_up_to();
                    if e.error_len().is_some() {
                        return Err(Error::InvalidUtf8 {
                            what: "text message",
                            at,
                        });
                    }
                    // An incomplete sequence at the end: the next fragment may complete it.
                    self.utf8_checked = at;
                }
            }
        }
        Ok(())
    }
}

fn text(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        what: "text message",
        at: e.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One frame of a test sequence: FIN, opcode, payload.
    type Frame = (bool, Opcode, Vec<u8>);

    fn f(fin: bool, opcode: Opcode, payload: &[u8]) -> Frame {
        (fin, opcode, payload.to_vec())
    }

    /// A short, stable description of one push result.
    fn describe(result: &Result<Option<Event<'_>>, Error>) -> String {
        match result {
            Ok(None) => "-".into(),
            Ok(Some(Event::Text(s))) => format!("text:{s}"),
            Ok(Some(Event::Binary(b))) => format!("binary:{}", b.len()),
            Ok(Some(Event::Ping(p))) => format!("ping:{}", String::from_utf8_lossy(p)),
            Ok(Some(Event::Pong(p))) => format!("pong:{}", String::from_utf8_lossy(p)),
            Ok(Some(Event::Close(c))) => format!("close:{:?}:{}", c.code, c.reason),
            Err(e) => format!("err:{e}"),
        }
    }

    /// Feeds `frames` to a fresh reassembler with a `cap`-byte buffer; one description per frame, and
    /// the first error ends the run. Also checks that `check_header` predicts every error `push` makes
    /// from the header alone.
    fn run(frames: &[Frame], cap: usize) -> Vec<String> {
        let mut buf = vec![0u8; cap];
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        for (fin, opcode, payload) in frames {
            let header = Header {
                fin: *fin,
                opcode: *opcode,
                payload_len: payload.len(),
            };
            let early = r.check_header(&header, cap);
            let result = r.push(&mut buf, &header, payload);
            if let Err(e) = &early {
                assert_eq!(
                    describe(&result),
                    format!("err:{e}"),
                    "check_header disagrees with push"
                );
            }
            let failed = result.is_err();
            out.push(describe(&result));
            if failed {
                assert!(!r.is_open() && r.buffered() == 0, "reset after an error");
                break;
            }
        }
        out
    }

    #[test]
    fn reassembly_table() {
        use Opcode::{Binary as B, Close as C, Continuation as K, Ping as P, Pong as O, Text as T};
        let cases: Vec<(&str, Vec<Frame>, usize, Vec<&str>)> = vec![
            (
                "single text",
                vec![f(true, T, b"hello")],
                16,
                vec!["text:hello"],
            ),
            ("empty text", vec![f(true, T, b"")], 16, vec!["text:"]),
            (
                "single binary",
                vec![f(true, B, &[0, 159, 146, 150])],
                16,
                vec!["binary:4"],
            ),
            (
                "three text fragments",
                vec![f(false, T, b"he"), f(false, K, b"ll"), f(true, K, b"o")],
                16,
                vec!["-", "-", "text:hello"],
            ),
            (
                "empty fragments",
                vec![f(false, T, b""), f(false, K, b""), f(true, K, b"")],
                16,
                vec!["-", "-", "text:"],
            ),
            (
                "binary fragments",
                vec![f(false, B, &[1, 2]), f(true, K, &[3])],
                16,
                vec!["-", "binary:3"],
            ),
            (
                "ping between fragments",
                vec![f(false, T, b"ab"), f(true, P, b"p1"), f(true, K, b"c")],
                16,
                vec!["-", "ping:p1", "text:abc"],
            ),
            (
                "pong and ping between fragments",
                vec![
                    f(false, T, b"a"),
                    f(true, O, b""),
                    f(false, K, b"b"),
                    f(true, P, b""),
                    f(true, K, b"c"),
                ],
                16,
                vec!["-", "pong:", "-", "ping:", "text:abc"],
            ),
            (
                "close between fragments",
                vec![f(false, T, b"a"), f(true, C, b"\x03\xe8")],
                16,
                vec!["-", "close:Some(1000):"],
            ),
            (
                "messages after each other",
                vec![
                    f(true, T, b"a"),
                    f(false, B, b"b"),
                    f(true, K, b"c"),
                    f(true, T, b"d"),
                ],
                16,
                vec!["text:a", "-", "binary:2", "text:d"],
            ),
            (
                "lone continuation",
                vec![f(true, K, b"x")],
                16,
                vec!["err:continuation frame without a fragmented message in progress"],
            ),
            (
                "continuation after a finished message",
                vec![f(false, T, b"a"), f(true, K, b"b"), f(true, K, b"c")],
                16,
                vec![
                    "-",
                    "text:ab",
                    "err:continuation frame without a fragmented message in progress",
                ],
            ),
            (
                "text inside a fragmented message",
                vec![f(false, T, b"a"), f(true, T, b"b")],
                16,
                vec![
                    "-",
                    "err:data frame with opcode 0x1 while a fragmented message is unfinished",
                ],
            ),
            (
                "binary inside a fragmented text",
                vec![f(false, T, b"a"), f(false, B, b"b")],
                16,
                vec![
                    "-",
                    "err:data frame with opcode 0x2 while a fragmented message is unfinished",
                ],
            ),
            (
                "message at the cap",
                vec![f(false, T, b"abcd"), f(true, K, b"efgh")],
                8,
                vec!["-", "text:abcdefgh"],
            ),
            (
                "message over the cap",
                vec![f(false, T, b"abcd"), f(true, K, b"efghi")],
                8,
                vec!["-", "err:message of 9 bytes exceeds the cap of 8 bytes"],
            ),
            (
                "single frame at the cap",
                vec![f(true, B, &[0; 8])],
                8,
                vec!["binary:8"],
            ),
            (
                "single frame over the cap",
                vec![f(true, B, &[0; 9])],
                8,
                vec!["err:message of 9 bytes exceeds the cap of 8 bytes"],
            ),
            (
                "first fragment over the cap",
                vec![f(false, B, &[0; 9])],
                8,
                vec!["err:message of 9 bytes exceeds the cap of 8 bytes"],
            ),
            (
                "control frames need no buffer",
                vec![f(true, P, b"ping"), f(true, O, b"")],
                0,
                vec!["ping:ping", "pong:"],
            ),
            (
                "invalid utf-8 single frame",
                vec![f(true, T, b"ok\xff")],
                16,
                vec!["err:text message is not utf-8 at byte 2"],
            ),
            (
                "invalid utf-8 fails fast in the first fragment",
                vec![f(false, T, b"a\xc0\xafb"), f(true, K, b"c")],
                16,
                vec!["err:text message is not utf-8 at byte 1"],
            ),
            (
                "invalid utf-8 in a middle fragment",
                vec![
                    f(false, T, b"ab"),
                    f(false, K, b"\xed\xa0\x80"),
                    f(true, K, b"c"),
                ],
                16,
                vec!["-", "err:text message is not utf-8 at byte 2"],
            ),
            (
                "code point split across fragments",
                vec![
                    f(false, T, b"\xe2"),
                    f(false, K, b"\x82"),
                    f(true, K, b"\xac"),
                ],
                16,
                vec!["-", "-", "text:€"],
            ),
            (
                "incomplete code point at the end",
                vec![f(false, T, b"a\xe2\x82"), f(true, K, b"")],
                16,
                vec!["-", "err:text message is not utf-8 at byte 1"],
            ),
            (
                "invalid utf-8 in binary is fine",
                vec![f(true, B, b"\xff\xfe")],
                16,
                vec!["binary:2"],
            ),
            (
                "fragmented ping",
                vec![f(false, P, b"")],
                16,
                vec!["err:control frame with opcode 0x9 is fragmented (fin not set)"],
            ),
            (
                "oversize pong",
                vec![f(true, O, &[0; 126])],
                200,
                vec!["err:control frame payload of 126 bytes exceeds 125 bytes"],
            ),
            (
                "close with bad code",
                vec![f(true, C, b"\x03\xed")],
                16,
                vec!["err:close status code 1005 is not allowed"],
            ),
            (
                "close with one byte",
                vec![f(true, C, b"\x03")],
                16,
                vec!["err:close frame payload of 1 byte has no status code"],
            ),
            (
                "empty close",
                vec![f(true, C, b"")],
                16,
                vec!["close:None:"],
            ),
        ];
        for (name, frames, cap, expect) in cases {
            assert_eq!(run(&frames, cap), expect, "{name}");
        }
    }

    /// A text message cut into two or three fragments at every pair of byte indices gives the same
    /// event as the whole message; an invalid one gives the same error offset wherever it is cut.
    #[test]
    fn every_fragmentation_of_a_message_agrees() {
        let messages: [&[u8]; 4] = [
            "{\"type\":\"command\",\"ok\":\"é€𝄞\"}".as_bytes(),
            b"plain ascii",
            b"bad \xf0\x9f\x98 tail",
            b"ends open \xf0\x9f",
        ];
        for msg in messages {
            let whole = run(&[f(true, Opcode::Text, msg)], 64);
            for i in 0..=msg.len() {
                for j in i..=msg.len() {
                    let frames = [
                        f(false, Opcode::Text, &msg[..i]),
                        f(false, Opcode::Continuation, &msg[i..j]),
                        f(true, Opcode::Continuation, &msg[j..]),
                    ];
                    let got = run(&frames, 64);
                    assert_eq!(got.last(), whole.last(), "{msg:?} cut at {i},{j}");
                    assert!(got[..got.len() - 1].iter().all(|d| d == "-"), "{got:?}");
                }
            }
        }
    }

    #[test]
    fn state_accessors_follow_the_message() {
        let mut buf = [0u8; 8];
        let mut r = Reassembler::new();
        assert!(!r.is_open());
        let first = Header {
            fin: false,
            opcode: Opcode::Binary,
            payload_len: 3,
        };
        assert!(matches!(r.push(&mut buf, &first, b"abc"), Ok(None)));
        assert!(r.is_open());
        assert_eq!(r.buffered(), 3);
        // A 6-byte continuation would pass 8 bytes: refused by the header check alone.
        let next = Header {
            fin: true,
            opcode: Opcode::Continuation,
            payload_len: 6,
        };
        assert!(matches!(
            r.check_header(&next, buf.len()),
            Err(Error::MessageTooLarge { len: 9, max: 8 })
        ));
        assert_eq!(r.buffered(), 3, "check_header changes nothing");
        r.reset();
        assert!(!r.is_open());
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn a_huge_announced_length_does_not_overflow() {
        let mut buf = [0u8; 4];
        let mut r = Reassembler::new();
        let first = Header {
            fin: false,
            opcode: Opcode::Binary,
            payload_len: 4,
        };
        assert!(matches!(r.push(&mut buf, &first, b"abcd"), Ok(None)));
        let next = Header {
            fin: true,
            opcode: Opcode::Continuation,
            payload_len: usize::MAX,
        };
        assert!(matches!(
            r.check_header(&next, 4),
            Err(Error::MessageTooLarge { max: 4, .. })
        ));
    }
}
