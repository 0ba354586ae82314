//! Request heads (RFC 9112 §3), written into a caller buffer. No I/O.
//!
//! The target is checked before it is written: a space, CR, LF or other control byte would let a
//! container name or ID from the network split the request, so it is refused; callers percent-encode
//! values with [`push_encoded`].
use super::Error;
use crate::limits::REQUEST_TARGET_MAX_BYTES;

/// Writes `METHOD target HTTP/1.1` and the headers into `out` (cleared first). `body_len` adds a
/// `Content-Length` (and the body is written by the caller after the head); `None` sends none.
/// `extra` are additional header lines, each `(name, value)`, checked like the target.
pub fn emit(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    extra: &[(&str, &str)],
    body: Option<(&str, usize)>,
) -> Result<(), Error> {
    check_token(method)?;
    check_target(target)?;
    check_value(host)?;
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    // A caller's own User-Agent (a health check's headers) replaces ours rather than doubling it.
    if !extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
    {
        out.extend_from_slice(b"User-Agent: dockmon-agent/");
        out.extend_from_slice(crate::VERSION.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra {
        check_token(name)?;
        check_value(value)?;
        push_header(out, name, value);
    }
    if let Some((content_type, len)) = body {
        check_value(content_type)?;
        push_header(out, "Content-Type", content_type);
        push_header(
            out,
            "Content-Length",
            crate::procfs::decimal(len as u64).as_str(),
        );
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A method or header name: RFC 9110 §5.6.2 token characters only.
fn check_token(s: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(
            "method or header name is not an HTTP token",
        ))
    }
}

/// A header value: visible ASCII and spaces, no CR or LF.
fn check_value(s: &str) -> Result<(), Error> {
    if s.bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
    {
        Ok(())
    } else {
        Err(Error::BadRequest(
            "header value holds a control or non-ASCII byte",
        ))
    }
}

/// An origin-form target: starts with `/`, visible ASCII only, at most `REQUEST_TARGET_MAX_BYTES`.
fn check_target(s: &str) -> Result<(), Error> {
    if !s.starts_with('/') {
        return Err(Error::BadRequest("request target must start with '/'"));
    }
    if s.len() > REQUEST_TARGET_MAX_BYTES {
        return Err(Error::BadRequest(
            "request target longer than REQUEST_TARGET_MAX_BYTES",
        ));
    }
    if s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(Error::BadRequest(
            "request target holds a space, control or non-ASCII byte",
        ))
    }
}

/// Appends `value` percent-encoded (RFC 3986 §2.1: everything but unreserved characters), for a path
/// segment or a query value.
pub fn push_encoded(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_get_without_body() {
        let mut out = Vec::new();
        emit(&mut out, "GET", "/v1.41/info", "docker", &[], None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text
            .starts_with("GET /v1.41/info HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockmon-agent/"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("Content-Length"));
    }

    #[test]
    fn writes_a_post_with_length_and_extra_headers() {
        let mut out = Vec::new();
        emit(
            &mut out,
            "POST",
            "/x?a=1",
            "h",
            &[("Upgrade", "websocket")],
            Some(("application/json", 1234567)),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nUpgrade: websocket\r\n"));
        assert!(text.contains("\r\nUser-Agent: dockmon-agent/"));
        let mut own = Vec::new();
        emit(
            &mut own,
            "GET",
            "/",
            "h",
            &[("user-agent", "probe/1")],
            None,
        )
        .unwrap();
        let own = String::from_utf8(own).unwrap();
        assert_eq!(
            own.to_ascii_lowercase().matches("user-agent").count(),
            1,
            "{own}"
        );
        assert!(
            text.contains("\r\nContent-Type: application/json\r\nContent-Length: 1234567\r\n\r\n")
        );
    }

    #[test]
    fn refuses_targets_and_values_that_could_split_the_request() {
        let mut out = Vec::new();
        for target in ["/a b", "/a\r\nX: y", "a", "/\u{e9}"] {
            assert!(
                emit(&mut out, "GET", target, "h", &[], None).is_err(),
                "{target:?}"
            );
        }
        assert!(emit(&mut out, "GET", "/", "h", &[("X", "a\r\nb")], None).is_err());
        assert!(emit(&mut out, "GET", "/", "h", &[("X Y", "a")], None).is_err());
        assert!(emit(&mut out, "G ET", "/", "h", &[], None).is_err());
        let long = format!("/{}", "a".repeat(REQUEST_TARGET_MAX_BYTES));
        assert!(emit(&mut out, "GET", &long, "h", &[], None).is_err());
    }

    #[test]
    fn percent_encodes_everything_but_unreserved() {
        let mut s = String::new();
        push_encoded(&mut s, "my name/../x?&=é~_.-");
        assert_eq!(s, "my%20name%2F..%2Fx%3F%26%3D%C3%A9~_.-");
    }

    #[test]
    fn formats_lengths() {
        assert_eq!(crate::procfs::decimal(0).as_str(), "0");
        assert_eq!(
            crate::procfs::decimal(u64::MAX).as_str(),
            "18446744073709551615"
        );
    }
}
