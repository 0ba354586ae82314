//! The pure parsers of the cgroup source: each turns the bytes of one cgroup or procfs file into the
//! numbers Docker would take from it (the rules, with moby's code they copy, are in the module doc of
//! [`super`]). No file access, clock or allocation here; [`super::CgroupSource`] reads the files. The
//! host-wide files (`/proc/stat`, `/proc/meminfo`, `net/dev`) are parsed by `procfs`, shared with host
//! stats; the functions here apply Docker's rules to what it parsed.
use super::*;
use crate::procfs;

/// What Docker takes from `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// user + nice + system + idle + iowait + irq + softirq of the `cpu ` line, in nanoseconds
    /// (ticks × 10⁹ / [`USER_HZ`], saturating).
    pub system_cpu_ns: u64,
    /// `cpuN` lines before the first line that does not start with `cpu`.
    pub online_cpus: u32,
}

/// What Docker takes from a `/proc/stat` reading ([`procfs::parse_stat`], see the module doc): the first
/// seven counters of the `cpu ` line (steal left out) and the count of `cpuN` lines. The `cpu` lines must
/// end inside the text read, else `Err`, rather than a CPU count cut short.
pub fn docker_proc_stat(stat: &procfs::Stat) -> Result<ProcStat, &'static str> {
    if !stat.cpu_lines_complete {
        return Err("complete `cpu` lines within the read limit");
    }
    let ticks = stat.cpu[..7].iter().fold(0u64, |a, &x| a.saturating_add(x));
    Ok(ProcStat {
        system_cpu_ns: ticks.saturating_mul(NS_PER_TICK),
        online_cpus: stat.online_cpus,
    })
}

/// `MemTotal` in bytes from a `/proc/meminfo` reading ([`procfs::parse_meminfo`]); the file says kB,
/// meaning KiB, as Docker's `ReadMemInfo` reads it.
pub fn mem_total_bytes(m: &procfs::Meminfo) -> Result<u64, &'static str> {
    m.total_kib
        .ok_or("MemTotal line")?
        .checked_mul(1024)
        .ok_or("MemTotal below 2^64 bytes")
}

/// A file holding one number and a newline (`cpuacct.usage`, `memory.usage_in_bytes`, `pids.current`).
pub fn parse_number(text: &[u8]) -> Result<u64, &'static str> {
    let mut f = fields(text);
    match (f.next().and_then(number), f.next()) {
        (Some(n), None) => Ok(n),
        _ => Err("single number"),
    }
}

/// A limit file: a number, or `max` for none (cgroup v2 `memory.max`), which reads as `u64::MAX` (as
/// containerd reads it; Docker then clamps it to the host's memory).
pub fn parse_limit(text: &[u8]) -> Result<u64, &'static str> {
    let mut f = fields(text);
    match (f.next(), f.next()) {
        (Some(b"max"), None) => Ok(u64::MAX),
        (Some(n), None) => number(n).ok_or("number or `max`"),
        _ => Err("number or `max`"),
    }
}

/// `usage_usec` of a cgroup v2 `cpu.stat`, in nanoseconds (× 1000, saturating).
pub fn parse_cpu_stat(text: &[u8]) -> Result<u64, &'static str> {
    for line in lines(text) {
        let mut f = fields(line);
        if f.next() == Some(b"usage_usec") {
            let usec = f.next().and_then(number).ok_or("numeric usage_usec")?;
            return Ok(usec.saturating_mul(1000));
        }
    }
    Err("usage_usec line")
}

/// The two `memory.stat` counters the working set needs; `None` when the key is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStat {
    /// `total_inactive_file` (cgroup v1 only).
    pub total_inactive_file: Option<u64>,
    /// `inactive_file` (both versions).
    pub inactive_file: Option<u64>,
}

