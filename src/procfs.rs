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

/// Reads a small file into a fixed buffer (a sysfs attribute on the stack); returns the bytes read,
/// `buf.len()` when the file may not have fit.
pub fn read_into(path: &Path, buf: &mut [u8]) -> io::Result<usize> {
    let mut file = File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

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

/// How [`pread_capped`] knows it has reached the end of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A read that returns 0 bytes: always right, one more system call per file.
    Eof,
    /// A read that returns fewer bytes than asked for. Right for files the kernel renders as one record
    /// (every cgroup file that is not a PID list: kernfs `seq_show` files; `/proc/stat`, a `single_open`
    /// file): `seq_read_iter` renders the whole record, growing its buffer, and copies as much as the
    /// reader asked for. Wrong for files of many records (`net/dev`, one per interface), which a read
    /// returns one page at a time.
    Short,
    /// A read that returns fewer bytes than asked for, with room left beside them in a 4 KiB page for
    /// a record of at most this many bytes. Right for `seq_file` files of many records (`net/dev`):
    /// `seq_read_iter` fills its buffer (a page at least, 4 KiB on every Linux architecture) with
    /// whole records and stops early only when the next record does not fit or there is none; so a
    /// short read that leaves room for the longest record was stopped by the end of the file. Saves
    /// [`End::Eof`]'s extra system call on the usual small file; a longer one is read on to its end.
    Records(usize),
}

/// The smallest page size of Linux (the `seq_file` buffer is at least one page): see [`End::Records`].
const SEQ_PAGE_MIN_BYTES: usize = 4096;

