//! Image pulls through the engine (`POST /images/create`, DockMon spec 5) and their progress.
//!
//! Read this first: the engine answers a pull with `200 OK` at once and then streams one JSON object
//! per line (`{"status":"Downloading","id":"<layer>","progressDetail":{"current":…,"total":…}}`) until
//! the pull ends. A failure after the head (unknown tag, wrong password, network trouble) is a line
//! `{"error":…,"errorDetail":{"message":…}}` in that 200 stream, never a status: spec 5 says such a pull
//! failed, and [`Client::pull`] returns it as an error.
//!
//! Pure parts (unit-tested here): [`split_lines`], [`parse_line`] (one line → [`Line`]), [`Layers`] (the per-layer
//! table and the overall percentage), [`Throttle`] (when a progress event is due, spec 3.8.1: ≥ 500 ms,
//! ≥ 5 points, or a layer completed; time is an argument), [`split_reference`] and [`registry_auth`].
//!
//! Memory: the stream is cut into lines of at most `PULL_LINE_MAX_BYTES` ([`split_lines`]: whole lines
//! are read in place from the connection's buffer, only an unfinished one is copied) and each line is
//! handed to the caller and forgotten, so a pull of any size holds one line. The layer
//! table holds at most `PULL_LAYERS_MAX_COUNT` layers; when full, further layers are not tracked one
//! by one (policy: refuse, count them in [`Layers::untracked`]); their lines still reach the caller.
use super::{Client, Error};
use crate::http::conn::Deadline;
use crate::http::request;
use crate::limits::*;
use serde::Deserialize;
use std::borrow::Cow;

/// One line of the pull stream, the fields we read.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Line<'a> {
    /// `Pulling fs layer`, `Waiting`, `Downloading`, `Verifying Checksum`, `Download complete`,
    /// `Extracting`, `Pull complete`, `Already exists`, or a whole-pull status (`Digest: …`).
    #[serde(borrow, default)]
    pub status: Cow<'a, str>,
    /// The layer (12 hex), or the tag for whole-pull lines; empty when absent.
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    /// Bytes so far and in all, for `Downloading` and `Extracting`.
    #[serde(rename = "progressDetail", default)]
    pub detail: Detail,
    /// The in-band error (spec 5): the pull failed.
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
    /// The same error as an object; its `message` is used when `error` is absent.
    #[serde(rename = "errorDetail", borrow, default)]
    pub error_detail: Option<ErrorDetail<'a>>,
}

/// `progressDetail`.
#[derive(Debug, Default, Deserialize, PartialEq, Clone, Copy)]
pub struct Detail {
    /// Bytes done.
    #[serde(default)]
    pub current: u64,
    /// Bytes in all (0 when unknown).
    #[serde(default)]
    pub total: u64,
}

/// `errorDetail`.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct ErrorDetail<'a> {
    /// The message.
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
}

impl Line<'_> {
    /// The in-band error text, when this line reports one.
    pub fn error_text(&self) -> Option<&str> {
        match (&self.error, &self.error_detail) {
            (Some(e), _) if !e.is_empty() => Some(e),
            (_, Some(d)) if !d.message.is_empty() => Some(&d.message),
            (Some(e), _) => Some(e),
            _ => None,
        }
    }
}

/// Parses one line of the pull stream.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, serde_json::Error> {
    serde_json::from_slice(line)
}

/// Where a layer is in its pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Announced or waiting.
    Waiting,
    /// Bytes arriving.
    Downloading,
    /// Downloaded (checksum verified).
    Downloaded,
    /// Being unpacked.
    Extracting,
    /// Done (`Pull complete`, `Already exists`).
    Complete,
}

impl Phase {
    /// The phase a layer status names; `None` for statuses that are not about a layer.
    pub fn of(status: &str) -> Option<Phase> {
        Some(match status {
            "Pulling fs layer" | "Waiting" => Phase::Waiting,
            "Downloading" | "Retrying" => Phase::Downloading,
            "Verifying Checksum" | "Download complete" => Phase::Downloaded,
            "Extracting" => Phase::Extracting,
            "Pull complete" | "Already exists" => Phase::Complete,
            _ => return None,
        })
    }

    /// The word DockMon's UI shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Downloading => "downloading",
            Phase::Downloaded => "downloaded",
            Phase::Extracting => "extracting",
            Phase::Complete => "complete",
        }
    }
}

