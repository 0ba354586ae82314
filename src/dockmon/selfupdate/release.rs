//! Where this project's release files are and how to read them, for the native self-update. Pure: no
//! I/O, no clock.
//!
//! A release (.github/workflows/build-agent.yml, scripts/dist) publishes `dockmon-agent-linux-amd64`,
//! `-arm64` and `-armv7` and a `SHA256SUMS` in `sha256sum` format under the tag `v<version>`, so the
//! files of a version are at `https://github.com/dockmon-agent/dockmon-agent/releases/download/v<version>/`
//! and those of the newest release at `…/releases/latest/download/` (install.sh reads the same
//! folders). `SELF_UPDATE_URL` names another folder; a `{version}` in it stands for the version asked for.

/// This project's release downloads (Cargo.toml `repository`, install.sh `REPO_URL`).
pub const RELEASES: &str = "https://github.com/dockmon-agent/dockmon-agent/releases";
/// The checksum file of a release.
pub const SUMS: &str = "SHA256SUMS";
/// Longest version accepted from DockMon (spec 2.4: the backend keeps 50 characters).
const VERSION_MAX_BYTES: usize = 50;

/// The release asset built for the architecture this binary was compiled for (`None`: no release
/// is built for it).
pub fn asset() -> Option<&'static str> {
    if cfg!(target_arch = "x86_64") {
        Some("dockmon-agent-linux-amd64")
    } else if cfg!(target_arch = "aarch64") {
        Some("dockmon-agent-linux-arm64")
    } else if cfg!(target_arch = "arm") {
        Some("dockmon-agent-linux-armv7")
    } else {
        None
    }
}

/// The version DockMon asked for, checked for a URL path: a leading `v` dropped, `None` when empty or
/// absent. Only letters, digits and `. _ + -` (the characters scripts/dist allows in `VERSION`).
pub fn check_version(v: Option<&str>) -> Result<Option<&str>, String> {
    let Some(v) = v.map(str::trim).map(|v| v.strip_prefix('v').unwrap_or(v)) else {
        return Ok(None);
    };
    if v.is_empty() || v.eq_ignore_ascii_case("latest") {
        return Ok(None);
    }
    if v.len() > VERSION_MAX_BYTES
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    {
        return Err(format!(
            "refusing version {:?}: a version has at most {VERSION_MAX_BYTES} letters, digits and . _ + -",
            v.chars().take(60).collect::<String>()
        ));
    }
    Ok(Some(v))
}

/// The folder (no trailing `/`) that holds the asset and `SHA256SUMS` of `version` (`None`: the
/// newest release). `setting` is `SELF_UPDATE_URL`.
pub fn folder(setting: Option<&str>, version: Option<&str>) -> Result<String, String> {
    match (setting, version) {
        (None, Some(v)) => Ok(format!("{RELEASES}/download/v{v}")),
        (None, None) => Ok(format!("{RELEASES}/latest/download")),
        (Some(s), v) if s.contains("{version}") => match v {
            Some(v) => Ok(s.replace("{version}", v).trim_end_matches('/').to_string()),
            None => Err(format!(
                "SELF_UPDATE_URL={s} needs a version and DockMon sent none"
            )),
        },
        (Some(s), _) => Ok(s.trim_end_matches('/').to_string()),
    }
}

/// The version the folder of [`folder`] is for, which the downloaded binary must then report:
/// `version` when the URL names it, `None` for a fixed folder (`SELF_UPDATE_URL` without
/// `{version}`, such as `…/releases/latest/download`), whose binary may be any version.
pub fn pinned<'a>(setting: Option<&str>, version: Option<&'a str>) -> Option<&'a str> {
    version.filter(|_| setting.map_or(true, |s| s.contains("{version}")))
}

