//! The files of one container that the cgroup source keeps open between samples (issue 18), and the
//! process-wide count that bounds them.
//!
//! Why: opening a cgroup file walks its path (six components under `/sys/fs/cgroup`, each a kernfs
//! revalidation) and closing it tears down its `seq_file`; that was two thirds of a sample's CPU. A kept
//! file is re-read with `pread` from offset 0 ([`crate::procfs::pread_capped`]), which the kernel answers
//! by rendering the file anew: no path walk, no open, no close.
//!
//! What it costs: a few bytes here per container ([`Files`] is 40 bytes: eight 4-byte descriptors, a
//! PID and two counters), and per open file the kernel's `struct file` and `seq_file` with its one-page buffer (about
//! 4.5 KiB of kernel memory, not in the agent's RSS): about 30 KiB per container, 3 MiB at 100.
//!
//! Bound: file descriptors are a per-process resource, so the count of kept descriptors is one
//! process-wide counter. [`raise_nofile`] raises the soft `RLIMIT_NOFILE` to the hard limit once (the
//! default soft limit is often 1,024 while a profile's table holds up to 512 containers of 7 files
//! each) and returns how many descriptors the source may keep: the soft limit less
//! [`FD_RESERVE_COUNT`] for sockets and everything else, at most [`CGROUP_KEPT_FILES_MAX_COUNT`].
//! When full: a container whose files do not fit is sampled as before the cache existed (open, read,
//! close every time); its sample is the same, only dearer. Nothing is evicted.
//!
//! Lifecycle: a [`Files`] lives in the sampler's table row of its container, travels with the sample job
//! and comes back with the result. Dropping it closes its descriptors and gives them back to the count:
//! a container that leaves the table (stopped, removed, re-listed away) closes its files with its row;
//! a failed or stale read drops them at once (see `CgroupSource::sample_kept`).
use core::sync::atomic::{AtomicUsize, Ordering};
use std::fs::File;

use crate::limits::{CGROUP_KEPT_FILES_MAX_COUNT, FD_RESERVE_COUNT};

/// Descriptors kept open by every [`Files`] of the process.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// Descriptors the cgroup sources of this process keep open now (for tests and the bench).
pub fn kept_count() -> usize {
    KEPT.load(Ordering::Relaxed)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (once per call; harmless when already there) and
/// returns how many descriptors kept files may use: see the module doc. A limit that cannot be read or
/// raised leaves the budget at what the current soft limit allows.
pub fn raise_nofile() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    // `None` is RLIM_INFINITY: raise a finite soft limit to a larger (or infinite) hard one.
    let below_hard = match (lim.current, lim.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim.current = lim.maximum;
        }
    }
    let soft = lim
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    soft.saturating_sub(FD_RESERVE_COUNT)
        .min(CGROUP_KEPT_FILES_MAX_COUNT)
}

/// One container's open files. Empty ([`Files::default`]) until the source opens them; the fields are
/// the source's (see `CgroupSource`), this type only owns and counts them.
#[derive(Debug, Default)]
pub struct Files {
    /// `cpuacct.usage` (v1) or `cpu.stat` (v2): read first, it tells a removed cgroup (`ENODEV`).
    pub(super) cpu: Option<File>,
    /// `memory.usage_in_bytes` or `memory.current`.
    pub(super) usage: Option<File>,
    /// `memory.limit_in_bytes` or `memory.max`.
    pub(super) limit: Option<File>,
    /// `memory.stat`.
    pub(super) stat: Option<File>,
    /// v1: the blkio bytes file (CFQ's when the kernel has CFQ); v2: `io.stat`. `None`: no such
    /// controller or file, block I/O reads 0.
    pub(super) io: Option<File>,
    /// v1 with CFQ: `blkio.throttle.io_service_bytes`, read when CFQ's file holds no entry.
    pub(super) io_throttle: Option<File>,
    /// `pids.current`; `None`: no pids controller, pids read 0.
    pub(super) pids: Option<File>,
    /// `<proc>/<pid>/net/dev`; `None` with `pid` set: the host's network namespace, network reads 0.
    pub(super) net: Option<File>,
    /// The PID the files were opened for (its `net/dev`); 0: nothing is open.
    pub(super) pid: u32,
    /// Descriptors of this set added to the process-wide count (0: not kept, closed after the sample).
    counted: u8,
    /// Samples left before the memory limit file is read again (0: read it at the next sample); see
    /// `CgroupSource::sample_batched`. In the padding: the set stays 40 bytes.
    pub(super) limit_left: core::cell::Cell<u8>,
}

impl Files {
    /// Whether a set of files is open (for the PID given to `CgroupSource::sample_kept`).
    pub fn is_open(&self) -> bool {
        self.pid != 0
    }

    /// The container's memory limit may have changed (a Docker `update` event): read the file at the
    /// next sample.
    pub fn reread_limit(&self) {
        self.limit_left.set(0);
    }

    /// Open descriptors in this set.
    pub fn count(&self) -> usize {
        [
            &self.cpu,
            &self.usage,
            &self.limit,
            &self.stat,
            &self.io,
            &self.io_throttle,
            &self.pids,
            &self.net,
        ]
        .iter()
        .filter(|f| f.is_some())
        .count()
    }

    /// Counts this set against `budget` descriptors. `false` (and nothing counted) when it does not
    /// fit: the caller closes it after the sample.
    pub(super) fn try_keep(&mut self, budget: usize) -> bool {
        let n = self.count();
        let fits = KEPT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                kept.checked_add(n).filter(|&k| k <= budget)
            })
            .is_ok();
        if fits {
            // At most eight descriptors: the cast cannot truncate.
            self.counted = n as u8;
        }
        fits
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        if self.counted > 0 {
            KEPT.fetch_sub(usize::from(self.counted), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_a_few_bytes() {
        // The module doc's figure: eight descriptors and a PID.
        assert!(core::mem::size_of::<Files>() <= 40);
        let f = Files::default();
        assert!(!f.is_open());
        assert_eq!(f.count(), 0);
    }

    #[test]
    fn the_budget_is_under_the_ceiling() {
        let n = raise_nofile();
        assert!(n <= CGROUP_KEPT_FILES_MAX_COUNT);
    }
}