/// One tracked layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The layer ID as Docker prints it (12 hex).
    pub id: heapless::String<PULL_LAYER_ID_MAX_BYTES>,
    /// Where it is.
    pub phase: Phase,
    /// Bytes downloaded (or extracted, while extracting).
    pub current: u64,
    /// Bytes in all (the download size).
    pub total: u64,
}

impl Layer {
    /// 0-100: download is the first half, extraction the second.
    pub fn percent(&self) -> u8 {
        let frac = |c: u64, t: u64| (c.min(t).saturating_mul(50)).checked_div(t).unwrap_or(0) as u8;
        match self.phase {
            Phase::Waiting => 0,
            Phase::Downloading => frac(self.current, self.total),
            Phase::Downloaded => 50,
            Phase::Extracting => 50 + frac(self.current, self.total),
            Phase::Complete => 100,
        }
    }
}

/// The per-layer table of one pull (at most `PULL_LAYERS_MAX_COUNT`; see the module doc for the
/// policy when full).
#[derive(Debug, Default)]
pub struct Layers {
    layers: heapless::Vec<Layer, PULL_LAYERS_MAX_COUNT>,
    untracked: u32,
}

/// What one line changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// A layer reached `Complete` with this line.
    pub completed: bool,
}

impl Layers {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one line. Lines that are not about a layer change nothing.
    pub fn apply(&mut self, line: &Line<'_>) -> Applied {
        let Some(phase) = Phase::of(&line.status) else {
            return Applied::default();
        };
        if line.id.is_empty() || line.id.len() > PULL_LAYER_ID_MAX_BYTES {
            return Applied::default();
        }
        let idx = match self.layers.iter().position(|l| l.id == line.id.as_ref()) {
            Some(i) => i,
            None => {
                let mut id = heapless::String::new();
                // Length checked above.
                let _ = id.push_str(&line.id);
                let layer = Layer {
                    id,
                    phase: Phase::Waiting,
                    current: 0,
                    total: 0,
                };
                if self.layers.push(layer).is_err() {
                    self.untracked = self.untracked.saturating_add(1);
                    return Applied::default();
                }
                self.layers.len() - 1
            }
        };
        let layer = &mut self.layers[idx];
        let was_complete = layer.phase == Phase::Complete;
        layer.phase = phase;
        match phase {
            Phase::Downloading => {
                layer.current = line.detail.current;
                if line.detail.total > 0 {
                    layer.total = line.detail.total;
                }
            }
            Phase::Extracting => {
                layer.current = line.detail.current;
                if layer.total == 0 {
                    layer.total = line.detail.total;
                }
            }
            Phase::Downloaded | Phase::Complete => layer.current = layer.total,
            Phase::Waiting => {}
        }
        Applied {
            completed: phase == Phase::Complete && !was_complete,
        }
    }

    /// The tracked layers, in the order they were first seen.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Layers seen after the table was full.
    pub fn untracked(&self) -> u32 {
        self.untracked
    }

    /// 0-100 over the tracked layers (0 before any).
    pub fn overall(&self) -> u8 {
        if self.layers.is_empty() {
            return 0;
        }
        let sum: u32 = self.layers.iter().map(|l| u32::from(l.percent())).sum();
        (sum / self.layers.len() as u32) as u8
    }

    /// Layers not yet complete.
    pub fn remaining(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.phase != Phase::Complete)
            .count()
    }

    /// Bytes downloaded so far over all tracked layers (for the speed).
    pub fn downloaded_bytes(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match l.phase {
                Phase::Waiting => 0,
                Phase::Downloading => l.current,
                _ => l.total,
            })
            .sum()
    }

    /// Download size of all tracked layers whose size is known.
    pub fn total_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.total).sum()
    }
}

/// When an `update_layer_progress` event is due (spec 3.8.1): at least `PULL_PROGRESS_INTERVAL_MS`
/// since the last one, or the overall progress moved by `PULL_PROGRESS_STEP_POINTS`, or a layer
/// completed. Time is an argument (milliseconds from any fixed origin).
#[derive(Debug, Default, Clone, Copy)]
pub struct Throttle {
    last: Option<(u64, u8)>,
}

