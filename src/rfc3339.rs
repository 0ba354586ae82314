//! RFC 3339 UTC time stamps formatted into stack strings (no time-zone database, no allocation).
//!
//! DockMon's payloads use two forms: seconds (`2026-11-29T00:14:00Z`, `container_stats.timestamp`) and
//! nanoseconds (`2026-11-29T00:14:00.123456789Z`, envelope `timestamp`).
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A formatted stamp; 35 bytes hold the nanosecond form.
pub type Stamp = heapless::String<40>;

/// Seconds and nanoseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn seconds(secs: i64) -> Stamp {
    let mut s = Stamp::new();
    write_civil(&mut s, secs);
    let _ = s.push('Z');
    s
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn nanos(secs: i64, nanos: u32) -> Stamp {
    let mut s = Stamp::new();
    write_civil(&mut s, secs);
    // 19 + 10 + 1 bytes fit the 40-byte stamp, so the write cannot fail.
    let _ = write!(s, ".{:09}Z", nanos.min(999_999_999));
    s
}

fn write_civil(s: &mut Stamp, secs: i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // At most 19 bytes for years 0..=9999; the stamp holds 40.
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y.clamp(0, 9999),
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days` algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(seconds(0).as_str(), "1970-01-01T00:00:00Z");
        assert_eq!(seconds(951_782_400).as_str(), "2000-02-29T00:00:00Z");
        assert_eq!(seconds(1_764_375_240).as_str(), "2025-11-29T00:14:00Z");
        assert_eq!(seconds(1_795_911_240).as_str(), "2026-11-29T00:14:00Z");
        assert_eq!(
            nanos(1_795_911_240, 123_456_789).as_str(),
            "2026-11-29T00:14:00.123456789Z"
        );
        assert_eq!(
            nanos(4_107_542_399, 5).as_str(),
            "2100-02-28T23:59:59.000000005Z"
        );
        assert_eq!(seconds(-1).as_str(), "1969-12-31T23:59:59Z");
    }
}