/// The SHA-256 (32 bytes) that `sums` (a `SHA256SUMS` file: `<64 hex>  <name>` or `<64 hex> *<name>`
/// per line) lists for `name`.
pub fn find_sum(sums: &[u8], name: &str) -> Result<[u8; 32], String> {
    let text = std::str::from_utf8(sums).map_err(|_| format!("{SUMS} is not text"))?;
    for line in text.lines() {
        let Some((hex, file)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let file = file.trim_start();
        let file = file.strip_prefix('*').unwrap_or(file);
        if file == name {
            return parse_hex(hex).ok_or_else(|| {
                format!("{SUMS} lists {name} with {hex:?}, which is not a SHA-256 in hex")
            });
        }
    }
    Err(format!("{SUMS} has no entry for {name}"))
}

/// 64 hex digits → 32 bytes.
pub fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// 32 bytes → 64 lower-case hex digits.
pub fn hex(sum: &[u8; 32]) -> String {
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// The version mark every build carries (in its `User-Agent` for downloads, so the linker keeps it):
/// the self-update reads a downloaded binary's version from its bytes instead of running it.
pub const MARK: &str = concat!("dockmon-agent-version=", env!("DOCKMON_AGENT_VERSION"), ";");
/// What precedes the version in [`MARK`].
const MARK_PREFIX: &[u8] = b"dockmon-agent-version=";
/// Longest version in a mark.
const MARK_VERSION_MAX_BYTES: usize = 64;

/// Looks for [`MARK`] in `window`. Returns the version, or `None` when no whole mark is in it. Scan a
/// file in windows that overlap by [`MARK_OVERLAP`] bytes so a mark across two reads is found.
pub fn find_mark(window: &[u8]) -> Option<&str> {
    let mut at = 0;
    while let Some(i) = window[at..]
        .windows(MARK_PREFIX.len())
        .position(|w| w == MARK_PREFIX)
    {
        let start = at + i + MARK_PREFIX.len();
        let rest = &window[start..window.len().min(start + MARK_VERSION_MAX_BYTES + 1)];
        if let Some(end) = rest.iter().position(|&b| b == b';') {
            let v = &rest[..end];
            if !v.is_empty()
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(b))
            {
                return std::str::from_utf8(v).ok();
            }
        }
        at = start;
    }
    None
}

/// How many bytes consecutive windows given to [`find_mark`] must share.
pub const MARK_OVERLAP: usize = 22 + MARK_VERSION_MAX_BYTES + 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_follow_the_release_layout() {
        assert_eq!(
            folder(None, Some("0.3.0")).unwrap(),
            "https://github.com/dockmon-agent/dockmon-agent/releases/download/v0.3.0"
        );
        assert_eq!(
            folder(None, None).unwrap(),
            "https://github.com/dockmon-agent/dockmon-agent/releases/latest/download"
        );
        assert_eq!(
            folder(Some("https://m/r/v{version}/"), Some("1.2")).unwrap(),
            "https://m/r/v1.2"
        );
        assert!(folder(Some("https://m/r/v{version}"), None).is_err());
        assert_eq!(
            folder(Some("https://m/fixed"), Some("9")).unwrap(),
            "https://m/fixed"
        );
        assert_eq!(pinned(None, Some("1")), Some("1"));
        assert_eq!(pinned(Some("https://m/v{version}"), Some("1")), Some("1"));
        assert_eq!(pinned(Some("https://m/latest"), Some("1")), None);
        assert_eq!(check_version(Some(" v1.1.2 ")).unwrap(), Some("1.1.2"));
        assert_eq!(check_version(Some("latest")).unwrap(), None);
        assert_eq!(check_version(Some("")).unwrap(), None);
        assert_eq!(check_version(None).unwrap(), None);
        assert!(check_version(Some("1.0/../../x")).is_err());
        assert!(check_version(Some("1 2")).is_err());
        assert!(asset().is_some_and(|a| a.starts_with("dockmon-agent-linux-")));
    }

    #[test]
    fn sums_are_found_by_name() {
        let a = "a".repeat(64);
        let b = "0123456789ABCDEF".repeat(4);
        let sums =
            format!("{a}  dockmon-agent-linux-amd64\n{b} *dockmon-agent-linux-arm64\nbad line\n");
        assert_eq!(
            find_sum(sums.as_bytes(), "dockmon-agent-linux-amd64").unwrap(),
            [0xaa; 32]
        );
        let arm = find_sum(sums.as_bytes(), "dockmon-agent-linux-arm64").unwrap();
        assert_eq!(hex(&arm), b.to_ascii_lowercase());
        let e = find_sum(sums.as_bytes(), "dockmon-agent-linux-armv7").unwrap_err();
        assert!(e.contains("no entry"), "{e}");
        let e = find_sum(
            b"xyz  dockmon-agent-linux-armv7\n",
            "dockmon-agent-linux-armv7",
        )
        .unwrap_err();
        assert!(e.contains("not a SHA-256"), "{e}");
        assert!(find_sum(&[0xff, 0xfe], "x").is_err());
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn marks_name_the_version() {
        assert_eq!(MARK_OVERLAP, MARK_PREFIX.len() + MARK_VERSION_MAX_BYTES + 1);
        assert_eq!(
            find_mark(MARK.as_bytes()),
            Some(env!("DOCKMON_AGENT_VERSION"))
        );
        assert_eq!(
            find_mark(b"\x7fELF..dockmon-agent-version=;dockmon-agent-version=0.3.0;.."),
            Some("0.3.0")
        );
        assert_eq!(find_mark(b"dockmon-agent-version=0.3.0"), None, "cut");
        assert_eq!(find_mark(b"dockmon-agent-version=a b;"), None);
        assert_eq!(find_mark(b"DockMon Agent v1.1.2"), None);
    }
}