impl Throttle {
    /// Whether to send now; records the send when it answers true.
    pub fn due(&mut self, now_ms: u64, overall: u8, completed: bool) -> bool {
        let due = match self.last {
            None => true,
            Some((at, pct)) => {
                completed
                    || now_ms.saturating_sub(at) >= PULL_PROGRESS_INTERVAL_MS
                    || overall.abs_diff(pct) >= PULL_PROGRESS_STEP_POINTS
            }
        };
        if due {
            self.last = Some((now_ms, overall));
        }
        due
    }
}

/// `image[:tag]` (or `image@digest`) → (`fromImage`, `tag`) as the engine wants them: the tag is what
/// follows the last `:` after the last `/` (so a registry port is not a tag), `latest` when there is
/// none; a digest reference goes whole into `fromImage` with an empty tag.
pub fn split_reference(reference: &str) -> (&str, &str) {
    if reference.contains('@') {
        return (reference, "");
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            &reference[name_start + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// The `X-Registry-Auth` value for a user name and password (spec 3.8.2): the JSON
/// `{"username":…,"password":…}` in base64url with padding, as the Go SDK's `EncodeAuthConfig` writes it.
pub fn registry_auth(username: &str, password: &str) -> String {
    #[derive(serde::Serialize)]
    struct Auth<'a> {
        username: &'a str,
        password: &'a str,
    }
    // Serializing two strings into a Vec cannot fail.
    let json = serde_json::to_vec(&Auth { username, password }).unwrap_or_default();
    base64url(&json)
}

/// Base64 with the URL alphabet and padding (RFC 4648 §5).
fn base64url(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for group in input.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why [`split_lines`] stopped.
#[derive(Debug, PartialEq)]
pub enum Split<E> {
    /// A line (finished or not) is longer than the cap.
    TooLong,
    /// The callback failed.
    Each(E),
}

/// Cuts `bytes` (the next slice of a newline-delimited stream) into lines for `f`: `carry` holds the
/// unfinished line from earlier slices and gets the unfinished end of this one; whole lines inside
/// `bytes` are handed over in place, never copied. Lines are without `\n` (and `\r`); blank lines are
/// skipped. A line longer than `max` is [`Split::TooLong`]; `carry` never holds more than `max` + 1 bytes (a line and its `\r`).
pub fn split_lines<E>(
    carry: &mut Vec<u8>,
    bytes: &[u8],
    max: usize,
    f: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), Split<E>> {
    let mut emit = |line: &[u8]| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            return Err(Split::TooLong);
        }
        if line.trim_ascii().is_empty() {
            return Ok(());
        }
        f(line).map_err(Split::Each)
    };
    let mut rest = bytes;
    if !carry.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            None => {
                if carry.len() + rest.len() > max {
                    return Err(Split::TooLong);
                }
                carry.extend_from_slice(rest);
                return Ok(());
            }
            Some(i) => {
                if carry.len() + i > max + 1 {
                    return Err(Split::TooLong);
                }
                carry.extend_from_slice(&rest[..i]);
                let line = std::mem::take(carry);
                let result = emit(&line);
                // Keep the allocation for the next unfinished line.
                *carry = line;
                carry.clear();
                result?;
                rest = &rest[i + 1..];
            }
        }
    }
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        emit(&rest[..i])?;
        rest = &rest[i + 1..];
    }
    if rest.len() > max {
        return Err(Split::TooLong);
    }
    carry.extend_from_slice(rest);
    Ok(())
}

