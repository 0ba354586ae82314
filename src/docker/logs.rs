//! Container logs for DockMon's `get_logs` (spec 3.4). Read this first: without a TTY, the body of
//! `GET /containers/{id}/logs` is Docker's multiplexed stream (Engine API, "Attach to a container",
//! stream format): frames of an 8-byte header (stream type: 0 stdin, 1 stdout, 2 stderr, 3 an error of
//! the daemon; three bytes of padding; the payload length as a big-endian u32) and the payload. A TTY
//! container's logs are the raw bytes. With `timestamps=1` every log message starts with Docker's
//! RFC 3339 timestamp with nine fraction digits and a space.
//!
//! - [`Demux`]: cuts the multiplexed stream into pieces of one stream. Pure and incremental: fed any
//!   slices, a header may be split anywhere. Like moby's `stdcopy`, it ignores the padding bytes; an
//!   unknown stream type is an error (the stream can't be resynchronised after it).
//! - [`Tail`]: keeps the newest whole lines of stdout and stderr within a byte cap and gives them back
//!   as DockMon wants them: all stdout lines, then all stderr lines, not interleaved (spec 3.4).
//! - [`Reply`]: the two together, as the logs call uses them; [`Client::logs`]: the call.
//!
//! Policy when full (`Tail`): the cap counts the bytes kept plus a fixed cost per stored line
//! (`MARK_BYTES`). Before bytes are added the oldest lines are dropped, whole, across both streams in
//! the order they were stored, until the new bytes fit. A line is stored when it ends; one longer than
//! `piece` is stored piece by piece as it arrives, and when its oldest piece has to go the whole line
//! goes, including the part still arriving, so a single line longer than the cap is left out entirely.
//! The two stream buffers' capacities stay within 1.5 times the cap together (see `Tail::reserve`).
//! Invalid UTF-8 becomes U+FFFD in the text (json-file logs already arrive that way: Docker stores them
//! as JSON strings); each replaced byte grows the text by two bytes past what the cap counted.
use super::{Client, Error};
use crate::http::request;
use crate::limits::*;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;

// ---- Demultiplexing -------------------------------------------------------------------------------

/// Length of a frame header of the multiplexed stream.
const HEADER_BYTES: usize = 8;

/// The stream a frame belongs to (the header's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// 0: only in attach streams; written to stdout, as moby's `stdcopy` does.
    Stdin,
    /// 1.
    Stdout,
    /// 2.
    Stderr,
    /// 3: an error of the daemon sent in-band (moby `WriteLogStream`: "Error grabbing logs: …").
    System,
}

impl Source {
    fn from_byte(b: u8) -> Option<Source> {
        match b {
            0 => Some(Source::Stdin),
            1 => Some(Source::Stdout),
            2 => Some(Source::Stderr),
            3 => Some(Source::System),
            _ => None,
        }
    }
}

/// What [`Demux::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Payload bytes of one stream: this range of the input given to `next`.
    Data(Source, Range<usize>),
    /// The input is used up; call again with more.
    NeedMore,
}

/// A frame header with a stream type other than 0-3. The stream can't be read past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStream(pub u8);

/// The decoder state of one multiplexed stream.
#[derive(Debug, Clone)]
pub struct Demux {
    header: [u8; HEADER_BYTES],
    /// Header bytes collected so far (a header may be split across inputs).
    have: usize,
    /// Payload bytes left in the current frame.
    remaining: u32,
    source: Source,
}

impl Default for Demux {
    fn default() -> Self {
        Self::new()
    }
}

