//! The cgroup stats source's parsers (`sampler::source::cgroup::parse`), each given the whole input:
//! /proc/stat, meminfo, single numbers, limits, cpu.stat, memory.stat, blkio, io.stat, net/dev,
//! /proc/<pid>/cgroup, cgroup.procs and NSpid. //!
//! /proc/stat, meminfo and net/dev go through `procfs`'s one parser each, as the source reads them.
//!
//! Checks: a cgroup path never climbs (`.`/`..`) or starts at the root; the decimals the module reads
//! write back to themselves.
use dockmon_agent::procfs::{self, decimal, fields, lines, number};
use dockmon_agent::sampler::source::cgroup::parse::*;

pub fn run(data: &[u8]) {
    for whole in [false, true] {
        if let Ok(stat) = procfs::parse_stat(data, whole) {
            let _ = docker_proc_stat(&stat);
        }
        if let Ok(m) = procfs::parse_meminfo(data, whole) {
            let _ = mem_total_bytes(&m);
        }
    }
    let _ = parse_number(data);
    let _ = parse_limit(data);
    let _ = parse_cpu_stat(data);
    let _ = parse_memory_stat(data);
    let _ = parse_blkio(data);
    let _ = parse_io_stat(data);
    let _ = procfs::parse_net_dev(data).take(4096).count();
    let _ = docker_net(data);
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
