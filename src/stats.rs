//! The stats sample, whatever its source: [`Sample`] (cumulative counters of one container at one
//! moment), and [`compute`], which turns the previous and the current sample into the numbers of one
//! `container_stats` payload ([`Computed`]; DockMon protocol spec §4.2).
//!
//! Its own home because two sources fill it (Docker's stats JSON, parsed in `docker::stats`, and the
//! cgroup files, `sampler::source::cgroup`), the sampler's table keeps it and `dockmon::msg` writes it:
//! none of them reaches into another for it. [`Computed`] serializes as the payload's numbers, so the
//! frame writer lists no field of its own.
//!
//! Must not: do I/O, read a clock, log or allocate. `compute` is total: no division by zero, no NaN,
//! counters that go backwards give 0. Nothing is stored, so there is no capacity.

/// One cumulative reading of a container, whatever its source (Docker stats JSON now; cgroup files later).
///
/// Every counter is cumulative since the container started; only [`compute`] turns two of them into a
/// rate. `online_cpus` is already resolved and at least 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// `cpu_stats.cpu_usage.total_usage`: CPU time of the container, nanoseconds.
    pub cpu_total_ns: u64,
    /// `cpu_stats.system_cpu_usage`: CPU time of the whole host, nanoseconds (0 when absent).
    pub system_cpu_ns: u64,
    /// `cpu_stats.online_cpus` if > 0, else the length of `cpu_stats.cpu_usage.percpu_usage`
    /// (cgroup v1 only), else 1.
    pub online_cpus: u32,
    /// Working set in bytes, as the `docker stats` CLI computes it: `memory_stats.usage` minus
    /// `total_inactive_file` (cgroup v1) or `inactive_file` (cgroup v2), when below `usage`.
    pub memory_usage: u64,
    /// `memory_stats.limit` in bytes (host RAM when the container has no limit).
    pub memory_limit: u64,
    /// Sum of `rx_bytes` over every entry of `networks` (0 when absent: `--network host` or `none`).
    pub network_rx: u64,
    /// Sum of `tx_bytes` over every entry of `networks`.
    pub network_tx: u64,
    /// Sum of `blkio_stats.io_service_bytes_recursive[].value` whose `op` is `read`, any case.
    pub disk_read: u64,
    /// Sum of `blkio_stats.io_service_bytes_recursive[].value` whose `op` is `write`, any case.
    pub disk_write: u64,
    /// `pids_stats.current` (0 when absent).
    pub pids: u64,
}

/// The numbers of one `container_stats` payload (spec §4.2), computed from the previous and current sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Computed {
    /// Percent of one core (100 = one busy core, up to 100 × CPUs), one decimal, half-up.
    pub cpu_percent: f64,
    /// Working set in bytes (the current sample's `memory_usage`).
    pub memory_usage: u64,
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// `memory_usage / memory_limit × 100`, one decimal, half-up; 0 when the limit is 0.
    pub memory_percent: f64,
    /// Bytes received, cumulative.
    pub network_rx: u64,
    /// Bytes sent, cumulative.
    pub network_tx: u64,
    /// Bytes read from block devices, cumulative.
    pub disk_read: u64,
    /// Bytes written to block devices, cumulative.
    pub disk_write: u64,
    /// Processes and threads in the container now. Not part of DockMon's payload: `container_stats`
    /// adds it only for the local modes, so it is not serialized here.
    #[serde(skip)]
    pub pids: u64,
}

/// Computes one payload from the previous sample of the same container (if any) and the current one.
///
/// CPU % is `docker stats`' formula with the agent's own previous sample in place of `precpu_stats`:
/// `Δcpu / Δsystem × online_cpus × 100`, where each Δ saturates at 0 (counters restart with the
/// container), and 0 unless both Δ are > 0. Without a previous sample CPU % is 0; DockMon's Go agent
/// instead reports the lifetime average on its first streamed sample (spec §4.2), which we don't copy.
pub fn compute(prev: Option<&Sample>, cur: &Sample) -> Computed {
    let cpu_percent = match prev {
        Some(prev) => {
            let cpu = cur.cpu_total_ns.saturating_sub(prev.cpu_total_ns);
            let system = cur.system_cpu_ns.saturating_sub(prev.system_cpu_ns);
            if cpu > 0 && system > 0 {
                // `online_cpus` is resolved to at least 1 by `parse`; max(1) keeps hand-built samples sane.
                round1(cpu as f64 / system as f64 * f64::from(cur.online_cpus.max(1)) * 100.0)
            } else {
                0.0
            }
        }
        None => 0.0,
    };
    let memory_percent = if cur.memory_limit == 0 {
        0.0
    } else {
        round1(cur.memory_usage as f64 / cur.memory_limit as f64 * 100.0)
    };
    Computed {
        cpu_percent,
        memory_usage: cur.memory_usage,
        memory_limit: cur.memory_limit,
        memory_percent,
        network_rx: cur.network_rx,
        network_tx: cur.network_tx,
        disk_read: cur.disk_read,
        disk_write: cur.disk_write,
        pids: cur.pids,
    }
}