/// Parses `memory.stat` (`key value` lines). Other keys are skipped; a malformed value of one of our
/// two keys is an error.
pub fn parse_memory_stat(text: &[u8]) -> Result<MemStat, &'static str> {
    let mut out = MemStat::default();
    for line in lines(text) {
        let mut f = fields(line);
        let slot = match f.next() {
            Some(b"total_inactive_file") => &mut out.total_inactive_file,
            Some(b"inactive_file") => &mut out.inactive_file,
            _ => continue,
        };
        *slot = Some(f.next().and_then(number).ok_or("numeric inactive_file")?);
    }
    Ok(out)
}

/// The working set from a memory.stat: [`crate::stats::working_set`] (the `docker stats` CLI rule, which
/// `docker::stats` applies to a Docker document). A unit test checks it against `docker::stats::parse` on
/// the same numbers.
pub fn working_set(usage: u64, stat: MemStat) -> u64 {
    crate::stats::working_set(usage, stat.total_inactive_file, stat.inactive_file)
}

/// Bytes read and written, summed over devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub write: u64,
    /// Device lines seen (a v1 CFQ file with none makes Docker fall back to the throttle file).
    pub entries: usize,
}

/// Parses a cgroup v1 blkio bytes file (`blkio.throttle.io_service_bytes`,
/// `blkio.io_service_bytes_recursive`): `MAJ:MIN Op value` lines and a closing `Total value`, fields split
/// on spaces and colons as containerd splits them. `Read` and `Write` count (any case, as `docker::stats`
/// sums ops); `Sync`, `Async`, `Discard` and `Total` do not. A line of any other shape is an error, as in
/// containerd.
pub fn parse_blkio(text: &[u8]) -> Result<Io, &'static str> {
    let mut out = Io::default();
    for line in lines(text) {
        let mut f = line
            .split(|b| *b == b' ' || *b == b':')
            .filter(|f| !f.is_empty());
        let parts = [f.next(), f.next(), f.next(), f.next(), f.next()];
        match parts {
            [Some(b"Total"), Some(v), None, ..] if number(v).is_some() => {}
            [Some(maj), Some(min), Some(op), Some(v), None] => {
                let (Some(_), Some(_), Some(v)) = (number(maj), number(min), number(v)) else {
                    return Err("`MAJ:MIN Op bytes` lines");
                };
                out.entries += 1;
                if op.eq_ignore_ascii_case(b"read") {
                    out.read = out.read.saturating_add(v);
                } else if op.eq_ignore_ascii_case(b"write") {
                    out.write = out.write.saturating_add(v);
                }
            }
            // containerd also accepts `MAJ:MIN value` lines (files without ops); they add to no op.
            [Some(maj), Some(min), Some(v), None, _] => {
                if number(maj).is_none() || number(min).is_none() || number(v).is_none() {
                    return Err("`MAJ:MIN Op bytes` lines");
                }
                out.entries += 1;
            }
            _ => return Err("`MAJ:MIN Op bytes` lines"),
        }
    }
    Ok(out)
}

/// Parses a cgroup v2 `io.stat`: one `MAJ:MIN key=value …` line per device; `rbytes` and `wbytes` are
/// summed. Other keys (`rios`, `dbytes`, and the cost and latency keys some controllers add) are skipped.
pub fn parse_io_stat(text: &[u8]) -> Result<Io, &'static str> {
    let mut out = Io::default();
    for line in lines(text) {
        let mut f = fields(line);
        let dev = f.next().ok_or("`MAJ:MIN key=value` lines")?;
        if !dev.contains(&b':') {
            return Err("`MAJ:MIN key=value` lines");
        }
        out.entries += 1;
        for kv in f {
            let Some(eq) = kv.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (key, value) = (&kv[..eq], &kv[eq + 1..]);
            let slot = match key {
                b"rbytes" => &mut out.read,
                b"wbytes" => &mut out.write,
                _ => continue,
            };
            *slot = slot.saturating_add(number(value).ok_or("numeric rbytes and wbytes")?);
        }
    }
    Ok(out)
}

/// Bytes received and sent, summed over interfaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Net {
    /// Received bytes.
    pub rx: u64,
    /// Sent bytes.
    pub tx: u64,
}

