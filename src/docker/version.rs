//! Docker API versions: parsing `Api-Version` and choosing the one we speak. Pure.
//!
//! Like the Docker SDK: `/_ping` answers with the engine's newest version in `Api-Version`; we call
//! every endpoint under `/v<min(server, API_VERSION_MAX)>`. A ping without the header means an engine
//! older than API 1.25, for which the SDK assumes 1.24; so do we.
use super::Error;
use crate::limits::{API_VERSION_MAX, API_VERSION_MIN, API_VERSION_ONE_SHOT};
use std::fmt;

/// A Docker API version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Always 1 so far.
    pub major: u16,
    /// 24 (Docker 1.12) to 51 (Docker 28/29) at the time of writing.
    pub minor: u16,
}

impl ApiVersion {
    /// From a `(major, minor)` pair of `limits`.
    pub const fn of(pair: (u16, u16)) -> Self {
        ApiVersion {
            major: pair.0,
            minor: pair.1,
        }
    }

    /// Parses `1.41`. Anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.trim().split_once('.')?;
        let ok = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
        if !ok(major) || !ok(minor) {
            return None;
        }
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// Whether `/containers/{id}/stats` takes `one-shot=true` (API 1.41, Docker 20.10).
    pub fn has_one_shot(self) -> bool {
        self >= Self::of(API_VERSION_ONE_SHOT)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version to speak, from the ping's `Api-Version` header (if any).
pub fn negotiate(header: Option<&str>) -> Result<ApiVersion, Error> {
    let server = match header.map(str::trim).filter(|h| !h.is_empty()) {
        None => return Ok(ApiVersion::of(API_VERSION_MIN)),
        Some(h) => ApiVersion::parse(h).ok_or_else(|| Error::ApiTooOld {
            server: format!("{h:?} (unparsable)"),
        })?,
    };
    if server < ApiVersion::of(API_VERSION_MIN) {
        return Err(Error::ApiTooOld {
            server: server.to_string(),
        });
    }
    Ok(server.min(ApiVersion::of(API_VERSION_MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (Some("1.41"), Some("1.41")), // Docker 20.10
            (Some("1.44"), Some("1.44")), // Docker 25
            (Some("1.51"), Some("1.51")), // Docker 28
            (Some("1.52"), Some("1.51")), // newer than us: speak ours
            (Some("2.0"), Some("1.51")),
            (Some(" 1.43 "), Some("1.43")),
            (None, Some("1.24")),
            (Some(""), Some("1.24")),
            (Some("1.12"), None),
            (Some("banana"), None),
            (Some("1."), None),
            (Some("1.4a"), None),
            (Some("99999.1"), None),
        ];
        for (header, expected) in cases {
            let got = negotiate(*header).ok().map(|v| v.to_string());
            assert_eq!(got.as_deref(), *expected, "{header:?}");
        }
    }

    #[test]
    fn one_shot_from_1_41() {
        assert!(!ApiVersion::parse("1.40").unwrap().has_one_shot());
        assert!(ApiVersion::parse("1.41").unwrap().has_one_shot());
        assert!(ApiVersion::parse("1.51").unwrap().has_one_shot());
    }
}
