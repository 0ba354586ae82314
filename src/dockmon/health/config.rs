//! A health-check `<config>` object (spec 3.6.1) → the compact [`Check`] the scheduler keeps. Pure:
//! no I/O, no clock.
//!
//! Compact form: fixed-size IDs, the method as an enum, the status list as up to
//! `HEALTH_STATUS_RANGES_MAX_COUNT` ranges, the URL and the rendered header lines as one boxed string
//! each, the `Authorization` value ready to send. No `serde_json::Value` is kept; the JSON-in-a-string
//! fields (`headers_json`, `auth_config_json`) are parsed once here.
//!
//! Leniency follows the Go agent, which decodes into a struct and checks with what it got: missing
//! fields take Go's zero values (`enabled`, `follow_redirects` and `verify_ssl` false), a bad
//! `headers_json` or `auth_config_json` drops the headers or credentials (the check still runs,
//! and [`Parsed::notes`] says what was dropped so the caller can log it), a bad status list means
//! `[200]`. Refused outright ([`Refused`]): a config that is not an object, has no container ID, a
//! method other than GET, POST and HEAD, or a URL over `HEALTH_URL_MAX_BYTES`; the scheduler could
//! not run it.
use crate::limits::{
    CONTAINER_ID_MAX_BYTES, HEALTH_HEADERS_MAX_BYTES, HEALTH_HEADER_MAX_COUNT,
    HEALTH_INTERVAL_MAX_S, HEALTH_STATUS_RANGES_MAX_COUNT, HEALTH_TIMEOUT_DEFAULT_S,
    HEALTH_TIMEOUT_MAX_S, HEALTH_URL_MAX_BYTES,
};
use crate::probe::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Longest `host_id` kept: DockMon's host IDs are UUIDs (36 characters).
pub const HOST_ID_MAX_BYTES: usize = 64;

/// The expected status codes: inclusive ranges (`200` is `200..=200`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected(heapless::Vec<(u16, u16), HEALTH_STATUS_RANGES_MAX_COUNT>);

impl Expected {
    /// Parses `200`, `200,201`, `200-299` or a mix, spaces allowed. Entries that are not a code or a
    /// range `low-high` with `low <= high` are skipped, as are entries past the capacity; when nothing
    /// valid is left the list is `[200]` (spec 3.6.1).
    pub fn parse(text: &str) -> Self {
        let mut ranges = heapless::Vec::new();
        for part in text.split(',').map(str::trim) {
            let range = match part.split_once('-') {
                Some((lo, hi)) => match (code(lo), code(hi)) {
                    (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                    _ => continue,
                },
                None => match code(part) {
                    Some(c) => (c, c),
                    None => continue,
                },
            };
            if ranges.push(range).is_err() {
                break;
            }
        }
        if ranges.is_empty() {
            // The capacity is at least one.
            let _ = ranges.push((200, 200));
        }
        Expected(ranges)
    }

    /// Whether `status` is expected.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

fn code(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One check, as the scheduler keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The container the check belongs to: the set's key.
    pub container_id: heapless::String<CONTAINER_ID_MAX_BYTES>,
    /// Echoed in every result.
    pub host_id: heapless::String<HOST_ID_MAX_BYTES>,
    /// Disabled checks are kept but never run.
    pub enabled: bool,
    /// GET, POST or HEAD.
    pub method: Method,
    /// The URL as given (checked when the check runs, so a bad one shows up as a result).
    pub url: Box<str>,
    /// Healthy statuses.
    pub expected: Expected,
    /// Timeout of one check, 1..=`HEALTH_TIMEOUT_MAX_S`.
    pub timeout_s: u32,
    /// Seconds between checks, 1..=`HEALTH_INTERVAL_MAX_S`.
    pub interval_s: u32,
    /// Follow redirects.
    pub follow_redirects: bool,
    /// Verify certificates for `https`.
    pub verify_ssl: bool,
    /// Extra headers as `Name: value\n` lines (names are tokens, values visible ASCII).
    headers: Box<str>,
    /// The `Authorization` value from `auth_config_json`.
    authorization: Option<Box<str>>,
}

impl Check {
    /// The extra headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.lines().filter_map(|l| l.split_once(": "))
    }

    /// The extra headers as `Name: value\n` lines ([`crate::probe::Request::headers`]).
    pub fn header_lines(&self) -> &str {
        &self.headers
    }

    /// The `Authorization` value, if the config has credentials.
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }
}

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a JSON object of the expected shape.
    Json(String),
    /// No `container_id`, or one longer than a Docker ID.
    ContainerId,
    /// A method other than GET, POST and HEAD.
    Method(String),
    /// The URL is longer than `HEALTH_URL_MAX_BYTES`.
    UrlTooLong(usize),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Json(e) => write!(f, "not a health-check config object: {e}"),
            Refused::ContainerId => write!(
                f,
                "container_id is missing or longer than {CONTAINER_ID_MAX_BYTES} bytes"
            ),
            Refused::Method(m) => write!(f, "method {m:?} is not GET, POST or HEAD"),
            Refused::UrlTooLong(len) => write!(
                f,
                "the URL has {len} bytes, more than {HEALTH_URL_MAX_BYTES} (HEALTH_URL_MAX_BYTES)"
            ),
        }
    }
}