impl Demux {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Demux {
            header: [0; HEADER_BYTES],
            have: 0,
            remaining: 0,
            source: Source::Stdout,
        }
    }

    /// Consumes bytes from the start of `input` and returns how many, with what they held. On
    /// `NeedMore` every byte was consumed; on `Data(_, r)` the consumed count is `r.end`. Frames of
    /// length 0 are passed over. After an error the decoder must not be used again.
    pub fn next(&mut self, input: &[u8]) -> Result<(usize, Piece), UnknownStream> {
        let mut i = 0;
        loop {
            if self.remaining > 0 {
                if i == input.len() {
                    return Ok((i, Piece::NeedMore));
                }
                let n = (input.len() - i).min(self.remaining as usize);
                // n <= remaining, which is a u32.
                self.remaining -= n as u32;
                return Ok((i + n, Piece::Data(self.source, i..i + n)));
            }
            while self.have < HEADER_BYTES && i < input.len() {
                self.header[self.have] = input[i];
                self.have += 1;
                i += 1;
            }
            if self.have < HEADER_BYTES {
                return Ok((i, Piece::NeedMore));
            }
            self.have = 0;
            self.source = Source::from_byte(self.header[0]).ok_or(UnknownStream(self.header[0]))?;
            let [_, _, _, _, a, b, c, d] = self.header;
            self.remaining = u32::from_be_bytes([a, b, c, d]);
        }
    }

    /// True between frames: the stream may end here. False inside a header or a payload.
    pub fn is_between_frames(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }

    /// True when the last piece returned ended its frame.
    fn frame_done(&self) -> bool {
        self.remaining == 0
    }
}

// ---- Keeping the newest lines ------------------------------------------------------------------------

/// Where kept bytes go: index 0 is stdout (and a TTY's raw stream), 1 is stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Listed first in the reply.
    Stdout = 0,
    /// Listed after every stdout line.
    Stderr = 1,
}

/// One stored line or piece of a line, in the order they were completed.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Bytes of it, at most `piece` (so it fits a u32).
    len: u32,
    out: Out,
    /// It ends with `\n` (else it is a piece of a longer line, or of one still arriving).
    ended: bool,
    /// Its line was dropped while it was not the oldest: its bytes are gone, the mark waits its turn.
    dead: bool,
}

/// What the cap charges for each stored line or piece: the bookkeeping it costs.
pub const MARK_BYTES: usize = std::mem::size_of::<Mark>();

/// The newest whole lines of stdout and stderr within a byte cap. Pure. See the module doc for the
/// policy when full.
#[derive(Debug)]
pub struct Tail {
    bytes: [VecDeque<u8>; 2],
    /// Bytes at the back of `bytes[s]` not yet covered by a mark: the line still arriving (< `piece`).
    open: [usize; 2],
    /// The line now arriving on stream `s` was dropped: discard up to and including its `\n`.
    skip: [bool; 2],
    marks: VecDeque<Mark>,
    /// Bytes in `bytes` plus `MARK_BYTES` per mark: never above `cap` after a push.
    total: usize,
    cap: usize,
    piece: usize,
    dropped_lines: usize,
}

impl Tail {
    /// Keeps at most `cap` bytes (counted as in the module doc); lines longer than `piece` are stored
    /// in pieces. `piece` is lowered to a quarter of the cap, so that the two open lines always fit.
    pub fn new(cap: usize, piece: usize) -> Self {
        Tail {
            bytes: [VecDeque::new(), VecDeque::new()],
            open: [0; 2],
            skip: [false; 2],
            marks: VecDeque::new(),
            total: 0,
            cap,
            piece: piece.min(cap / 4).clamp(1, u32::MAX as usize),
            dropped_lines: 0,
        }
    }