impl Client {
    /// `POST /images/create?fromImage=…&tag=…` with `X-Registry-Auth` when `auth` is given; each line
    /// of the progress stream goes to `each` as it arrives (the stream is never held whole). Each
    /// read must bring bytes within `PULL_IDLE_TIMEOUT_MS`. An in-band error line ends the pull with
    /// [`Error::Stream`] carrying the engine's message; an error from `each` stops the read.
    pub async fn pull(
        &self,
        reference: &str,
        auth: Option<&str>,
        each: &mut dyn FnMut(&Line<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        const CALL: &str = "POST /images/create";
        let (from, tag) = split_reference(reference);
        let mut target = String::with_capacity(64 + reference.len());
        target.push_str("/images/create?fromImage=");
        request::push_encoded(&mut target, from);
        if !tag.is_empty() {
            target.push_str("&tag=");
            request::push_encoded(&mut target, tag);
        }
        let headers: &[(&str, &str)] = match auth {
            Some(a) => &[("X-Registry-Auth", a)],
            None => &[],
        };
        let (mut conn, _) = self
            .open_with(
                CALL,
                "POST",
                &target,
                true,
                headers,
                None,
                &[],
                Deadline::after_ms(PULL_IDLE_TIMEOUT_MS),
            )
            .await?;
        // Only an unfinished line is copied (into `carry`); whole lines are read in place from the
        // connection's buffer.
        let mut carry = Vec::new();
        let mut handle = |raw: &[u8]| -> Result<(), Error> {
            let line = parse_line(raw).map_err(|e| Error::Json {
                call: CALL.to_string(),
                message: e.to_string(),
            })?;
            if let Some(text) = line.error_text() {
                return Err(Error::Stream {
                    call: CALL.to_string(),
                    message: text.trim().to_string(),
                });
            }
            each(&line)
        };
        loop {
            match conn
                .read_body_slice(Some(Deadline::after_ms(PULL_IDLE_TIMEOUT_MS)))
                .await
            {
                Ok(Some(bytes)) => split_lines(&mut carry, bytes, PULL_LINE_MAX_BYTES, &mut handle)
                    .map_err(|e| match e {
                        Split::TooLong => Error::LineTooLong {
                            call: CALL.to_string(),
                            max: PULL_LINE_MAX_BYTES,
                        },
                        Split::Each(e) => e,
                    })?,
                Ok(None) => break,
                Err(source) => {
                    return Err(Error::Http {
                        call: CALL.to_string(),
                        source,
                    })
                }
            }
            // Let other tasks run between slices: a local engine (or a cached pull) can deliver the
            // whole stream without the socket ever blocking, and the outbox's writer must get to send
            // the events `each` queued, or they all pile up until the pull ends (measured: 84 layer
            // events, ~200 KB, in tests/engine_update_memory.rs).
            smol::future::yield_now().await;
        }
        if !carry.trim_ascii().is_empty() {
            handle(&carry)?;
        }
        self.give_back(conn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_progress_and_errors() {
        let l = parse_line(br#"{"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[==>  ]","id":"a1b2c3d4e5f6"}"#).unwrap();
        assert_eq!(l.status, "Downloading");
        assert_eq!(l.id, "a1b2c3d4e5f6");
        assert_eq!(
            l.detail,
            Detail {
                current: 1024,
                total: 4096
            }
        );
        assert_eq!(l.error_text(), None);
        let l = parse_line(
            br#"{"errorDetail":{"message":"pull access denied"},"error":"pull access denied"}"#,
        )
        .unwrap();
        assert_eq!(l.error_text(), Some("pull access denied"));
        let l = parse_line(br#"{"errorDetail":{"message":"only detail"}}"#).unwrap();
        assert_eq!(l.error_text(), Some("only detail"));
        let l = parse_line(br#"{"status":"Digest: sha256:00","progressDetail":{}}"#).unwrap();
        assert_eq!(l.id, "");
        assert!(parse_line(b"not json").is_err());
        assert!(parse_line(br#"{"status":1}"#).is_err());
    }

    fn line<'a>(status: &'a str, id: &'a str, current: u64, total: u64) -> Line<'a> {
        Line {
            status: status.into(),
            id: id.into(),
            detail: Detail { current, total },
            ..Default::default()
        }
    }

    #[test]
    fn layers_follow_a_pull() {
        let mut t = Layers::new();
        t.apply(&line("Pulling from x/y", "v2", 0, 0));
        assert!(t.layers().is_empty());
        t.apply(&line("Pulling fs layer", "aaa", 0, 0));
        t.apply(&line("Already exists", "bbb", 0, 0));
        assert_eq!(t.layers().len(), 2);
        assert_eq!(t.overall(), 50);
        assert_eq!(t.remaining(), 1);
        t.apply(&line("Downloading", "aaa", 500, 1000));
        assert_eq!(t.layers()[0].percent(), 25);
        assert_eq!(t.downloaded_bytes(), 500);
        t.apply(&line("Download complete", "aaa", 0, 0));
        assert_eq!(t.layers()[0].percent(), 50);
        t.apply(&line("Extracting", "aaa", 1000, 1000));
        assert_eq!(t.layers()[0].percent(), 100);
        let a = t.apply(&line("Pull complete", "aaa", 0, 0));
        assert!(a.completed);
        let again = t.apply(&line("Pull complete", "aaa", 0, 0));
        assert!(!again.completed, "a layer completes once");
        assert_eq!(t.overall(), 100);
        assert_eq!(t.remaining(), 0);
    }

    #[test]
    fn a_full_table_refuses_new_layers_and_counts_them() {
        let mut t = Layers::new();
        for i in 0..PULL_LAYERS_MAX_COUNT + 3 {
            let id = format!("{i:012x}");
            t.apply(&line("Pulling fs layer", &id, 0, 0));
        }
        assert_eq!(t.layers().len(), PULL_LAYERS_MAX_COUNT);
        assert_eq!(t.untracked(), 3);
        let long = "x".repeat(PULL_LAYER_ID_MAX_BYTES + 1);
        t.apply(&line("Downloading", &long, 1, 2));
        assert_eq!(t.untracked(), 3, "over-long ids are ignored, not counted");
    }

    fn split_all(input: &[u8], cut: &[usize], max: usize) -> Result<Vec<String>, Split<()>> {
        let mut carry = Vec::new();
        let mut got = Vec::new();
        let mut start = 0;
        for &c in cut.iter().chain(std::iter::once(&input.len())) {
            split_lines(&mut carry, &input[start..c], max, &mut |l: &[u8]| {
                got.push(String::from_utf8(l.to_vec()).unwrap());
                Ok(())
            })?;
            start = c;
        }
        if !carry.is_empty() {
            got.push(String::from_utf8(carry).unwrap());
        }
        Ok(got)
    }

    #[test]
    fn lines_split_the_same_at_every_cut_and_byte_by_byte() {
        let input = b"{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n{\"d\"";
        let want = ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\""];
        for cut in 0..=input.len() {
            assert_eq!(split_all(input, &[cut], 16).unwrap(), want, "cut {cut}");
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(split_all(input, &every, 16).unwrap(), want);
    }

    #[test]
    fn long_lines_are_errors_and_the_carry_stays_within_the_cap() {
        assert_eq!(split_all(b"12345\n", &[], 4), Err(Split::TooLong));
        assert_eq!(split_all(b"123", &[2], 4).unwrap(), ["123"]);
        assert_eq!(split_all(b"12345", &[2], 4), Err(Split::TooLong));
        assert_eq!(split_all(b"1234\r\n", &[3], 4).unwrap(), ["1234"]);
        let mut carry = Vec::new();
        for _ in 0..10_000 {
            split_lines(&mut carry, b"{\"x\":1}\n{\"y\"", 32, &mut |_| {
                Ok::<(), ()>(())
            })
            .unwrap();
            split_lines(&mut carry, b":2}\n", 32, &mut |_| Ok::<(), ()>(())).unwrap();
        }
        assert!(carry.capacity() <= 64);
        let r = split_lines(&mut Vec::new(), b"a\nb\n", 8, &mut |_| Err("stop"));
        assert_eq!(r, Err(Split::Each("stop")));
    }

    #[test]
    fn throttle_follows_spec_3_8_1() {
        let mut th = Throttle::default();
        assert!(th.due(0, 0, false), "the first is sent");
        assert!(!th.due(100, 2, false));
        assert!(th.due(200, 5, false), "5 points");
        assert!(!th.due(300, 6, false));
        assert!(th.due(301, 6, true), "a layer completed");
        assert!(!th.due(700, 6, false));
        assert!(th.due(801, 6, false), "500 ms");
    }

    #[test]
    fn references_split_into_image_and_tag() {
        let cases = [
            ("busybox", ("busybox", "latest")),
            ("busybox:1.36", ("busybox", "1.36")),
            (
                "127.0.0.1:5000/dmt/app:v2",
                ("127.0.0.1:5000/dmt/app", "v2"),
            ),
            (
                "127.0.0.1:5000/dmt/app",
                ("127.0.0.1:5000/dmt/app", "latest"),
            ),
            ("app@sha256:abcd", ("app@sha256:abcd", "")),
        ];
        for (input, want) in cases {
            assert_eq!(split_reference(input), want, "{input}");
        }
    }

    #[test]
    fn registry_auth_is_base64url_json() {
        // {"username":"u","password":"p?>"} — '?>' makes '+'/'/' positions appear in standard base64.
        let v = registry_auth("u", "p?>");
        assert!(!v.contains('+') && !v.contains('/'));
        assert_eq!(v.len() % 4, 0);
        assert_eq!(base64url(b"f"), "Zg==");
        assert_eq!(base64url(b"fo"), "Zm8=");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8=");
    }
}