/// Rounds to one decimal, halves away from zero (so half-up for the non-negative values we send), as Go's
/// `math.Round(x*10)/10`: 0.05 → 0.1, 1.25 → 1.3, 2.449 → 2.4. NaN and infinities are returned unchanged.
pub fn round1(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    (x * 10.0).round() / 10.0
}

/// The memory working set exactly as the `docker stats` CLI computes it (docker/cli
/// `calculateMemUsageUnixNoCache`): `usage − total_inactive_file` when that key exists (cgroup v1) and
/// is below `usage`; otherwise `usage − inactive_file` when that is below `usage` (cgroup v2, or v1
/// without the `total_` keys; an absent key counts as 0); otherwise `usage`.
///
/// Note the fall-through: on v1 a `total_inactive_file` ≥ `usage` does not end the rule, the CLI then
/// tries `inactive_file`. We copy that.
///
/// Why not DockMon's Go agent rule (`anon + active_file` on cgroup v2): users compare our number with
/// `docker stats`, and `anon + active_file` leaves out memory the kernel charges to the container and
/// cannot simply drop. On cgroup v2 `usage` (`memory.current`) is anon + file + kernel memory, and:
/// - shared memory and tmpfs pages (`/dev/shm`, POSIX and SysV shm; `shmem`) are counted in `file`, not
///   in `anon`, yet they are swap-backed and sit on the *anon* LRU lists, so they are not in
///   `active_file` either: the Go rule drops them entirely;
/// - kernel memory charged to the cgroup (`kernel_stack`, `slab`, `sock`, page tables) is in neither;
/// - `usage − inactive_file` keeps all of that and removes only the inactive page cache the kernel
///   reclaims first. It is also cAdvisor's and the kubelet's "working set".
///
/// The recorded `v1-memory.json` (50 MiB in /dev/shm; `docker stats` showed 50.43MiB) keeps the 50 MiB
/// here; for `v2-shm.json`, the same container written as cgroup v2 would report it, the Go rule gives
/// 64 KiB and this one 50.2 MiB.
pub fn working_set(
    usage: u64,
    total_inactive_file: Option<u64>,
    inactive_file: Option<u64>,
) -> u64 {
    if let Some(v) = total_inactive_file {
        if v < usage {
            return usage - v;
        }
    }
    let v = inactive_file.unwrap_or(0);
    if v < usage {
        usage - v
    } else {
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_cpu_uses_online_cpus_of_current_sample() {
        let prev = Sample {
            cpu_total_ns: 1_000,
            system_cpu_ns: 10_000,
            online_cpus: 4,
            ..Sample::default()
        };
        let cur = Sample {
            cpu_total_ns: 2_000,
            system_cpu_ns: 20_000,
            online_cpus: 4,
            ..Sample::default()
        };
        assert_eq!(compute(Some(&prev), &cur).cpu_percent, 40.0); // 0.1 × 4 × 100
        assert_eq!(
            compute(
                Some(&prev),
                &Sample {
                    online_cpus: 0,
                    ..cur
                }
            )
            .cpu_percent,
            10.0
        );
        // A busy multi-core container goes above 100.
        let busy = Sample {
            cpu_total_ns: 1_000 + 30_000,
            system_cpu_ns: 20_000,
            online_cpus: 4,
            ..cur
        };
        let wide = Sample {
            system_cpu_ns: 10_000,
            ..prev
        };
        assert_eq!(compute(Some(&wide), &busy).cpu_percent, 1200.0);
    }

    #[test]
    fn round1_is_half_up() {
        let cases: &[(f64, f64)] = &[
            (0.05, 0.1),
            (1.25, 1.3),
            (2.449, 2.4),
            (2.45, 2.5),
            (0.0, 0.0),
            (0.04, 0.0),
            (0.15, 0.2),
            (99.95, 100.0),
            (50.307_896, 50.3),
            (12.0, 12.0),
            (1e300, 1e300),
        ];
        for (x, want) in cases {
            assert_eq!(round1(*x), *want, "round1({x})");
        }
        assert!(round1(f64::NAN).is_nan());
        assert_eq!(round1(f64::INFINITY), f64::INFINITY);
    }
}