    /// Adds bytes of one stream, dropping the oldest lines as needed.
    pub fn push(&mut self, out: Out, mut input: &[u8]) {
        let s = out as usize;
        while !input.is_empty() {
            if self.skip[s] {
                match input.iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        self.skip[s] = false;
                        input = &input[p + 1..];
                    }
                    None => return,
                }
                continue;
            }
            let room = self.piece - self.open[s];
            let window = &input[..input.len().min(room)];
            let (take, ended) = match window.iter().position(|&b| b == b'\n') {
                Some(p) => (p + 1, true),
                None => (window.len(), false),
            };
            let marks = ended || self.open[s] + take == self.piece;
            let add = take + if marks { MARK_BYTES } else { 0 };
            let mut dropped = false;
            while self.total + add > self.cap && self.drop_oldest() {
                dropped = true;
            }
            if dropped && self.skip[s] {
                // The line these bytes continue was among those dropped.
                continue;
            }
            self.reserve(s, take);
            self.bytes[s].extend(&input[..take]);
            self.open[s] += take;
            self.total += take;
            if marks {
                self.marks.push_back(Mark {
                    // open <= piece <= u32::MAX (see `new`).
                    len: self.open[s] as u32,
                    out,
                    ended,
                    dead: false,
                });
                self.open[s] = 0;
                self.total += MARK_BYTES;
            }
            input = &input[take..];
        }
    }

    /// Whole lines dropped so far to stay within the cap.
    pub fn dropped_lines(&self) -> usize {
        self.dropped_lines
    }

    /// The kept text: every stdout byte, then every stderr byte, invalid UTF-8 replaced.
    pub fn finish(self, text: &mut String) {
        let [stdout, stderr] = self.bytes;
        let mut all = Vec::with_capacity(stdout.len() + stderr.len());
        for stream in [stdout, stderr] {
            let (a, b) = stream.as_slices();
            all.extend_from_slice(a);
            all.extend_from_slice(b);
        }
        *text = match String::from_utf8(all) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
    }

    /// Drops the oldest line (all its pieces). False when there is nothing to drop.
    fn drop_oldest(&mut self) -> bool {
        let Some(mark) = self.marks.pop_front() else {
            return false;
        };
        self.total -= MARK_BYTES;
        if mark.dead {
            return true;
        }
        let s = mark.out as usize;
        self.forget(s, mark.len as usize);
        self.dropped_lines += 1;
        if mark.ended {
            return true;
        }
        // A piece: the rest of its line follows in this stream, in later marks or still open.
        for later in self.marks.iter_mut() {
            if later.out as usize != s || later.dead {
                continue;
            }
            let (len, ended) = (later.len as usize, later.ended);
            later.dead = true;
            later.len = 0;
            // Its bytes are now the front of the stream (earlier marks of it are gone).
            self.bytes[s].drain(..len);
            self.total -= len;
            if ended {
                return true;
            }
        }
        let open = self.open[s];
        self.forget(s, open);
        self.open[s] = 0;
        self.skip[s] = true;
        true
    }

    fn forget(&mut self, s: usize, len: usize) {
        self.bytes[s].drain(..len);
        self.total -= len;
    }

    /// Makes room in stream `s` for `more` bytes that already fit the cap. A deque's own doubling
    /// could give each stream twice the cap; here the two capacities together stay within 1.5 times
    /// the cap: when the doubled buffer would pass that, the other stream gives back its spare
    /// capacity beyond a quarter of the cap. The quarter of slack left on both sides makes that rare
    /// (at least a quarter of the cap of new bytes between two such reallocations), so a cap full of
    /// alternating stdout and stderr lines is not copied once per line.
    fn reserve(&mut self, s: usize, more: usize) {
        let need = self.bytes[s].len() + more;
        if need <= self.bytes[s].capacity() {
            return;
        }
        let limit = self.cap + self.cap / 2;
        let doubled = (self.bytes[s].capacity() * 2).max(need);
        let other = &mut self.bytes[1 - s];
        if other.capacity() + doubled > limit {
            other.shrink_to(other.len() + self.cap / 4);
        }
        // need + other's length fit the cap, and other keeps at most a quarter more: within limit.
        let want = doubled
            .min(limit.saturating_sub(other.capacity()))
            .max(need);
        self.bytes[s].reserve_exact(want - self.bytes[s].len());
    }
}

// ---- A reply being assembled -----------------------------------------------------------------------

/// Why a logs body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// A frame header named a stream type other than 0-3 (a TTY container read as multiplexed?).
    UnknownStream(u8),
    /// The daemon sent an error in-band (stream type 3); its text, cut to `ERROR_BODY_MAX_BYTES`.
    Daemon(String),
    /// The body ended inside a frame header or payload.
    MidFrame,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::UnknownStream(t) => {
                write!(f, "multiplexed log stream has unknown stream type {t}")
            }
            // moby stdcopy's wording.
            Broken::Daemon(text) => write!(f, "error from daemon in stream: {}", text.trim()),
            Broken::MidFrame => write!(f, "log stream ended in the middle of a frame"),
        }
    }
}