/// The network counters Docker reports from a `/proc/<pid>/net/dev` ([`procfs::parse_net_dev`]): every
/// interface but `lo`, summed (saturating). A malformed line is an error.
pub fn docker_net(text: &[u8]) -> Result<Net, &'static str> {
    let mut out = Net::default();
    for dev in procfs::parse_net_dev(text) {
        let dev = dev?;
        if dev.name != b"lo" {
            out.rx = out.rx.saturating_add(dev.rx_bytes);
            out.tx = out.tx.saturating_add(dev.tx_bytes);
        }
    }
    Ok(out)
}

/// The cgroup path of a process from `/proc/<pid>/cgroup`, for the container's hierarchy: the `0::` line
/// on cgroup v2, the line whose controller list has `memory` on v1. Returns the path without its leading
/// `/`, or `None` when there is no such line or the path is not one we follow: not absolute, with a `.`
/// or `..` component (a path outside the reader's cgroup namespace shows as `/../…`), or not UTF-8.
pub fn parse_pid_cgroup(text: &[u8], v2: bool) -> Option<&str> {
    for line in lines(text) {
        let mut parts = line.splitn(3, |b| *b == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let ours = if v2 {
            id == b"0" && controllers.is_empty()
        } else {
            controllers.split(|b| *b == b',').any(|c| c == b"memory")
        };
        if !ours {
            continue;
        }
        let path = core::str::from_utf8(path).ok()?.strip_prefix('/')?;
        if path.split('/').any(|c| c == ".." || c == ".") {
            return None;
        }
        return Some(path);
    }
    None
}

/// The PIDs of a `cgroup.procs` file (one decimal PID per line). A line that is not a PID is skipped:
/// the kernel writes only PIDs, and a skipped line can only cost the lookup a candidate.
pub fn parse_procs(text: &[u8]) -> impl Iterator<Item = u32> + '_ {
    lines(text).filter_map(|l| number(l.trim_ascii()).and_then(|n| u32::try_from(n).ok()))
}