/// A parsed config and what was dropped from it.
#[derive(Debug)]
pub struct Parsed {
    /// The check.
    pub check: Check,
    /// Parts of the config that were dropped, one line each (never a credential).
    pub notes: heapless::Vec<String, 4>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    container_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    host_id: Option<Cow<'a, str>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    expected_status_codes: Option<Cow<'a, str>>,
    #[serde(default)]
    timeout_seconds: Option<f64>,
    #[serde(default)]
    check_interval_seconds: Option<f64>,
    #[serde(default)]
    follow_redirects: Option<bool>,
    #[serde(default)]
    verify_ssl: Option<bool>,
    #[serde(borrow, default)]
    headers_json: Option<&'a RawValue>,
    #[serde(borrow, default)]
    auth_config_json: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Auth {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// Parses one `<config>` object.
pub fn parse(json: &str) -> Result<Parsed, Refused> {
    let w: Wire = serde_json::from_str(json).map_err(|e| Refused::Json(e.to_string()))?;
    let mut container_id = heapless::String::new();
    let cid = w.container_id.as_deref().unwrap_or("").trim();
    if cid.is_empty() || container_id.push_str(cid).is_err() {
        return Err(Refused::ContainerId);
    }
    let mut notes = heapless::Vec::new();
    let mut note = |text: String| {
        // Four kinds of note at most, one each.
        let _ = notes.push(text);
    };
    let mut host_id = heapless::String::new();
    if host_id
        .push_str(w.host_id.as_deref().unwrap_or(""))
        .is_err()
    {
        note(format!(
            "host_id longer than {HOST_ID_MAX_BYTES} bytes dropped"
        ));
    }
    let method = match w.method.as_deref().map(str::trim).unwrap_or("") {
        m if m.is_empty() || m.eq_ignore_ascii_case("GET") => Method::Get,
        m if m.eq_ignore_ascii_case("POST") => Method::Post,
        m if m.eq_ignore_ascii_case("HEAD") => Method::Head,
        m => return Err(Refused::Method(m.chars().take(16).collect())),
    };
    let url = w.url.as_deref().unwrap_or("").trim();
    if url.len() > HEALTH_URL_MAX_BYTES {
        return Err(Refused::UrlTooLong(url.len()));
    }
    let timeout_s = match w.timeout_seconds {
        Some(t) if t.is_finite() && t > 0.0 => (t as u32).clamp(1, HEALTH_TIMEOUT_MAX_S),
        _ => HEALTH_TIMEOUT_DEFAULT_S,
    };
    let interval_s = match w.check_interval_seconds {
        Some(t) if t.is_finite() && t >= 1.0 => (t as u32).min(HEALTH_INTERVAL_MAX_S),
        // Go compares the time since the last check with the interval on a 1 s ticker: zero or
        // less runs on every tick.
        _ => 1,
    };
    let authorization = match w.auth_config_json.map(authorization).transpose() {
        Ok(a) => a.flatten(),
        Err(why) => {
            note(format!("auth_config_json dropped: {why}"));
            None
        }
    };
    let headers = match w
        .headers_json
        .map(|raw| headers(raw, authorization.is_some(), &mut note))
    {
        None => Box::from(""),
        Some(Ok(h)) => h,
        Some(Err(why)) => {
            note(format!("headers_json dropped: {why}"));
            Box::from("")
        }
    };
    Ok(Parsed {
        check: Check {
            container_id,
            host_id,
            enabled: w.enabled.unwrap_or(false),
            method,
            url: Box::from(url),
            expected: Expected::parse(w.expected_status_codes.as_deref().unwrap_or("")),
            timeout_s,
            interval_s,
            follow_redirects: w.follow_redirects.unwrap_or(false),
            verify_ssl: w.verify_ssl.unwrap_or(false),
            headers,
            authorization,
        },
        notes,
    })
}

/// The JSON text inside a `*_json` field: `null` and `""` are none, a string is parsed again, an
/// object is taken as it is (a backend that sends the object itself).
fn inner(raw: &RawValue) -> Result<Option<Cow<'_, str>>, String> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    if text.starts_with('"') {
        let s: Cow<'_, str> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return Ok((!s.trim().is_empty()).then_some(s));
    }
    Ok(Some(Cow::Borrowed(text)))
}