/// The logs of one container being read: a raw stream (TTY) or a multiplexed one, into a [`Tail`].
#[derive(Debug)]
pub struct Reply {
    /// `None` for a TTY container's raw stream.
    demux: Option<Demux>,
    tail: Tail,
    /// Text of a stream-type-3 frame being collected.
    daemon_error: Option<Vec<u8>>,
}

impl Reply {
    /// A reply kept within `cap` (see [`Tail::new`]); `tty` when the body is the raw stream.
    pub fn new(tty: bool, cap: usize, piece: usize) -> Self {
        Reply {
            demux: if tty { None } else { Some(Demux::new()) },
            tail: Tail::new(cap, piece),
            daemon_error: None,
        }
    }

    /// Adds the next slice of the body.
    pub fn push(&mut self, mut input: &[u8]) -> Result<(), Broken> {
        let Some(demux) = &mut self.demux else {
            self.tail.push(Out::Stdout, input);
            return Ok(());
        };
        loop {
            let (used, piece) = demux.next(input).map_err(|e| Broken::UnknownStream(e.0))?;
            let Piece::Data(source, range) = piece else {
                return Ok(());
            };
            let bytes = &input[range];
            match source {
                Source::Stdin | Source::Stdout => self.tail.push(Out::Stdout, bytes),
                Source::Stderr => self.tail.push(Out::Stderr, bytes),
                Source::System => {
                    let text = self.daemon_error.get_or_insert_with(Vec::new);
                    let room = ERROR_BODY_MAX_BYTES.saturating_sub(text.len());
                    text.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    if demux.frame_done() {
                        return Err(Broken::Daemon(String::from_utf8_lossy(text).into_owned()));
                    }
                }
            }
            input = &input[used..];
        }
    }

    /// Lines dropped to stay within the cap.
    pub fn dropped_lines(&self) -> usize {
        self.tail.dropped_lines()
    }

    /// The body is over: the kept text into `text` (see [`Tail::finish`]).
    pub fn finish(self, text: &mut String) -> Result<(), Broken> {
        if self.demux.as_ref().is_some_and(|d| !d.is_between_frames()) {
            return Err(Broken::MidFrame);
        }
        self.tail.finish(text);
        Ok(())
    }
}

// ---- The call -------------------------------------------------------------------------------------