/// Reads `file` from offset 0 (`pread`, so a file kept open is re-read without seeking or reopening) into
/// `buf`, at most `cap` bytes. Returns the bytes read and whether that is the whole file (`false`: the
/// file is longer than `cap` and the bytes are its first `cap`). `end` says how the end is recognised.
///
/// `buf` is resized (zero-filled) only when it must grow, and keeps its length for the next read: once it
/// has grown to the largest file, reading allocates and clears nothing. Only the returned slice is the
/// file's; the rest of `buf` is stale bytes.
pub fn pread_capped<'b>(
    file: &File,
    buf: &'b mut Vec<u8>,
    cap: usize,
    end: End,
) -> io::Result<(&'b [u8], bool)> {
    use std::os::unix::fs::FileExt;
    // One byte past the cap tells a whole file of exactly `cap` bytes from a longer one.
    let limit = cap + 1;
    let mut n = 0;
    loop {
        if n == buf.len() {
            if n >= limit {
                break;
            }
            let grown = (n * 2).clamp(PREAD_FIRST_BYTES, limit);
            buf.resize(grown, 0);
        }
        let want = buf.len() - n;
        // `n` is at most `limit`, a small named constant: the cast cannot truncate.
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                let ended = match end {
                    End::Eof => false,
                    End::Short => k < want,
                    End::Records(record_max) => {
                        k < want && k.saturating_add(record_max) <= SEQ_PAGE_MIN_BYTES
                    }
                };
                if ended {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(if n > cap {
        (&buf[..cap], false)
    } else {
        (&buf[..n], true)
    })
}

/// The first size [`pread_capped`] gives an empty buffer, which then doubles as needed. The files a cgroup
/// sample reads are at most `/proc/stat` (1,203 bytes on the 2-CPU cgroup v1 test host; about 70 bytes
/// more per CPU) and `memory.stat` (757 bytes there, about 1.5 KiB on cgroup v2): 2 KiB reads each in
/// one `pread` on a small board and keeps the worker's buffer where `read_to_end` left it before.
const PREAD_FIRST_BYTES: usize = 2 * 1024;

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

// ---- The shared procfs parsers (`/proc/stat`, `/proc/meminfo`, `/proc/<pid>/net/dev`) -----------------
//
// One parser per file, for both readers: host stats (`host`, spec §4.4) and the cgroup source
// (`sampler::source::cgroup`, Docker's rules). Each returns the raw counters; the reader applies its own
// rule to them (which `cpu` counters count, KiB or bytes). Pure functions over borrowed bytes: no
// allocation, no I/O; a value that does not fit a `u64` is an error, sums are left to the caller.

/// The head of `/proc/stat` (`proc(5)`): the aggregate `cpu ` line and the per-CPU lines after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// The first eight counters of the aggregate `cpu ` line, in `USER_HZ` ticks: user, nice, system,
    /// idle, iowait, irq, softirq, steal. Kernels before 2.6.11 print no steal: it reads 0. `guest` and
    /// `guest_nice` are already inside `user` and `nice` and are not kept.
    pub cpu: [u64; 8],
    /// `cpuN` lines before the first line that does not start with `cpu` (the kernel prints one per
    /// online CPU, right after the aggregate line).
    pub online_cpus: u32,
    /// Whether the `cpu` lines end inside the text: a complete line that is not a `cpu` line follows
    /// them, or the text is the whole file. A prefix that stops inside them may miss CPUs.
    pub cpu_lines_complete: bool,
}

/// Parses the `cpu` lines at the head of `/proc/stat`.
///
/// `whole` says whether `text` is the whole file; if not, it is a prefix (a capped read: the `intr` line
/// alone is kilobytes) and only lines whose newline is in `text` count, so a cut never turns into a
/// short number. Counting stops at the first line that does not start with `cpu` (as moby and glibc
/// count online CPUs). The aggregate line needs seven numeric counters (every kernel since 2.6.0); an
/// eighth (steal) must be numeric when present. Errors name what is missing.
pub fn parse_stat(text: &[u8], whole: bool) -> Result<Stat, &'static str> {
    let text = if whole { text } else { complete_lines_of(text) };
    let mut out = Stat {
        cpu_lines_complete: whole,
        ..Stat::default()
    };
    let mut aggregate = false;
    for line in lines(text) {
        // moby: `if len(line) < 4 || line[:3] != "cpu" { break }`.
        if line.len() < 4 || &line[..3] != b"cpu" {
            out.cpu_lines_complete = true;
            break;
        }
        if line[3] == b' ' {
            let mut counters = fields(&line[3..]);
            for (i, slot) in out.cpu.iter_mut().enumerate() {
                match counters.next() {
                    Some(f) => {
                        *slot = number(f).ok_or("seven numeric counters on the `cpu ` line")?
                    }
                    // steal (the eighth) is optional: kernels before 2.6.11 do not have it.
                    None if i == 7 => break,
                    None => return Err("seven numeric counters on the `cpu ` line"),
                }
            }
            aggregate = true;
        } else if line[3].is_ascii_digit() {
            out.online_cpus = out.online_cpus.saturating_add(1);
        }
    }
    if aggregate {
        Ok(out)
    } else {
        Err("aggregate `cpu ` line")
    }
}

/// The two keys of `/proc/meminfo` the readers use, in KiB as the file states them (`kB` means KiB);
/// `None` when the key is absent (`MemAvailable` exists since Linux 3.14).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meminfo {
    /// `MemTotal`.
    pub total_kib: Option<u64>,
    /// `MemAvailable`.
    pub available_kib: Option<u64>,
}

/// Parses `MemTotal` and `MemAvailable` of `/proc/meminfo` (`MemTotal:  24684084 kB`). `whole` as in
/// [`parse_stat`]: for a prefix only lines whose newline is in `text` count. A malformed value of one of
/// the two keys is an error; other lines are skipped.
pub fn parse_meminfo(text: &[u8], whole: bool) -> Result<Meminfo, &'static str> {
    let text = if whole { text } else { complete_lines_of(text) };
    let mut out = Meminfo::default();
    for line in lines(text) {
        let mut f = fields(line);
        let (slot, what) = match f.next() {
            Some(b"MemTotal:") => (&mut out.total_kib, "numeric MemTotal"),
            Some(b"MemAvailable:") => (&mut out.available_kib, "numeric MemAvailable"),
            _ => continue,
        };
        *slot = Some(f.next().and_then(number).ok_or(what)?);
        if out.total_kib.is_some() && out.available_kib.is_some() {
            break;
        }
    }
    Ok(out)
}

/// One interface line of `/proc/<pid>/net/dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetDev<'a> {
    /// The interface name.
    pub name: &'a [u8],
    /// Received bytes.
    pub rx_bytes: u64,
    /// Sent bytes.
    pub tx_bytes: u64,
}