/// The innermost PID of a `/proc/<pid>/status`: the last number of its `NSpid:` line (Linux 4.1+), the
/// process's PID in its own PID namespace; `None` without that line or with a malformed one. A
/// container's init is the process whose innermost PID is 1 (unless it shares the host's PID namespace,
/// `--pid host`, where the line holds the host PID only).
pub fn parse_nspid_innermost(status: &[u8]) -> Option<u64> {
    for line in lines(status) {
        if let Some(rest) = line.strip_prefix(b"NSpid:") {
            let mut last = None;
            for f in fields(rest) {
                last = Some(number(f)?);
            }
            return last;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;

    // What the source takes from each host-wide file: the shared parser, then Docker's rule.
    fn parse_proc_stat(text: &[u8], whole: bool) -> Result<ProcStat, &'static str> {
        docker_proc_stat(&procfs::parse_stat(text, whole)?)
    }

    fn parse_meminfo_total(text: &[u8]) -> Result<u64, &'static str> {
        mem_total_bytes(&procfs::parse_meminfo(text, true)?)
    }

    fn parse_net_dev(text: &[u8]) -> Result<Net, &'static str> {
        docker_net(text)
    }

    #[test]
    fn proc_stat_sums_seven_counters_and_counts_cpu_lines() {
        type Case = (&'static [u8], Result<(u64, u32), &'static str>);
        let cases: &[Case] = &[
            // steal (8th), guest and guest_nice are left out, as Docker's parts[1:8].
            (
                b"cpu  1 2 3 4 5 6 7 1000 1000 1000\ncpu0 1 2 3 4 5 6 7\nintr 1\n",
                Ok((280_000_000, 1)),
            ),
            (
                b"cpu 1 1 1 1 1 1 1\ncpu0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0\n",
                Ok((70_000_000, 2)),
            ),
            // Counting stops at the first line that is not a cpu line.
            (
                b"cpu  1 0 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0\nintr 5\ncpu1 1 0 0 0 0 0 0\n",
                Ok((10_000_000, 1)),
            ),
            // Old kernels (no steal) have exactly seven counters.
            (b"cpu  1 2 3 4 5 6 7\n", Ok((280_000_000, 0))),
            (
                b"cpu  1 2 3 4 5 6\n",
                Err("seven numeric counters on the `cpu ` line"),
            ),
            (
                b"cpu  1 2 3 x 5 6 7\n",
                Err("seven numeric counters on the `cpu ` line"),
            ),
            (
                b"cpu  1 2 3 -4 5 6 7\n",
                Err("seven numeric counters on the `cpu ` line"),
            ),
            (b"cpu0 1 2 3 4 5 6 7\n", Err("aggregate `cpu ` line")),
            (
                b"intr 1\ncpu  1 2 3 4 5 6 7\n",
                Err("aggregate `cpu ` line"),
            ),
            (b"", Err("aggregate `cpu ` line")),
            // Saturates instead of wrapping (Docker 20.10's uint64 would wrap).
            (
                b"cpu  18446744073709551615 1 0 0 0 0 0\n",
                Ok((u64::MAX, 0)),
            ),
            (
                b"cpu  18446744073709551616 0 0 0 0 0 0\n",
                Err("seven numeric counters on the `cpu ` line"),
            ),
        ];
        for (text, want) in cases {
            let got = parse_proc_stat(text, true).map(|s| (s.system_cpu_ns, s.online_cpus));
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(text));
        }
        // The recorded host: 2 CPUs; 382042+0+62889+437204+13873+0+937 = 896945 ticks.
        let text = fs::read(fixture("v1/proc/stat")).unwrap();
        assert_eq!(
            parse_proc_stat(&text, true),
            Ok(ProcStat {
                system_cpu_ns: 896_945 * 10_000_000,
                online_cpus: 2
            })
        );
    }

    #[test]
    fn proc_stat_prefix_must_hold_every_cpu_line() {
        for tree in ["v1", "v2-systemd"] {
            let text = fs::read(fixture(tree).join("proc/stat")).unwrap();
            let whole = parse_proc_stat(&text, true).unwrap();
            // The cpu block ends with the newline before `intr`; a cut anywhere after that newline and the
            // next complete line gives the whole answer, any earlier cut is an error, never a short count.
            let intr = text.windows(5).position(|w| w == b"intr ").unwrap();
            let intr_end = intr + text[intr..].iter().position(|b| *b == b'\n').unwrap();
            let first_end = text.iter().position(|b| *b == b'\n').unwrap();
            for cut in 0..=text.len() {
                let got = parse_proc_stat(&text[..cut], false);
                if cut > intr_end {
                    assert_eq!(got, Ok(whole), "{tree} cut at {cut}");
                } else if cut <= first_end {
                    // Not even the aggregate line is whole.
                    assert_eq!(got, Err("aggregate `cpu ` line"), "{tree} cut at {cut}");
                } else {
                    assert_eq!(
                        got,
                        Err("complete `cpu` lines within the read limit"),
                        "{tree} cut at {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn meminfo_total_in_bytes() {
        let cases: &[(&[u8], Result<u64, &str>)] = &[
            (
                b"MemTotal:       24684084 kB\nMemFree: 1 kB\n",
                Ok(25_276_502_016),
            ),
            (b"MemFree: 1 kB\nMemTotal: 4 kB\n", Ok(4096)),
            (b"MemTotal: 4", Ok(4096)),
            (b"MemFree: 1 kB\n", Err("MemTotal line")),
            (b"MemTotal: x kB\n", Err("numeric MemTotal")),
            (b"MemTotal:\n", Err("numeric MemTotal")),
            (
                b"MemTotal: 18446744073709551615 kB\n",
                Err("MemTotal below 2^64 bytes"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_meminfo_total(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let text = fs::read(fixture("v1/proc/meminfo")).unwrap();
        assert_eq!(parse_meminfo_total(&text), Ok(25_276_502_016));
    }

    #[test]
    fn single_numbers_and_limits() {
        let numbers: &[(&[u8], Result<u64, &str>)] = &[
            (b"331776\n", Ok(331_776)),
            (b"0", Ok(0)),
            (b" 7 \n", Ok(7)),
            (b"18446744073709551615\n", Ok(u64::MAX)),
            (b"18446744073709551616\n", Err("single number")),
            (b"", Err("single number")),
            (b"\n", Err("single number")),
            (b"1 2\n", Err("single number")),
            (b"-1\n", Err("single number")),
            (b"max\n", Err("single number")),
            (b"0x10\n", Err("single number")),
        ];
        for (text, want) in numbers {
            assert_eq!(
                parse_number(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let limits: &[(&[u8], Result<u64, &str>)] = &[
            (b"max\n", Ok(u64::MAX)),
            (b"268435456\n", Ok(268_435_456)),
            (b"9223372036854771712\n", Ok(9_223_372_036_854_771_712)),
            (b"Max\n", Err("number or `max`")),
            (b"max max\n", Err("number or `max`")),
            (b"", Err("number or `max`")),
        ];
        for (text, want) in limits {
            assert_eq!(
                parse_limit(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn cpu_stat_usage_in_nanoseconds() {
        let cases: &[(&[u8], Result<u64, &str>)] = &[
            (
                b"usage_usec 7654321\nuser_usec 1\nsystem_usec 2\n",
                Ok(7_654_321_000),
            ),
            (b"user_usec 1\nusage_usec 5\n", Ok(5_000)),
            (b"usage_usec 18446744073709551615\n", Ok(u64::MAX)),
            (b"user_usec 1\n", Err("usage_usec line")),
            (b"usage_usec\n", Err("numeric usage_usec")),
            (b"usage_usec abc\n", Err("numeric usage_usec")),
            (b"", Err("usage_usec line")),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_cpu_stat(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn memory_stat_keys() {
        let both = MemStat {
            total_inactive_file: Some(300),
            inactive_file: Some(100),
        };
        let cases: &[(&[u8], Result<MemStat, &str>)] = &[
            (
                b"cache 9\ninactive_file 100\ntotal_inactive_file 300\n",
                Ok(both),
            ),
            (
                b"anon 1\ninactive_file 7\nactive_file 2\n",
                Ok(MemStat {
                    total_inactive_file: None,
                    inactive_file: Some(7),
                }),
            ),
            (b"anon 1\n", Ok(MemStat::default())),
            (b"", Ok(MemStat::default())),
            // Keys that merely start like ours are other keys.
            (
                b"inactive_file_x 5\ntotal_inactive_file2 6\n",
                Ok(MemStat::default()),
            ),
            (b"inactive_file\n", Err("numeric inactive_file")),
            (b"inactive_file -1\n", Err("numeric inactive_file")),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_memory_stat(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn working_set_is_the_docker_stats_rule() {
        // The same numbers through a Docker stats document and `docker::stats::parse`, for every
        // combination of present and absent keys and of values below, at and above usage.
        let values = [None, Some(0u64), Some(300), Some(1000), Some(5000)];
        for usage in [0u64, 1000] {
            for total in values {
                for inactive in values {
                    let mut keys = Vec::new();
                    if let Some(v) = total {
                        keys.push(format!("\"total_inactive_file\":{v}"));
                    }
                    if let Some(v) = inactive {
                        keys.push(format!("\"inactive_file\":{v}"));
                    }
                    let json = format!(
                        r#"{{"read":"x","memory_stats":{{"usage":{usage},"stats":{{{}}}}}}}"#,
                        keys.join(",")
                    );
                    let docker = stats::parse(json.as_bytes()).unwrap().memory_usage;
                    let stat = MemStat {
                        total_inactive_file: total,
                        inactive_file: inactive,
                    };
                    assert_eq!(working_set(usage, stat), docker, "{json}");
                }
            }
        }
    }

    #[test]
    fn blkio_sums_read_and_write() {
        let io = |read, write, entries| {
            Ok(Io {
                read,
                write,
                entries,
            })
        };
        let cases: &[(&[u8], Result<Io, &str>)] = &[
            // Recorded (v1 disk writer): Read and Write count, Sync/Async/Discard/Total do not.
            (
                b"254:0 Read 8388608\n254:0 Write 8388608\n254:0 Sync 16777216\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 16777216\nTotal 16777216\n",
                io(8_388_608, 8_388_608, 6),
            ),
            (b"Total 0\n", io(0, 0, 0)),
            (b"", io(0, 0, 0)),
            (b"8:0 read 1\n8:16 READ 10\n8:0 Write 2\n", io(11, 2, 3)),
            (b"8:0 Read 18446744073709551615\n8:16 Read 1\n", io(u64::MAX, 0, 2)),
            // containerd accepts `MAJ:MIN value` lines (no op).
            (b"8:0 5\n", io(0, 0, 1)),
            (b"8:0 Read\n", Err("`MAJ:MIN Op bytes` lines")),
            (b"8:0 Read x\n", Err("`MAJ:MIN Op bytes` lines")),
            (b"sda Read 1\n", Err("`MAJ:MIN Op bytes` lines")),
            (b"Total\n", Err("`MAJ:MIN Op bytes` lines")),
            (b"8:0 Read 1 2\n", Err("`MAJ:MIN Op bytes` lines")),
            (b"Total x\n", Err("`MAJ:MIN Op bytes` lines")),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_blkio(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn io_stat_sums_rbytes_and_wbytes() {
        let io = |read, write, entries| {
            Ok(Io {
                read,
                write,
                entries,
            })
        };
        let cases: &[(&[u8], Result<Io, &str>)] = &[
            // The example of Documentation/admin-guide/cgroup-v2.rst.
            (
                b"8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n",
                io(91_889_664, 613_781_504, 2),
            ),
            (b"", io(0, 0, 0)),
            // io.cost and io.latency add keys; unknown keys and bare words are skipped.
            (b"8:0 rbytes=1 wbytes=2 cost.vrate=100.00 depth=5 avg_lat=10 x\n", io(1, 2, 1)),
            (b"8:0 rbytes=x wbytes=2\n", Err("numeric rbytes and wbytes")),
            (b"8:0 rbytes= wbytes=2\n", Err("numeric rbytes and wbytes")),
            (b"rbytes=1 wbytes=2\n", Err("`MAJ:MIN key=value` lines")),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_io_stat(text),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn net_dev_sums_every_interface_but_lo() {
        let head = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n";
        let net = |rx, tx| Ok(Net { rx, tx });
        let cases: &[(String, Result<Net, &str>)] = &[
            (
                format!("{head}    lo:  99 1 0 0 0 0 0 0  99 1 0 0 0 0 0 0\n  eth0:  586 7 0 0 0 0 0 0  0 0 0 0 0 0 0 0\n"),
                net(586, 0),
            ),
            (
                format!("{head}  eth0: 10 1 0 0 0 0 0 0 20 1 0 0 0 0 0 0\n  eth1: 1 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n"),
                net(11, 22),
            ),
            // Old kernels: a wide counter right after the colon.
            (format!("{head}  eth0:1234567890 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n"), net(1_234_567_890, 5)),
            (head.to_string(), net(0, 0)),
            (String::new(), net(0, 0)),
            (format!("{head}  eth0: 1 2 3\n"), Err("numeric rx and tx byte counters")),
            (format!("{head}  eth0 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n"), Err("`name: counters` lines")),
        ];
        for (text, want) in cases {
            assert_eq!(parse_net_dev(text.as_bytes()), *want, "{text}");
        }
        // Recorded: the idle container (lo and eth0), and the host's own namespace.
        let idle = fs::read(fixture("v1/proc/15914/net/dev")).unwrap();
        assert_eq!(parse_net_dev(&idle), net(586, 0));
        let host = fs::read(fixture("v1/proc/1/net/dev")).unwrap();
        assert!(parse_net_dev(&host).unwrap().rx > 1_000_000_000);
    }

    #[test]
    fn pid_cgroup_paths() {
        let v1 = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/host/cgroup/vm-container-v1.txt"),
        )
        .unwrap();
        let cases: &[(&[u8], bool, Option<&str>)] = &[
            (
                b"0::/system.slice/docker-ab.scope\n",
                true,
                Some("system.slice/docker-ab.scope"),
            ),
            (b"12:pids:/x\n0::/docker/ab\n", true, Some("docker/ab")),
            (b"4:memory:/docker/ab\n0::/\n", false, Some("docker/ab")),
            (b"4:cpu,memory:/docker/ab\n", false, Some("docker/ab")),
            (b"4:memoryx:/docker/ab\n", false, None),
            (b"0::/\n", true, Some("")),
            (b"0::/../../docker-ab.scope\n", true, None),
            (b"0::/a/./b\n", true, None),
            (b"0::docker/ab\n", true, None),
            (b"0::/a:b\n", true, Some("a:b")),
            (b"1:name=systemd:/x\n", true, None),
            (b"", true, None),
            (b"0::/\xff\n", true, None),
        ];
        for (text, is_v2, want) in cases {
            assert_eq!(
                parse_pid_cgroup(text, *is_v2),
                *want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // Recorded /proc/self/cgroup of a container on this engine (host cgroup namespace, v1).
        assert_eq!(
            parse_pid_cgroup(&v1, false).map(|p| p.starts_with("docker/0c6c216d3fd5")),
            Some(true)
        );
    }

    #[test]
    fn container_ids_must_be_full_lowercase_hex() {
        assert!(check_id(NGINX).is_ok());
        for bad in [
            "",
            "15d3b24aa423",
            &NGINX.to_uppercase(),
            &format!("{NGINX}0"),
            &format!("../{}", &NGINX[3..]),
            &format!("{}/", &NGINX[1..]),
        ] {
            assert!(
                matches!(check_id(bad), Err(Error::BadId { len }) if len == bad.len()),
                "{bad}"
            );
        }
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes() {
        fn all(text: &[u8]) {
            let _ = parse_proc_stat(text, true);
            let _ = parse_proc_stat(text, false);
            let _ = parse_meminfo_total(text);
            let _ = parse_number(text);
            let _ = parse_limit(text);
            let _ = parse_cpu_stat(text);
            let _ = parse_memory_stat(text);
            let _ = parse_blkio(text);
            let _ = parse_io_stat(text);
            let _ = parse_net_dev(text);
            let _ = parse_pid_cgroup(text, true);
            let _ = parse_pid_cgroup(text, false);
            let _ = parse_procs(text).count();
            let _ = parse_nspid_innermost(text);
        }
        let samples = [
            "v1/proc/stat",
            "v1/proc/1/net/dev",
            "v1/sys/fs/cgroup/blkio/docker/3fbfb03e9497fc1cb0f0836f2c7e55f8d6fc9c3f6232205b990e4a581a1e6202/blkio.throttle.io_service_bytes",
            "v1/sys/fs/cgroup/memory/docker/7d28aad387e46be982336eadbc44f2537b017c6d60014eac3b9bc6fde669ee6c/memory.stat",
            "v2-cgroupfs/sys/fs/cgroup/docker/15d3b24aa42343c78d59905003f9cdfa03173067eeb741bf39f3476375f01a53/io.stat",
            "v2-rootless/proc/7777/cgroup",
        ];
        for name in samples {
            let mut buf = fs::read(fixture(name)).unwrap();
            for i in 0..buf.len() {
                let keep = buf[i];
                for b in [b'\n', b' ', b':', b'=', b'9', b'-', 0xff, 0] {
                    buf[i] = b;
                    all(&buf);
                    all(&buf[..i]);
                }
                buf[i] = keep;
            }
        }
        const ALPHABET: &[u8] = b"0123456789 :=\n\tcpuTotalReadWritemax/.rbytes\xff";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..3_000usize {
            let buf: Vec<u8> = (0..len % 200)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ALPHABET[(state % ALPHABET.len() as u64) as usize]
                })
                .collect();
            all(&buf);
        }
    }
}