impl Client {
    /// The logs DockMon's `get_logs` returns (spec 3.4): `GET
    /// /containers/{id}/logs?stdout=1&stderr=1&timestamps=1&tail={tail}`, every line starting with
    /// Docker's RFC 3339 nano timestamp. `tty` is the container's `Config.Tty` (the caller knows it
    /// from an inspect): a TTY's raw stream is returned as it is; otherwise all stdout lines come
    /// first, then all stderr lines. `tail` 0 means `LOGS_TAIL_DEFAULT_LINES` (100, the backend's and
    /// the Go agent's default; the backend clamps to 1-10000, so 0 only comes from other callers).
    ///
    /// At most `LOGS_REPLY_MAX_BYTES` are kept: past it the oldest whole lines are dropped and the
    /// newest kept (see the module doc). Invalid UTF-8 is replaced, never an error. `text` is
    /// replaced by the result.
    pub async fn logs(
        &self,
        id: &str,
        tail: u32,
        tty: bool,
        text: &mut String,
    ) -> Result<(), Error> {
        let tail = if tail == 0 {
            LOGS_TAIL_DEFAULT_LINES
        } else {
            tail
        };
        let mut path = String::with_capacity(96);
        path.push_str("/containers/");
        request::push_encoded(&mut path, id);
        path.push_str("/logs");
        let target = format!("{path}?stdout=1&stderr=1&timestamps=1&tail={tail}");
        let broken = |b: Broken| Error::Stream {
            call: format!("GET {path}"),
            message: b.to_string(),
        };
        let mut reply = Reply::new(tty, LOGS_REPLY_MAX_BYTES, LOGS_PIECE_MAX_BYTES);
        self.call_each("GET", &target, LOGS_TIMEOUT_MS, &mut |slice| {
            reply.push(slice).map_err(broken)
        })
        .await?;
        if reply.dropped_lines() > 0 {
            log::debug!(
                "logs of {id}: {} older lines dropped to stay within {LOGS_REPLY_MAX_BYTES} bytes",
                reply.dropped_lines()
            );
        }
        reply.finish(text).map_err(broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multiplexed frame.
    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// stdout (with stdin), stderr and system bytes, and whether the input ended between frames.
    type Split = (Vec<u8>, Vec<u8>, Vec<u8>, bool);

    /// Feeds `parts` through a demuxer.
    fn demux_all(parts: &[&[u8]]) -> Result<Split, UnknownStream> {
        let mut d = Demux::new();
        let (mut out, mut err, mut sys) = (Vec::new(), Vec::new(), Vec::new());
        for part in parts {
            let mut input = *part;
            loop {
                let (used, piece) = d.next(input)?;
                match piece {
                    Piece::NeedMore => {
                        assert_eq!(used, input.len(), "NeedMore consumes everything");
                        break;
                    }
                    Piece::Data(source, r) => {
                        assert_eq!(used, r.end);
                        assert!(!r.is_empty(), "no empty pieces");
                        match source {
                            Source::Stdin | Source::Stdout => out.extend_from_slice(&input[r]),
                            Source::Stderr => err.extend_from_slice(&input[r]),
                            Source::System => sys.extend_from_slice(&input[r]),
                        }
                    }
                }
                input = &input[used..];
            }
        }
        Ok((out, err, sys, d.is_between_frames()))
    }

    fn recorded() -> &'static [u8] {
        // Docker 20.10.24, API 1.41: see tests/fixtures/docker/README.md.
        include_bytes!("../../tests/fixtures/docker/logs-mux.bin")
    }

    fn synthetic() -> Vec<u8> {
        let mut s = frame(1, b"2026-11-29T03:42:22.615270964Z out1\n");
        s.extend(frame(2, b""));
        s.extend(frame(2, b"2026-11-29T03:42:22.615357442Z err1\n"));
        s.extend(frame(0, b"in"));
        s.extend(frame(1, &[b'x'; 300]));
        s.extend(frame(1, b"\n"));
        s
    }

    #[test]
    fn demux_recorded_stream() {
        let (out, err, sys, done) = demux_all(&[recorded()]).unwrap();
        assert_eq!(
            out,
            "2026-11-29T03:42:22.615270964Z out1\n2026-11-29T03:42:22.615332275Z out2\n\
             2026-11-29T03:42:22.615335289Z \u{fffd}bad utf8\n"
                .as_bytes()
        );
        assert_eq!(
            err,
            b"2026-11-29T03:42:22.615357442Z err1\n2026-11-29T03:42:22.615359846Z err2\n"
        );
        assert!(sys.is_empty());
        assert!(done);
    }

    #[test]
    fn demux_gives_the_same_at_every_split_point_and_one_byte_at_a_time() {
        for input in [recorded().to_vec(), synthetic()] {
            let whole = demux_all(&[&input]).unwrap();
            for i in 0..=input.len() {
                let (a, b) = input.split_at(i);
                assert_eq!(demux_all(&[a, b]).unwrap(), whole, "split at {i}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(demux_all(&bytes).unwrap(), whole, "one byte at a time");
        }
    }

    #[test]
    fn demux_every_truncation_is_partial() {
        let input = synthetic();
        let mut boundaries = vec![0];
        let mut i = 0;
        while i < input.len() {
            let len = u32::from_be_bytes(input[i + 4..i + 8].try_into().unwrap()) as usize;
            i += 8 + len;
            boundaries.push(i);
        }
        for cut in 0..=input.len() {
            let (.., between) = demux_all(&[&input[..cut]]).unwrap();
            assert_eq!(between, boundaries.contains(&cut), "cut at {cut}");
        }
    }

    #[test]
    fn demux_refuses_unknown_stream_types() {
        // A TTY stream read as multiplexed: the first byte is the timestamp's '2'.
        assert_eq!(
            demux_all(&[b"2026-11-29T03:38:31.230121416Z out1\r\n"]),
            Err(UnknownStream(b'2'))
        );
        let mut bad = frame(1, b"ok\n");
        bad.extend(frame(4, b"x"));
        assert_eq!(demux_all(&[&bad]), Err(UnknownStream(4)));
        // Padding is ignored, as moby's stdcopy does.
        let mut padded = frame(1, b"ok\n");
        padded[1] = 9;
        assert_eq!(demux_all(&[&padded]).unwrap().0, b"ok\n");
    }

    #[test]
    fn demux_handles_a_frame_of_the_largest_length_header() {
        let mut d = Demux::new();
        let (used, piece) = d.next(&[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, b'a']).unwrap();
        assert_eq!((used, piece), (9, Piece::Data(Source::Stderr, 8..9)));
        assert_eq!(d.remaining, u32::MAX - 1);
        assert!(!d.is_between_frames());
    }

    /// Runs lines `(out, text)` through a Tail in one push each and returns the text.
    fn keep(cap: usize, piece: usize, pushes: &[(Out, &str)]) -> (String, usize) {
        let mut t = Tail::new(cap, piece);
        for (out, text) in pushes {
            t.push(*out, text.as_bytes());
            assert!(t.total <= cap, "total {} over cap {cap}", t.total);
        }
        let dropped = t.dropped_lines();
        let mut s = String::new();
        t.finish(&mut s);
        (s, dropped)
    }

    /// The model of the policy when every line arrives in one push: the longest run of newest lines
    /// whose cost (bytes + MARK_BYTES per stored piece) fits the cap, stdout lines first.
    fn model(cap: usize, piece: usize, lines: &[(Out, &str)]) -> String {
        let piece = piece.min(cap / 4).max(1);
        let mut cost = 0;
        let mut kept = Vec::new();
        for (out, line) in lines.iter().rev() {
            cost += line.len() + MARK_BYTES * line.len().div_ceil(piece);
            if cost > cap {
                break;
            }
            kept.push((*out, *line));
        }
        kept.reverse();
        let pick = |o| {
            kept.iter()
                .filter(|(out, _)| *out == o)
                .map(|(_, l)| *l)
                .collect::<String>()
        };
        pick(Out::Stdout) + &pick(Out::Stderr)
    }

    #[test]
    fn stdout_lines_come_before_stderr_lines() {
        let lines = [
            (Out::Stdout, "t1 out1\n"),
            (Out::Stderr, "t2 err1\n"),
            (Out::Stdout, "t3 out2\n"),
            (Out::Stderr, "t4 err2\n"),
        ];
        let (text, dropped) = keep(1 << 20, 1024, &lines);
        assert_eq!(text, "t1 out1\nt3 out2\nt2 err1\nt4 err2\n");
        assert_eq!(dropped, 0);
    }

    #[test]
    fn over_the_cap_the_newest_whole_lines_are_kept() {
        let lines: Vec<(Out, String)> = (0..200)
            .map(|i| {
                let out = if i % 3 == 0 { Out::Stderr } else { Out::Stdout };
                (out, format!("t{i:03} line {}\n", "y".repeat(i % 17)))
            })
            .collect();
        let lines: Vec<(Out, &str)> = lines.iter().map(|(o, l)| (*o, l.as_str())).collect();
        for cap in [64, 100, 257, 1000, 4096, 100_000] {
            let (text, dropped) = keep(cap, 64, &lines);
            assert_eq!(text, model(cap, 64, &lines), "cap {cap}");
            let kept = text.lines().count();
            assert_eq!(kept + dropped, lines.len(), "cap {cap}");
        }
    }

    #[test]
    fn lines_split_across_pushes_are_kept_whole() {
        let lines = [
            (Out::Stdout, "t1 aaaa\n"),
            (Out::Stderr, "t2 bb\n"),
            (Out::Stdout, "t3 cc\n"),
        ];
        let all: Vec<(Out, &str)> = lines.to_vec();
        for cap in [30, 40, 60, 200] {
            let want = model(cap, 64, &all);
            // Each line pushed in two parts, the stderr line between the halves of the next stdout line.
            let pushes = [
                (Out::Stdout, "t1 a"),
                (Out::Stdout, "aaa\nt3"),
                (Out::Stderr, "t2 bb\n"),
                (Out::Stdout, " cc\n"),
            ];
            let (text, _) = keep(cap, 64, &pushes);
            // Lines end in the order t1, t2, t3 (t3's end arrives last).
            assert_eq!(text, want, "cap {cap}");
        }
    }

    #[test]
    fn a_line_longer_than_the_cap_is_dropped_whole() {
        let long = format!("t2 {}\n", "x".repeat(1000));
        let pushes = [
            (Out::Stdout, "t1 before\n"),
            (Out::Stdout, long.as_str()),
            (Out::Stderr, "t3 err\n"),
            (Out::Stdout, "t4 after\n"),
        ];
        let (text, dropped) = keep(200, 16, &pushes);
        assert_eq!(text, "t4 after\nt3 err\n");
        assert_eq!(dropped, 2);
        // Fed in small slices, with the rest of the line arriving after its start was dropped.
        let mut t = Tail::new(200, 16);
        t.push(Out::Stdout, b"t1 before\n");
        for part in long.as_bytes().chunks(7) {
            t.push(Out::Stdout, part);
            t.push(Out::Stderr, b"");
            assert!(t.total <= 200);
        }
        t.push(Out::Stdout, b"t4 after\n");
        let mut s = String::new();
        t.finish(&mut s);
        assert_eq!(s, "t4 after\n");
    }

    #[test]
    fn a_long_line_within_the_cap_is_kept_from_its_pieces() {
        let long = format!("t1 {}\n", "x".repeat(500));
        let (text, dropped) = keep(1000, 16, &[(Out::Stdout, &long), (Out::Stderr, "e\n")]);
        assert_eq!(text, format!("{long}e\n"));
        assert_eq!(dropped, 0);
    }

    #[test]
    fn dropping_a_long_line_also_drops_its_stored_continuation() {
        // Pieces of the long stdout line are stored between stderr lines; when its first piece goes,
        // the later pieces go with it and the stderr lines between stay.
        let mut t = Tail::new(400, 16);
        t.push(Out::Stdout, &[b'a'; 40]);
        t.push(Out::Stderr, b"e1\n");
        t.push(Out::Stdout, &[b'b'; 40]);
        t.push(Out::Stdout, b"\n");
        t.push(Out::Stderr, b"e2\n");
        let mut filler = 0;
        while t.dropped_lines() == 0 {
            t.push(Out::Stderr, b"fill\n");
            filler += 1;
            assert!(t.total <= 400);
        }
        let mut s = String::new();
        t.finish(&mut s);
        assert!(!s.contains('a') && !s.contains('b'), "{s:?}");
        assert!(s.starts_with("e1\ne2\n"), "{s:?}");
        assert_eq!(s.matches("fill\n").count(), filler);
    }

    #[test]
    fn an_unterminated_last_line_is_kept() {
        let (text, _) = keep(1000, 64, &[(Out::Stdout, "t1 a\nt2 no newline")]);
        assert_eq!(text, "t1 a\nt2 no newline");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut t = Tail::new(1000, 64);
        t.push(Out::Stdout, b"t1 \xff\xfe ok\n");
        // A character split across pushes and streams survives.
        t.push(Out::Stderr, "t2 \u{e9}".as_bytes().split_at(4).0);
        t.push(Out::Stdout, b"t3\n");
        t.push(Out::Stderr, &"t2 \u{e9}\n".as_bytes()[4..]);
        let mut s = String::new();
        t.finish(&mut s);
        assert_eq!(s, "t1 \u{fffd}\u{fffd} ok\nt3\nt2 \u{e9}\n");
    }

    #[test]
    fn buffers_stay_within_one_and_a_half_caps_together() {
        let cap = 4096;
        let mut t = Tail::new(cap, 64);
        let capacity = |t: &Tail| t.bytes[0].capacity() + t.bytes[1].capacity();
        // stdout fills the cap, then stderr takes over: stdout's spare capacity is given back.
        for i in 0..400 {
            t.push(Out::Stdout, format!("t{i:04} out\n").as_bytes());
            assert!(capacity(&t) <= cap * 3 / 2, "{}", capacity(&t));
        }
        for i in 0..400 {
            t.push(Out::Stderr, format!("t{i:04} err\n").as_bytes());
            assert!(capacity(&t) <= cap * 3 / 2, "{}", capacity(&t));
        }
        assert!(t.bytes[0].is_empty());
    }

    #[test]
    fn a_full_cap_of_alternating_streams_is_not_copied_per_line() {
        // 64 MiB of alternating 64-byte lines through a 1 MiB cap: quadratic copying would take
        // minutes; this takes well under a second.
        let mut t = Tail::new(LOGS_REPLY_MAX_BYTES, LOGS_PIECE_MAX_BYTES);
        let line = [b'x'; 63];
        let started = std::time::Instant::now();
        for i in 0..1_000_000 {
            let out = if i % 2 == 0 { Out::Stdout } else { Out::Stderr };
            t.push(out, &line);
            t.push(out, b"\n");
        }
        assert!(t.total <= LOGS_REPLY_MAX_BYTES);
        assert!(t.bytes[0].capacity() + t.bytes[1].capacity() <= LOGS_REPLY_MAX_BYTES * 3 / 2);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    fn reply_all(tty: bool, cap: usize, parts: &[&[u8]]) -> Result<String, Broken> {
        let mut r = Reply::new(tty, cap, 64);
        for p in parts {
            r.push(p)?;
        }
        let mut s = String::new();
        r.finish(&mut s)?;
        Ok(s)
    }

    #[test]
    fn reply_from_the_recorded_stream_at_every_split_point() {
        let input = recorded();
        let whole = reply_all(false, 1 << 20, &[input]).unwrap();
        assert_eq!(
            whole,
            "2026-11-29T03:42:22.615270964Z out1\n2026-11-29T03:42:22.615332275Z out2\n\
             2026-11-29T03:42:22.615335289Z \u{fffd}bad utf8\n\
             2026-11-29T03:42:22.615357442Z err1\n2026-11-29T03:42:22.615359846Z err2\n"
        );
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(
                reply_all(false, 1 << 20, &[a, b]).unwrap(),
                whole,
                "split {i}"
            );
        }
        // A cap of 160 stores pieces of at most 40 bytes: 36-byte lines cost 44, the 43-byte line
        // (with U+FFFD from Docker) 59, so the newest three lines fit (147) and the fourth does not.
        let three = reply_all(false, 160, &[input]).unwrap();
        assert_eq!(
            three,
            "2026-11-29T03:42:22.615335289Z \u{fffd}bad utf8\n\
             2026-11-29T03:42:22.615357442Z err1\n2026-11-29T03:42:22.615359846Z err2\n"
        );
    }

    #[test]
    fn reply_passes_a_tty_stream_through() {
        let raw = b"2026-11-29T03:38:31.230121416Z out1\r\n2026-11-29T03:38:31.230141436Z err1\r\n";
        assert_eq!(
            reply_all(true, 1 << 20, &[raw]).unwrap(),
            std::str::from_utf8(raw).unwrap()
        );
    }

    #[test]
    fn reply_errors_are_distinct() {
        let mut daemon = frame(1, b"t1 ok\n");
        daemon.extend(frame(3, b"Error grabbing logs: log file is gone\n"));
        for i in 0..=daemon.len() {
            let (a, b) = daemon.split_at(i);
            let got = reply_all(false, 1 << 20, &[a, b]);
            assert_eq!(
                got,
                Err(Broken::Daemon(
                    "Error grabbing logs: log file is gone\n".into()
                )),
                "split {i}"
            );
        }
        assert_eq!(
            Broken::Daemon("Error grabbing logs: x\n".into()).to_string(),
            "error from daemon in stream: Error grabbing logs: x"
        );
        let whole = frame(1, b"t1 ok\n");
        assert_eq!(
            reply_all(false, 1 << 20, &[&whole[..whole.len() - 1]]),
            Err(Broken::MidFrame)
        );
        assert_eq!(
            reply_all(false, 1 << 20, &[&whole[..3]]),
            Err(Broken::MidFrame)
        );
        assert_eq!(
            reply_all(false, 1 << 20, &[b"2026-11-29T03"]),
            Err(Broken::UnknownStream(b'2'))
        );
        assert_eq!(reply_all(false, 1 << 20, &[b""]), Ok(String::new()));
    }
}