/// `auth_config_json` → the `Authorization` value (`Basic <base64(user:pass)>`, `Bearer <token>`).
/// The error text never holds a credential.
fn authorization(raw: &RawValue) -> Result<Option<Box<str>>, String> {
    let Some(text) = inner(raw)? else {
        return Ok(None);
    };
    let auth: Auth = serde_json::from_str(&text)
        .map_err(|e| format!("not an auth object ({})", e.classify_name()))?;
    let kind = auth
        .kind
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let value = match kind.as_str() {
        "basic" => {
            let pair = format!(
                "{}:{}",
                auth.username.as_deref().unwrap_or(""),
                auth.password.as_deref().unwrap_or("")
            );
            let mut b64 = vec![0u8; crate::ws::base64::encoded_len(pair.len())];
            // The buffer has the encoded length, so encoding cannot fail.
            let n = crate::ws::base64::encode(pair.as_bytes(), &mut b64).unwrap_or(0);
            format!("Basic {}", String::from_utf8_lossy(&b64[..n]))
        }
        "bearer" => match auth.token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => format!("Bearer {t}"),
            _ => return Err("bearer auth without a token".to_string()),
        },
        "" | "none" => return Ok(None),
        other => {
            return Err(format!(
                "unknown auth type {:?}",
                other.chars().take(16).collect::<String>()
            ))
        }
    };
    if !value
        .bytes()
        .all(|b| b == b' ' || (0x21..0x7f).contains(&b))
    {
        return Err("the credentials hold a control or non-ASCII character".to_string());
    }
    Ok(Some(value.into_boxed_str()))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of a JSON error without its text, which can quote the input (a password).
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "wrong field types",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Headers the request writer sets itself: a user's would be sent twice or contradict the framing.
const OWN_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// `headers_json` → `Name: value\n` lines. Headers that cannot be sent are skipped with a note; the
/// error is for a field that is not a JSON object of strings.
fn headers(
    raw: &RawValue,
    has_auth: bool,
    note: &mut impl FnMut(String),
) -> Result<Box<str>, String> {
    let Some(text) = inner(raw)? else {
        return Ok(Box::from(""));
    };
    // Go decodes into map[string]string: any non-string value fails the whole field.
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
        .map_err(|e| format!("not a JSON object of strings ({})", e.classify_name()))?;
    let mut out = String::new();
    let mut count = 0;
    for (name, value) in &map {
        let value = value.trim();
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let printable = value
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b));
        let lower = name.to_ascii_lowercase();
        if OWN_HEADERS.contains(&lower.as_str()) || (has_auth && lower == "authorization") {
            continue;
        }
        if !token || !printable {
            note(format!(
                "header {:?} dropped: not a valid HTTP header",
                name.chars().take(32).collect::<String>()
            ));
            continue;
        }
        if count == HEALTH_HEADER_MAX_COUNT
            || out.len() + name.len() + value.len() + 3 > HEALTH_HEADERS_MAX_BYTES
        {
            note(format!(
                "headers past {HEALTH_HEADER_MAX_COUNT} or {HEALTH_HEADERS_MAX_BYTES} bytes dropped"
            ));
            break;
        }
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
        count += 1;
    }
    Ok(out.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists() {
        let cases: &[(&str, &[u16], &[u16])] = &[
            ("200", &[200], &[201, 199, 404]),
            ("200,201", &[200, 201], &[202]),
            (" 200 , 204 ", &[200, 204], &[201]),
            ("200-299", &[200, 250, 299], &[199, 300]),
            (
                "200-299,301,400-401",
                &[200, 301, 400, 401],
                &[300, 302, 402],
            ),
            ("", &[200], &[201]),
            ("abc", &[200], &[201]),
            ("299-200", &[200], &[250]),
            ("x,404", &[404], &[200]),
            ("-5,2-,99999", &[200], &[5]),
            ("+200", &[200], &[]),
        ];
        for (text, yes, no) in cases {
            let e = Expected::parse(text);
            for c in *yes {
                assert!(e.contains(*c), "{text:?} should accept {c}");
            }
            for c in *no {
                assert!(!e.contains(*c), "{text:?} should refuse {c}");
            }
        }
        let many = (0..40)
            .map(|i| (300 + i).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let e = Expected::parse(&many);
        assert!(
            e.contains(300) && !e.contains(339),
            "entries past the capacity are skipped"
        );
    }

    const SPEC: &str = r#"{"container_id":"b1b2c3d4e5f6","host_id":"60d2c5d3-f864-4485-9d9a-8266acdd1a95","enabled":true,"url":"http://127.0.0.1:9/health","method":"GET","expected_status_codes":"200","timeout_seconds":5,"check_interval_seconds":10,"follow_redirects":true,"verify_ssl":true,"headers_json":null,"auth_config_json":null}"#;

    #[test]
    fn the_spec_example() {
        let p = parse(SPEC).unwrap();
        assert!(p.notes.is_empty());
        let c = p.check;
        assert_eq!(c.container_id, "b1b2c3d4e5f6");
        assert_eq!(c.host_id, "60d2c5d3-f864-4485-9d9a-8266acdd1a95");
        assert!(c.enabled && c.follow_redirects && c.verify_ssl);
        assert_eq!(
            (c.method, &*c.url),
            (Method::Get, "http://127.0.0.1:9/health")
        );
        assert_eq!((c.timeout_s, c.interval_s), (5, 10));
        assert_eq!(c.headers().count(), 0);
        assert_eq!(c.authorization(), None);
    }

    #[test]
    fn go_zero_values_and_defaults() {
        let c = parse(r#"{"container_id":"abc","url":"http://h/"}"#)
            .unwrap()
            .check;
        assert!(!c.enabled && !c.follow_redirects && !c.verify_ssl);
        assert_eq!(c.method, Method::Get);
        assert_eq!(c.timeout_s, HEALTH_TIMEOUT_DEFAULT_S);
        assert_eq!(c.interval_s, 1);
        assert!(c.expected.contains(200) && !c.expected.contains(204));
        for (t, want) in [("0", 10), ("-3", 10), ("2.5", 2), ("0.2", 1), ("999", 60)] {
            let json = format!(r#"{{"container_id":"a","timeout_seconds":{t}}}"#);
            assert_eq!(parse(&json).unwrap().check.timeout_s, want, "{t}");
        }
        let json = r#"{"container_id":"a","check_interval_seconds":100000,"method":"head"}"#;
        let c = parse(json).unwrap().check;
        assert_eq!(
            (c.interval_s, c.method),
            (HEALTH_INTERVAL_MAX_S, Method::Head)
        );
        let json = r#"{"container_id":"a","method":null,"url":null,"host_id":null,"enabled":null}"#;
        assert!(parse(json).is_ok(), "nulls are Go's zero values");
    }

    #[test]
    fn refusals() {
        assert!(parse("[]").is_err());
        assert!(matches!(parse("5"), Err(Refused::Json(_))));
        assert!(matches!(parse("{"), Err(Refused::Json(_))));
        assert!(matches!(
            parse(r#"{"container_id":5}"#),
            Err(Refused::Json(_))
        ));
        assert_eq!(
            parse(r#"{"url":"http://h/"}"#).unwrap_err(),
            Refused::ContainerId
        );
        assert_eq!(
            parse(r#"{"container_id":" "}"#).unwrap_err(),
            Refused::ContainerId
        );
        let long = format!(r#"{{"container_id":"{}"}}"#, "a".repeat(65));
        assert_eq!(parse(&long).unwrap_err(), Refused::ContainerId);
        assert_eq!(
            parse(r#"{"container_id":"a","method":"DELETE"}"#).unwrap_err(),
            Refused::Method("DELETE".into())
        );
        let url = format!(
            r#"{{"container_id":"a","url":"http://h/{}"}}"#,
            "x".repeat(HEALTH_URL_MAX_BYTES)
        );
        assert!(matches!(parse(&url), Err(Refused::UrlTooLong(_))));
    }

    fn with(field: &str, value: &str) -> Parsed {
        parse(&format!(r#"{{"container_id":"a","{field}":{value}}}"#)).unwrap()
    }

    #[test]
    fn headers_from_a_json_string_or_an_object() {
        let p = with(
            "headers_json",
            r#""{\"X-Token\":\"abc\",\"Accept\":\"text/plain\"}""#,
        );
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        let h: Vec<_> = p.check.headers().collect();
        assert_eq!(h, [("Accept", "text/plain"), ("X-Token", "abc")]);
        let p = with("headers_json", r#"{"X-A":"1: 2"}"#);
        assert_eq!(p.check.headers().collect::<Vec<_>>(), [("X-A", "1: 2")]);
        for empty in [r#""""#, "null", r#""{}""#] {
            let p = with("headers_json", empty);
            assert_eq!(p.check.headers().count(), 0);
            assert!(p.notes.is_empty(), "{empty}");
        }
    }

    #[test]
    fn bad_headers_are_dropped_with_a_note() {
        for bad in [
            r#""{not json""#,
            r#""[1,2]""#,
            r#""{\"X\":1}""#,
            "5",
            r#""\"str\"""#,
        ] {
            let p = with("headers_json", bad);
            assert_eq!(p.check.headers().count(), 0, "{bad}");
            assert_eq!(p.notes.len(), 1, "{bad}");
            assert!(
                p.notes[0].starts_with("headers_json dropped"),
                "{}",
                p.notes[0]
            );
        }
        let p = with(
            "headers_json",
            r#""{\"Bad Name\":\"x\",\"X-Ok\":\"y\",\"X-Split\":\"a\\r\\nInjected: 1\",\"Host\":\"evil\",\"Content-Length\":\"9\"}""#,
        );
        assert_eq!(p.check.headers().collect::<Vec<_>>(), [("X-Ok", "y")]);
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
        let many: Vec<String> = (0..40).map(|i| format!(r#"\"X-{i:02}\":\"v\""#)).collect();
        let p = with("headers_json", &format!(r#""{{{}}}""#, many.join(",")));
        assert_eq!(p.check.headers().count(), HEALTH_HEADER_MAX_COUNT);
    }

    #[test]
    fn basic_and_bearer_auth() {
        let p = with(
            "auth_config_json",
            r#""{\"type\":\"basic\",\"username\":\"Aladdin\",\"password\":\"open sesame\"}""#,
        );
        assert_eq!(
            p.check.authorization(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        let p = with("auth_config_json", r#"{"type":"Bearer","token":"t0k"}"#);
        assert_eq!(p.check.authorization(), Some("Bearer t0k"));
        let p = parse(r#"{"container_id":"a","auth_config_json":"{\"type\":\"bearer\",\"token\":\"t\"}","headers_json":"{\"Authorization\":\"mine\",\"X\":\"y\"}"}"#).unwrap();
        assert_eq!(
            p.check.headers().collect::<Vec<_>>(),
            [("X", "y")],
            "auth wins over a header"
        );
        for none in ["null", r#""""#, r#""{\"type\":\"none\"}""#] {
            let p = with("auth_config_json", none);
            assert_eq!(
                (p.check.authorization(), p.notes.len()),
                (None, 0),
                "{none}"
            );
        }
    }

    #[test]
    fn bad_auth_is_dropped_without_leaking_it() {
        for bad in [
            r#""{\"type\":\"basic\",\"password\":\"s3cret\"""#,
            r#""{\"type\":\"digest\",\"password\":\"s3cret\"}""#,
            r#""{\"type\":\"bearer\"}""#,
            r#""{\"type\":\"bearer\",\"token\":\"s3cret\u00e9\"}""#,
            r#""{\"type\":\"basic\",\"password\":5}""#,
        ] {
            let p = with("auth_config_json", bad);
            assert_eq!(p.check.authorization(), None, "{bad}");
            assert_eq!(p.notes.len(), 1, "{bad}");
            assert!(!p.notes[0].contains("s3cret"), "{}", p.notes[0]);
        }
    }
}