/// The interfaces of a `/proc/<pid>/net/dev` (`/proc/net/dev` of a network namespace): two header lines,
/// then `name: rx_bytes rx_packets … (8 receive counters) tx_bytes …`, one line per interface. The name
/// ends at the first `:` (Linux forbids `:` in interface names, `dev_valid_name`); old kernels print
/// large counters right after it, with no space. A line of another shape is an `Err` item.
pub fn parse_net_dev(text: &[u8]) -> impl Iterator<Item = Result<NetDev<'_>, &'static str>> {
    lines(text).skip(2).map(|line| {
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or("`name: counters` lines")?;
        let mut f = fields(&line[colon + 1..]);
        match (f.next().and_then(number), f.nth(7).and_then(number)) {
            (Some(rx_bytes), Some(tx_bytes)) => Ok(NetDev {
                name: line[..colon].trim_ascii(),
                rx_bytes,
                tx_bytes,
            }),
            _ => Err("numeric rx and tx byte counters"),
        }
    })
}

/// `text` up to and with its last newline: the lines a cut read holds whole.
fn complete_lines_of(text: &[u8]) -> &[u8] {
    match text.iter().rposition(|b| *b == b'\n') {
        Some(i) => &text[..=i],
        None => &[],
    }
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

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(rel),
        )
        .unwrap()
    }

    #[test]
    fn parse_stat_table() {
        type Case = (
            &'static [u8],
            bool,
            Result<([u64; 8], u32, bool), &'static str>,
        );
        let cases: &[Case] = &[
            (
                b"cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8\nintr 1\n",
                true,
                Ok(([1, 2, 3, 4, 5, 6, 7, 8], 1, true)),
            ),
            // No steal (before 2.6.11): it reads 0.
            (
                b"cpu  1 2 3 4 5 6 7\n",
                true,
                Ok(([1, 2, 3, 4, 5, 6, 7, 0], 0, true)),
            ),
            // A prefix: only lines with their newline; the cpu lines did not end inside it.
            (
                b"cpu  1 2 3 4 5 6 7 8\ncpu0 1",
                false,
                Ok(([1, 2, 3, 4, 5, 6, 7, 8], 0, false)),
            ),
            (
                b"cpu  1 2 3 4 5 6 7 8\ncpu0 1\nintr 1\n",
                false,
                Ok(([1, 2, 3, 4, 5, 6, 7, 8], 1, true)),
            ),
            (b"cpu  1 2 3 4 5 6 7 8", false, Err("aggregate `cpu ` line")),
            (
                b"cpu  1 2 3 4 5 6\n",
                true,
                Err("seven numeric counters on the `cpu ` line"),
            ),
            (
                b"cpu  1 2 3 4 5 6 7 -8\n",
                true,
                Err("seven numeric counters on the `cpu ` line"),
            ),
            (
                b"intr 1\ncpu  1 2 3 4 5 6 7\n",
                true,
                Err("aggregate `cpu ` line"),
            ),
            (b"", true, Err("aggregate `cpu ` line")),
        ];
        for (text, whole, want) in cases {
            let got =
                parse_stat(text, *whole).map(|s| (s.cpu, s.online_cpus, s.cpu_lines_complete));
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(text));
        }
        // The recorded hosts of both readers' fixtures.
        for (rel, cpus) in [
            ("host/vm/t0/proc/stat", 2),
            ("host/pi/t0/host/proc/stat", 4),
            ("host/old-kernel/proc/stat", 2),
            ("cgroup/v1/proc/stat", 2),
            ("cgroup/v2-systemd/proc/stat", 4),
        ] {
            let text = fixture(rel);
            let whole = parse_stat(&text, true).unwrap();
            assert_eq!(whole.online_cpus, cpus, "{rel}");
            // Every prefix is an error or the same counters.
            for cut in 0..=text.len() {
                if let Ok(s) = parse_stat(&text[..cut], false) {
                    assert_eq!(s.cpu, whole.cpu, "{rel} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn parse_meminfo_table() {
        type Case = (
            &'static [u8],
            bool,
            Result<(Option<u64>, Option<u64>), &'static str>,
        );
        let cases: &[Case] = &[
            (
                b"MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable: 40 kB\n",
                true,
                Ok((Some(100), Some(40))),
            ),
            (
                b"MemTotal: 100 kB\nMemFree: 5 kB\n",
                true,
                Ok((Some(100), None)),
            ),
            (b"MemTotal: 4", true, Ok((Some(4), None))),
            (b"MemTotal: 4", false, Ok((None, None))),
            (b"MemTotal: x kB\n", true, Err("numeric MemTotal")),
            (
                b"MemTotal: 1 kB\nMemAvailable:\n",
                true,
                Err("numeric MemAvailable"),
            ),
            (b"MemTotalx: 1 kB\n", true, Ok((None, None))),
        ];
        for (text, whole, want) in cases {
            let got = parse_meminfo(text, *whole).map(|m| (m.total_kib, m.available_kib));
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(text));
        }
        let vm = parse_meminfo(&fixture("host/vm/t0/proc/meminfo"), true).unwrap();
        assert_eq!(
            (vm.total_kib, vm.available_kib),
            (Some(24684084), Some(23915812))
        );
        let v1 = parse_meminfo(&fixture("cgroup/v1/proc/meminfo"), true).unwrap();
        assert_eq!(v1.total_kib, Some(24684084));
    }

    #[test]
    fn parse_net_dev_lines() {
        let text = fixture("cgroup/v1/proc/15914/net/dev");
        let devs: Vec<_> = parse_net_dev(&text).collect::<Result<_, _>>().unwrap();
        let names: Vec<&[u8]> = devs.iter().map(|d| d.name).collect();
        assert_eq!(names, [&b"lo"[..], b"eth0"]);
        assert_eq!((devs[1].rx_bytes, devs[1].tx_bytes), (586, 0));
        let head = b"Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n";
        let bad = [head.as_slice(), b"  eth0 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n"].concat();
        assert_eq!(
            parse_net_dev(&bad).next(),
            Some(Err("`name: counters` lines"))
        );
        let short = [head.as_slice(), b"  eth0: 1 2 3\n"].concat();
        assert_eq!(
            parse_net_dev(&short).next(),
            Some(Err("numeric rx and tx byte counters"))
        );
        assert_eq!(parse_net_dev(head).count(), 0);
    }

    #[test]
    fn pread_capped_rereads_from_offset_zero() {
        let dir = std::env::temp_dir().join(format!("procfs-pread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let long: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&path, &long).unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = Vec::new();
        for end in [End::Eof, End::Short, End::Records(512)] {
            // Grows past the first size, twice over the same descriptor.
            for _ in 0..2 {
                let (text, whole) = pread_capped(&file, &mut buf, 8192, end).unwrap();
                assert!(whole);
                assert_eq!(text, &long[..]);
            }
            let (text, whole) = pread_capped(&file, &mut buf, 4999, end).unwrap();
            assert!(!whole);
            assert_eq!(text, &long[..4999]);
            let (text, whole) = pread_capped(&file, &mut buf, 5000, end).unwrap();
            assert!(whole && text.len() == 5000);
        }
        // The file changes under the open descriptor: the next read sees the new bytes.
        std::fs::write(&path, b"42\n").unwrap();
        let (text, whole) = pread_capped(&file, &mut buf, 8192, End::Short).unwrap();
        assert_eq!((text, whole), (&b"42\n"[..], true));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `End::Records` on a real `seq_file` of many records: the same interfaces as reading to the end.
    #[test]
    fn records_end_reads_a_whole_net_dev() {
        let Ok(file) = File::open("/proc/self/net/dev") else {
            return; // No procfs here: nothing to compare.
        };
        let names = |end| {
            let mut buf = Vec::new();
            let (text, whole) = pread_capped(&file, &mut buf, 64 * 1024, end).unwrap();
            assert!(whole);
            text.split(|b| *b == b'\n')
                .filter_map(|l| l.iter().position(|b| *b == b':').map(|i| l[..i].to_vec()))
                .collect::<Vec<_>>()
        };
        let all = names(End::Eof);
        assert!(!all.is_empty());
        assert_eq!(names(End::Records(512)), all);
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
