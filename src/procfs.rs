//! Small local files (procfs, sysfs, cgroupfs): one capped reader, one path builder, and the byte helpers
//! the pure parsers of `host`, `identity`, `board` and `sampler::source::cgroup` share.
//!
//! Must not: follow a file past its cap. Every read states its cap (a named constant in its module);
//! [`read_capped`] reads one byte more to tell a whole file from a cut one, and never grows `buf` beyond
//! `cap + 1` bytes. Reading these files is local file I/O, which the single thread may do (they are
//! served from kernel memory and never stall on the network).
//!
//! Numbers go to stack buffers ([`decimal`]): a PID in a path allocates nothing.
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Reads at most `cap` bytes of `path` into `buf` (cleared first). Returns whether that was the whole
/// file (`false`: the file is longer and `buf` holds its first `cap` bytes). Allocates nothing once
/// `buf` has grown to the largest file read (`read_to_end` probes for the end of file on the stack when
/// the buffer is full).
pub fn read_capped(path: &Path, buf: &mut Vec<u8>, cap: usize) -> io::Result<bool> {
    buf.clear();
    // `cap` is a small named constant; the cast cannot truncate.
    File::open(path)?.take(cap as u64 + 1).read_to_end(buf)?;
    if buf.len() > cap {
        buf.truncate(cap);
        Ok(false)
    } else {
        Ok(true)
    }
}

/// The longest valid UTF-8 prefix of `bytes` (these files are ASCII; this only guards against a cut or
/// junk).
pub fn utf8_prefix(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        // `valid_up_to` is a char boundary by definition, so this second conversion cannot fail.
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Sets `path` to `base/parts...` (empty parts skipped), reusing its allocation: no allocation once its
/// capacity suffices.
pub fn set_path(path: &mut PathBuf, base: &Path, parts: &[&str]) {
    path.as_mut_os_string().clear();
    path.push(base);
    for p in parts.iter().filter(|p| !p.is_empty()) {
        path.push(p);
    }
}

/// `n` in decimal, in a stack buffer (20 digits hold any `u64`).
pub fn decimal(mut n: u64) -> heapless::String<20> {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut s = heapless::String::new();
    for &d in &digits[i..] {
        // 20 digits hold any u64, so the push cannot fail.
        let _ = s.push(char::from(d));
    }
    s
}

/// Non-empty lines of `text`.
pub fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

/// Whitespace-separated fields of a line.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// A decimal `u64`: digits only, no sign, no overflow.
pub fn number(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_every_width() {
        for n in [0u64, 7, 10, 4242, 4_194_304, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(n).as_str(), n.to_string());
        }
    }

    #[test]
    fn set_path_skips_empty_parts_and_replaces_the_old_path() {
        let mut p = PathBuf::from("/old/long/path/that/is/replaced");
        set_path(&mut p, Path::new("/sys/fs/cgroup"), &["", "memory.stat"]);
        assert_eq!(p, Path::new("/sys/fs/cgroup/memory.stat"));
        set_path(&mut p, Path::new("/proc"), &["42", "net/dev"]);
        assert_eq!(p, Path::new("/proc/42/net/dev"));
    }

    #[test]
    fn read_capped_tells_whole_from_cut() {
        let dir = std::env::temp_dir().join(format!("procfs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut buf = Vec::new();
        assert!(read_capped(&path, &mut buf, 10).unwrap());
        assert_eq!(buf, b"0123456789");
        assert!(!read_capped(&path, &mut buf, 4).unwrap());
        assert_eq!(buf, b"0123");
        assert!(read_capped(&dir.join("missing"), &mut buf, 4).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn utf8_prefix_stops_at_junk() {
        assert_eq!(utf8_prefix(b"cpu 1 2\n"), "cpu 1 2\n");
        assert_eq!(utf8_prefix(b"ab\xffcd"), "ab");
        assert_eq!(utf8_prefix(b"\xe2\x82"), "");
    }

    #[test]
    fn number_table() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"", None),
            (b"-1", None),
            (b"1 ", None),
            (b"max", None),
        ];
        for (text, want) in cases {
            assert_eq!(number(text), *want, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
