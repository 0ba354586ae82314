//! The cgroup stats source's parsers (`sampler::source::cgroup::parse`), each given the whole input:
//! /proc/stat, meminfo, single numbers, limits, cpu.stat, memory.stat, blkio, io.stat, net/dev,
//! /proc/<pid>/cgroup, cgroup.procs and NSpid. Names follow the module as of issue 17 (the cgroup
//! work may rename them at merge).
//!
//! Checks: /proc/stat read as a prefix agrees with its complete lines read whole; a cgroup path never
//! climbs (`.`/`..`) or starts at the root; the decimals the module reads write back to themselves.
use dockmon_agent::procfs::{decimal, fields, lines, number};
use dockmon_agent::sampler::source::cgroup::parse::*;

pub fn run(data: &[u8]) {
    if let Ok(prefix) = parse_proc_stat(data, false) {
        let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        assert_eq!(
            parse_proc_stat(&data[..end], true),
            Ok(prefix),
            "prefix and whole differ"
        );
    }
    let _ = parse_proc_stat(data, true);
    let _ = parse_meminfo_total(data);
    let _ = parse_number(data);
    let _ = parse_limit(data);
    let _ = parse_cpu_stat(data);
    let _ = parse_memory_stat(data);
    let _ = parse_blkio(data);
    let _ = parse_io_stat(data);
    let _ = parse_net_dev(data);
    for v2 in [false, true] {
        if let Some(path) = parse_pid_cgroup(data, v2) {
            assert!(
                !path.split('/').any(|c| c == "." || c == ".."),
                "{path:?} climbs"
            );
        }
    }
    assert!(parse_procs(data).count() <= data.len());
    let _ = parse_nspid_innermost(data);
    for line in lines(data).take(64) {
        for f in fields(line).take(16) {
            if let Some(n) = number(f) {
                assert_eq!(number(decimal(n).as_bytes()), Some(n));
            }
        }
    }
}
