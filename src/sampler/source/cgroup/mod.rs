//! Container stats read straight from the cgroup files and procfs: a [`Sample`] that costs dockerd nothing.
//!
//! Read this first: `docker::stats` (what each field of a [`Sample`] means; this reader must give the
//! same numbers as the Docker source) and DockMon spec §4.2. Below, "Docker" means what a Docker stats
//! document holds for the same container, as produced by Docker 20.10 with containerd 1.6 (the engine
//! the tests run against) and by current Docker (v28).
//!
//! Owns: [`CgroupSource::detect`] (where the cgroup tree and the host's procfs are, which cgroup version,
//! or [`Unavailable`] with the reason), [`CgroupSource::sample`] (one [`Sample`] of one container),
//! [`CgroupSource::pid`] (a container's init PID from its own `cgroup.procs`, so that a new container costs
//! dockerd no inspect call) and the pure parsers of every file it reads (`parse_*`, functions over
//! borrowed bytes).
//!
//! Must not: call libc (the crate forbids `unsafe`; everything comes from `/proc` and `/sys`), log above
//! `debug!` (the sampler decides what a failed sample means), hold per-container state of its own, or
//! allocate on the sampling path: files are read into the caller's buffer and paths are built in one
//! `PathBuf` the source allocates once at [`CgroupSource::detect`].
//!
//! Kept files (issue 18): [`CgroupSource::sample_kept`] keeps a container's open files in a [`Files`]
//! the caller owns (the sampler's table row), and re-reads them with `pread` from offset 0: a warm sample
//! opens, closes and looks up nothing. `/proc/stat` is opened once, at [`CgroupSource::detect`]. The
//! `files` module says what that costs and how the count of open descriptors is bounded.
//! [`CgroupSource::sample_batched`] is the sampler's way in: one `/proc/stat` reading serves a batch
//! of samples, and the memory limit file is read on open, every [`CGROUP_LIMIT_REREAD_SAMPLES`]th
//! sample and after a Docker `update` event rather than at every sample.
//!
//! # Where each field comes from, and what Docker does
//!
//! | field | cgroup v1 | cgroup v2 | Docker |
//! |---|---|---|---|
//! | `cpu_total_ns` | `cpuacct.usage` | `cpu.stat` `usage_usec` × 1000 | the same files (containerd's cgroups library) |
//! | `system_cpu_ns` | `/proc/stat`: first 7 counters of the `cpu ` line (user … softirq, **not** steal), × 10⁹ / [`USER_HZ`] | same | the same sum, with CLK_TCK hard-coded to 100 |
//! | `online_cpus` | number of `cpuN` lines at the head of `/proc/stat` | same | v28 counts those lines; 20.10 counts dockerd's `sched_getaffinity` mask (see below) |
//! | `memory_usage` | `memory.usage_in_bytes` − `total_inactive_file` of `memory.stat` | `memory.current` − `inactive_file` | the same inputs; the rule is `docker::stats`' (the `docker stats` CLI's) |
//! | `memory_limit` | `memory.limit_in_bytes` | `memory.max` (`max` = unlimited) | the same, then clamped to the host's `MemTotal` when above it |
//! | `disk_read` / `disk_write` | `blkio.throttle.io_service_bytes` `Read`/`Write` (CFQ's `blkio.io_service_bytes_recursive` first on kernels that have it) | `io.stat` `rbytes`/`wbytes` summed over devices | the same files (see below) |
//! | `pids` | `pids.current` | `pids.current` | the same |
//! | `network_rx` / `network_tx` | `/proc/<pid>/net/dev`, every interface but `lo` | same | netlink counters of the container's interfaces (the same kernel counters) |
//!
//! What was checked, and how:
//! - **online CPUs.** Docker 20.10.24 (the Debian build here) calls `unix.SchedGetaffinity(0)` in
//!   `daemon/stats.(*Collector).getNumberOnlineCPUs` (seen in the binary's symbol table): the CPUs dockerd
//!   may run on. Current moby (`daemon/stats_unix.go` `getSystemCPUUsage`, since the collector moved
//!   there) counts the `cpuN` lines at the head of `/proc/stat`, stopping at the first line that does not
//!   start with `cpu`, as glibc does. `/proc/stat` lists exactly the online CPUs, and dockerd's affinity
//!   mask is all online CPUs unless dockerd itself is pinned (a systemd `CPUAffinity=`), so both agree on
//!   every normal host; we count the lines (no libc, and it is the current behaviour).
//! - **system CPU.** Docker sums `parts[1:8]` of the `cpu` line: user, nice, system, idle, iowait, irq,
//!   softirq. Steal, guest and guest_nice are left out; we leave them out too (this differs from the host
//!   stats of spec §4.4, which add steal). Docker 20.10 computes `ticks × 10⁹ / 100` in a `uint64`, which
//!   wraps once `ticks × 10⁹` passes 2⁶⁴ (about 1.8 × 10¹⁰ ticks: 1.5 years of uptime on a 4-CPU Pi);
//!   current moby multiplies by 10⁷ instead. We multiply by 10⁷ and saturate.
//! - **memory limit.** Docker reads the container's own limit and then, in `statsV1`/`statsV2`, replaces
//!   any limit above the host's memory (`daemon.machineMemory`, `MemTotal` of `/proc/meminfo` read once at
//!   daemon start) by that memory. The unlimited values (v1 `9223372036854771712`, v2 `max`) fall under
//!   that rule; so does a limit set above the host's RAM. We read `MemTotal` once, at [`detect`].
//! - **block I/O on v1.** Docker 20.10 asks containerd; containerd 1.6's shim reads the files with
//!   `containerd/cgroups` v1 (`blkio.go`, the version that reads `/proc/partitions`): the CFQ files
//!   (`blkio.io_service_bytes_recursive` and friends) when `blkio.io_serviced_recursive` exists and they
//!   hold at least one entry, otherwise `blkio.throttle.io_service_bytes`, the **non-recursive** throttle
//!   file (the binary has no `throttle.io_service_bytes_recursive`). A container's cgroup has no children,
//!   so recursive and non-recursive agree anyway. CFQ is gone since Linux 5.0, so current kernels always
//!   take the throttle file; since Linux 6.10 cgroup v1 fills it only for devices some cgroup throttles.
//!   We use the same order, deciding whether CFQ exists once at [`detect`]; the one difference is that we
//!   look only at the bytes file for "holds an entry", where containerd counts all eight CFQ files.
//! - **block I/O on v2.** Docker turns each `io.stat` line into a `read` and a `write` entry; `docker::stats`
//!   sums ops case-insensitively, so the sum of `rbytes` and of `wbytes` over all devices is the same number.
//! - **network.** Docker asks libnetwork for the counters of the interfaces it put in the container's
//!   sandbox (`eth0`, …; never `lo`). `/proc/<pid>/net/dev` shows the same kernel counters for every
//!   interface of the container's network namespace; we sum all but `lo`. The difference is interfaces the
//!   container creates itself (a VPN inside the container, the idle `tunl0`/`sit0` fallback devices some
//!   kernels add to every namespace): we count them. A container in the host's network namespace
//!   (`--network host`) has no interfaces of its own in Docker's answer (network 0); we recognise it by its
//!   `net/dev` being the same procfs inode as that of the host's PID 1 and report 0 as well.
//!
//! # Where the files are
//!
//! [`detect`] takes the cgroup tree from `<root>/host/sys/fs/cgroup` (the host's tree mounted into the
//! agent's container) or `<root>/sys/fs/cgroup`, and procfs from `<root>/host/proc` or `<root>/proc`.
//! The tree must be the real root of the hierarchy (a container's own `/sys/fs/cgroup` shows only its own
//! cgroup: v2 marks that by `cgroup.type`, which the root never has; on v1 only the root has
//! `cgroup.sane_behavior`), and procfs must be the host's PID namespace, because the PID the caller passes
//! is dockerd's view of the container's init process (inspect `State.Pid`): we check that PID 2 is
//! `kthreadd`, which only the initial PID namespace shows.
//!
//! A container's cgroup directory is found when its files are opened (its first sample, or after a kept
//! file failed), trying in turn (the layout that worked last
//! first, so a hit costs no extra file): `docker/<id>` (cgroupfs driver), `system.slice/docker-<id>.scope`
//! (systemd driver), and the path in `<proc>/<pid>/cgroup` (any other layout: rootless Docker's
//! `user.slice/…/docker-<id>.scope`, a `--cgroup-parent`, Docker in Docker), accepted only when it names
//! the container's ID and has no `..`. On v1 each controller has its own tree (`cpuacct`, `memory`,
//! `blkio`, `pids`); the same relative path is used in all of them, as Docker creates them.
//!
//! # Invariants
//! - A file is read whole, at most [`FILE_MAX_BYTES`]; a bigger file is an [`Error::TooLarge`], never a
//!   silently short sum (a cut `io.stat` or `net/dev` would drop devices). `/proc/stat` is the exception:
//!   its long `intr` line follows the `cpu` lines we need, so a prefix is read and must hold every `cpu`
//!   line.
//! - A number is never read from a stale file: a kept file that fails (a removed cgroup answers
//!   `ENODEV`), fails to parse, or belongs to another PID drops the whole set, and the sample is taken
//!   from the paths again. When the descriptor budget is full, a container's files are closed after its
//!   sample instead of kept (`files` module doc).
//! - Parsers never panic on any bytes; sums saturate at `u64::MAX`; a number that does not fit in a `u64`
//!   is a parse error.
//! - Samples taken while the container runs are consistent with Docker's within the timing of the reads:
//!   cumulative counters lie between a Docker reading taken before and one taken after
//!   (`tests/engine_cgroup.rs` checks this against a real engine).
//!
//! [`detect`]: CgroupSource::detect
//!
//! File caps stay here rather than in `limits`: they bound this source's reads of cgroup and procfs
//! files, beside the parsers they serve.

use core::fmt;
use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::limits::{CGROUP_LIMIT_REREAD_SAMPLES, CONTAINER_ID_MAX_BYTES};
use crate::procfs::{
    self, decimal, fields, lines, number, pread_capped, read_capped, set_path, End,
};
use crate::stats::Sample;

/// Most bytes read from one file. The files that grow are lists: `io.stat` (about 110 bytes per
/// device), `blkio.throttle.io_service_bytes` (about 130 bytes per device: five ops and a total),
/// `net/dev` (about 130 bytes per interface) and `memory.stat` (about 1.5 KiB, one line per counter).
/// 64 KiB holds some 500 devices or interfaces, far beyond a board; `/proc/stat` is read as a prefix of
/// this size and its `cpu` lines (about 70 bytes each) fit for 900 CPUs. The caller's buffer only grows
/// to the largest file actually read (about 2 KiB on a Pi).
pub const FILE_MAX_BYTES: usize = 64 * 1024;

/// The longest record of `net/dev` (`dev_seq_printf_stats`: a name of at most 15 bytes, 16 counters
/// of at most 20 digits, their separators and the newline: 353 bytes; the two header lines together
/// are about 200), with a margin: a read that leaves this much of a page free reached the end.
pub const NET_DEV_RECORD_MAX_BYTES: usize = 512;

/// Clock ticks per second of `/proc/stat` (`USER_HZ`, what `sysconf(_SC_CLK_TCK)` returns). It is 100 on
/// every Linux architecture we build for (x86_64, aarch64, armv7: `include/asm-generic/param.h`; only alpha
/// and ia64 ever differed), whatever the kernel's internal `HZ`. Docker hard-codes the same 100
/// (`clockTicksPerSecond`, after containerd/cgroups#12).
pub const USER_HZ: u64 = 100;

/// Nanoseconds per `/proc/stat` tick.
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// Longest relative cgroup path of a container we follow. A Docker ID is 64 characters; the longest
/// layout we know, rootless Docker under systemd
/// (`user.slice/user-1000.slice/user@1000.service/user.slice/docker-<id>.scope`), is about 130; nested
/// Docker adds one `docker/<id>` level per engine. Kept on the stack.
pub const CGROUP_PATH_MAX_BYTES: usize = 512;

/// PIDs of a container's `cgroup.procs` that [`CgroupSource::pid`] looks at (one `/proc/<pid>/status`
/// each) to find the container's init. The init is almost always among the first few (v1 lists PIDs
/// sorted, and the init is the oldest; v2 lists them in the kernel's task order); past this many the
/// lowest PID seen is taken. 64 PIDs are 256 bytes on the stack.
pub const PROCS_SCAN_MAX_COUNT: usize = 64;

/// Longest `/proc/<pid>/cgroup` we parse. One line per v1 hierarchy (about a dozen) of at most
/// [`CGROUP_PATH_MAX_BYTES`] each.
const PID_CGROUP_MAX_BYTES: usize = 16 * 1024;

// ---- Errors --------------------------------------------------------------------------------------------

/// Why [`CgroupSource::detect`] found no usable cgroup files. Its `Display` is one line for the startup log
/// (`stats source: docker (cgroup files not visible: …)`).
#[derive(Debug)]
pub enum Unavailable {
    /// Neither candidate directory holds a cgroup tree.
    NoTree {
        /// `<root>/host/sys/fs/cgroup`.
        host: PathBuf,
        /// `<root>/sys/fs/cgroup`.
        own: PathBuf,
    },
    /// The tree is a container's own view (its cgroup namespace, or Docker's bind mount of its own cgroup
    /// on v1): other containers' cgroups are not in it.
    OwnView {
        /// The directory looked at.
        path: PathBuf,
    },
    /// The tree lacks a controller the sample needs (`memory`: Raspberry Pi OS kernels before 2023 left it
    /// off unless `cgroup_enable=memory` was on the kernel command line).
    MissingController {
        /// The tree.
        path: PathBuf,
        /// The controller.
        controller: &'static str,
    },
    /// No procfs at either candidate directory.
    NoProc {
        /// `<root>/host/proc`.
        host: PathBuf,
        /// `<root>/proc`.
        own: PathBuf,
    },
    /// The procfs is not the host's PID namespace (PID 2 is not `kthreadd`), so dockerd's PIDs mean
    /// other processes there.
    NotHostPids {
        /// The procfs directory.
        path: PathBuf,
    },
    /// A file needed at detection could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file needed at detection does not hold what we need.
    Parse {
        /// The file.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoTree { host, own } => write!(
                f,
                "no cgroup tree at {} or {}",
                host.display(),
                own.display()
            ),
            Unavailable::OwnView { path } => write!(
                f,
                "{} shows only this container's own cgroup; mount the host's /sys/fs/cgroup at /host/sys/fs/cgroup",
                path.display()
            ),
            Unavailable::MissingController { path, controller } => write!(
                f,
                "the cgroup tree at {} has no {controller} controller",
                path.display()
            ),
            Unavailable::NoProc { host, own } => write!(
                f,
                "no procfs at {} or {}",
                host.display(),
                own.display()
            ),
            Unavailable::NotHostPids { path } => write!(
                f,
                "{} is not the host's pid namespace (pid 2 is not kthreadd), so container pids cannot be read there; mount the host's /proc at /host/proc",
                path.display()
            ),
            Unavailable::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            Unavailable::Parse { path, what } => write!(f, "{} has no {what}", path.display()),
        }
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unavailable::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why [`CgroupSource::sample`] gave no [`Sample`]. Each message is one line naming the file.
#[derive(Debug)]
pub enum Error {
    /// The container ID is not 64 lowercase hex characters (the directory names use the full ID).
    BadId {
        /// Bytes in the ID given.
        len: usize,
    },
    /// PID 0: inspect reports no process, the container is not running.
    NotRunning,
    /// No cgroup directory of this container in any layout: it has stopped (its cgroup is removed with
    /// it), or it lives in a layout we do not know and `/proc/<pid>/cgroup` did not lead to it.
    NoCgroup {
        /// The container ID.
        id: heapless::String<CONTAINER_ID_MAX_BYTES>,
    },
    /// A file could not be read (a missing per-container file means the container just stopped).
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is larger than [`FILE_MAX_BYTES`].
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, [`FILE_MAX_BYTES`].
        limit: usize,
    },
    /// A file does not hold what we need.
    Parse {
        /// The file.
        path: PathBuf,
        /// What is missing or malformed.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadId { len } => write!(
                f,
                "cgroup stats need the full container id (64 lowercase hex characters), got {len} bytes"
            ),
            Error::NotRunning => f.write_str("cgroup stats: container not running (pid 0)"),
            Error::NoCgroup { id } => write!(
                f,
                "no cgroup directory for container {} (stopped, or an unknown cgroup layout)",
                &id[..id.len().min(12)]
            ),
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::TooLarge { path, limit } => write!(
                f,
                "{} is larger than the {limit}-byte read limit",
                path.display()
            ),
            Error::Parse { path, what } => write!(f, "{} has no {what}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

mod files;
pub mod parse;
pub use files::{kept_count, Files};
pub use parse::*;

/// Whether `id` is a full Docker container ID: 64 lowercase hex characters. Anything else could not name
/// a cgroup directory, and a `/` or `..` in it must never reach a path.
pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = id.len() == CONTAINER_ID_MAX_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId { len: id.len() })
    }
}

// ---- Reading files -------------------------------------------------------------------------------------

/// Reads `path` whole (at most [`FILE_MAX_BYTES`]) into `buf`.
fn read_whole<'b>(path: &Path, buf: &'b mut Vec<u8>) -> Result<&'b [u8], Error> {
    match read_capped(path, buf, FILE_MAX_BYTES) {
        Ok(true) => Ok(buf),
        Ok(false) => Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: FILE_MAX_BYTES,
        }),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

// ---- The source ----------------------------------------------------------------------------------------

/// The cgroup version of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// One tree per controller (`cpuacct`, `memory`, `blkio`, `pids`).
    V1,
    /// One unified tree (`cgroup.controllers` at its root).
    V2,
}

/// Where a container's cgroup directory was found (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `docker/<id>`: Docker's cgroupfs driver.
    Cgroupfs,
    /// `system.slice/docker-<id>.scope`: Docker's systemd driver.
    Systemd,
    /// The path in `/proc/<pid>/cgroup`: any other layout.
    FromPid,
}

const LAYOUTS: [Layout; 3] = [Layout::Cgroupfs, Layout::Systemd, Layout::FromPid];

#[derive(Debug)]
enum Tree {
    V1 {
        cpuacct: PathBuf,
        memory: PathBuf,
        /// `None` without a blkio controller: block I/O reads 0, as Docker reports it then.
        blkio: Option<PathBuf>,
        /// `None` without a pids controller: pids read 0.
        pids: Option<PathBuf>,
        /// Whether CFQ's files exist (`blkio.io_serviced_recursive`; kernels before 5.0).
        cfq: bool,
    },
    V2 {
        root: PathBuf,
    },
}

/// Reads [`Sample`]s from the cgroup tree and procfs found by [`CgroupSource::detect`].
///
/// Not `Sync` (the scratch path and the remembered layout are cells): the agent samples on one thread.
#[derive(Debug)]
pub struct CgroupSource {
    tree: Tree,
    cgroup_dir: PathBuf,
    proc_dir: PathBuf,
    mem_total_bytes: u64,
    /// `(st_dev, st_ino)` of `<proc>/1/net/dev`: the host's network namespace.
    host_net: Option<(u64, u64)>,
    layout: Cell<Layout>,
    path: RefCell<PathBuf>,
    /// `<proc>/stat`, opened once and re-read for every sample.
    proc_stat: File,
    /// Descriptors kept files may use; `None` until the first kept sample works it out.
    kept_max: Cell<Option<usize>>,
}

impl CgroupSource {
    /// Finds the cgroup tree and the host's procfs under `root` (`/` in the agent; tests pass a recorded
    /// tree), as the module doc describes, and reads the host's `MemTotal` (Docker's limit for containers
    /// without one). Allocates the scratch path here, once.
    pub fn detect(root: &Path) -> Result<CgroupSource, Unavailable> {
        let host_cg = root.join("host/sys/fs/cgroup");
        let own_cg = root.join("sys/fs/cgroup");
        let (tree, cgroup_dir) = match classify(&host_cg) {
            Some(r) => (r?, host_cg),
            None => match classify(&own_cg) {
                Some(r) => (r?, own_cg),
                None => {
                    return Err(Unavailable::NoTree {
                        host: host_cg,
                        own: own_cg,
                    })
                }
            },
        };

        let host_proc = root.join("host/proc");
        let own_proc = root.join("proc");
        let proc_dir = if host_proc.join("stat").exists() {
            host_proc
        } else if own_proc.join("stat").exists() {
            own_proc
        } else {
            return Err(Unavailable::NoProc {
                host: host_proc,
                own: own_proc,
            });
        };
        // Kernel threads live only in the initial PID namespace; PID 2 is kthreadd there.
        let comm = proc_dir.join("2/comm");
        let is_host = fs::read(&comm).is_ok_and(|c| c.trim_ascii() == b"kthreadd");
        if !is_host {
            return Err(Unavailable::NotHostPids { path: proc_dir });
        }

        let meminfo = proc_dir.join("meminfo");
        let mut buf = Vec::new();
        let mem_total_bytes = match read_capped(&meminfo, &mut buf, FILE_MAX_BYTES) {
            Ok(whole) => procfs::parse_meminfo(&buf, whole)
                .and_then(|m| mem_total_bytes(&m))
                .map_err(|what| Unavailable::Parse {
                    path: meminfo.clone(),
                    what,
                })?,
            Err(source) => {
                return Err(Unavailable::Read {
                    path: meminfo,
                    source,
                })
            }
        };
        let stat = proc_dir.join("stat");
        let proc_stat =
            File::open(&stat).map_err(|source| Unavailable::Read { path: stat, source })?;
        let host_net = fs::metadata(proc_dir.join("1/net/dev"))
            .ok()
            .map(|m| (m.dev(), m.ino()));

        Ok(CgroupSource {
            tree,
            cgroup_dir,
            proc_dir,
            mem_total_bytes,
            host_net,
            layout: Cell::new(Layout::Cgroupfs),
            path: RefCell::new(PathBuf::with_capacity(256)),
            proc_stat,
            kept_max: Cell::new(None),
        })
    }

    /// The cgroup version of the tree.
    pub fn version(&self) -> Version {
        match self.tree {
            Tree::V1 { .. } => Version::V1,
            Tree::V2 { .. } => Version::V2,
        }
    }

    /// The cgroup tree (`…/sys/fs/cgroup`).
    pub fn cgroup_dir(&self) -> &Path {
        &self.cgroup_dir
    }

    /// The host's procfs.
    pub fn proc_dir(&self) -> &Path {
        &self.proc_dir
    }

    /// The host's `MemTotal` in bytes, read at [`CgroupSource::detect`].
    pub fn mem_total_bytes(&self) -> u64 {
        self.mem_total_bytes
    }

    /// The layout in which the last container was found (tried first next time).
    pub fn layout(&self) -> Layout {
        self.layout.get()
    }

    /// One reading of the container `id` (full 64-hex ID) whose init process is `pid` (inspect
    /// `State.Pid`, which the caller refreshes when the container restarts): opens the container's files,
    /// reads them and closes them. `buf` holds each file in turn; once it has grown to the largest file,
    /// sampling allocates nothing. [`CgroupSource::sample_kept`] is the same reading with the files kept
    /// open between calls.
    ///
    /// Reads, in this order: the container's CPU counter and `/proc/stat` one after the other (CPU % divides
    /// their changes), then memory, block I/O, pids and `/proc/<pid>/net/dev`. Errors: [`Error::BadId`],
    /// [`Error::NotRunning`] for PID 0, [`Error::NoCgroup`] when no layout has the container (it stopped),
    /// and read, size or parse errors naming the file.
    pub fn sample(&self, id: &str, pid: u32, buf: &mut Vec<u8>) -> Result<Sample, Error> {
        let mut files = Files::default();
        self.take(id, pid, &mut files, false, buf, &mut None)
    }

    /// [`CgroupSource::sample`], keeping the container's files open in `files` (empty the first time, then
    /// what the previous call left there) and re-reading them with `pread` (issue 18): no path lookup,
    /// open or close once warm.
    ///
    /// Kept files are trusted only while they read cleanly for the same `pid`: any failure of a kept file
    /// (a removed cgroup answers `ENODEV`: the container stopped or restarted into a new cgroup), a parse
    /// error or another PID closes them all and the sample is taken again from the paths, whose answer
    /// (a fresh sample, [`Error::NoCgroup`] for a container gone, or an error naming the file) is what
    /// this returns. A number from a stale file is never returned. On error `files` is left empty
    /// (closed). The files are kept only while the process-wide budget allows (`files` module doc);
    /// otherwise they are closed after the sample, as [`CgroupSource::sample`] does.
    pub fn sample_kept(
        &self,
        id: &str,
        pid: u32,
        files: &mut Files,
        buf: &mut Vec<u8>,
    ) -> Result<Sample, Error> {
        self.take(id, pid, files, true, buf, &mut None)
    }

    /// [`CgroupSource::sample_kept`] for one sample of a batch the caller takes at one instant (issue
    /// 18): `/proc/stat` is read by the first sample of the batch (`system` empty) and its reading,
    /// left in `system`, serves the batch's other samples. Why: `/proc/stat` is the dearest file a
    /// sample reads (the kernel sums every CPU's counters and every interrupt for it, whatever part
    /// is read) and it is the same file for every container. The caller empties `system` before each
    /// batch; a batch of samples taken back to back spans a few milliseconds, below the 10 ms tick of
    /// the counters `/proc/stat` holds, so CPU % is as before. A `/proc/stat` that fails is read again
    /// by the next sample.
    ///
    /// `known_limit` is the container's previous reading's `memory_limit` (`None`: there is none).
    /// The memory limit file is read when the files are opened and then every
    /// [`CGROUP_LIMIT_REREAD_SAMPLES`]th sample, or at the next sample after [`Files::reread_limit`]
    /// (the sampler calls it on Docker's `update` event, which `docker update --memory` sends);
    /// the samples between use `known_limit`. Why: a limit changes only through an update, and the
    /// file is one of a sample's seven reads.
    pub fn sample_batched(
        &self,
        id: &str,
        pid: u32,
        files: &mut Files,
        buf: &mut Vec<u8>,
        system: &mut Option<ProcStat>,
        known_limit: Option<u64>,
    ) -> Result<Sample, Error> {
        let limit = known_limit.filter(|_| files.is_open() && files.pid == pid);
        self.take_limit(id, pid, files, true, buf, system, limit)
    }

    fn take(
        &self,
        id: &str,
        pid: u32,
        files: &mut Files,
        keep: bool,
        buf: &mut Vec<u8>,
        system: &mut Option<ProcStat>,
    ) -> Result<Sample, Error> {
        self.take_limit(id, pid, files, keep, buf, system, None)
    }

    /// [`CgroupSource::take`] with the limit to use while the kept files' `limit_left` runs.
    #[allow(clippy::too_many_arguments)]
    fn take_limit(
        &self,
        id: &str,
        pid: u32,
        files: &mut Files,
        keep: bool,
        buf: &mut Vec<u8>,
        system: &mut Option<ProcStat>,
        known_limit: Option<u64>,
    ) -> Result<Sample, Error> {
        if let Err(e) = check_id(id) {
            *files = Files::default();
            return Err(e);
        }
        if pid == 0 {
            *files = Files::default();
            return Err(Error::NotRunning);
        }
        if files.is_open() && files.pid == pid {
            if let Ok(sample) = self.read(files, buf, system, known_limit) {
                return Ok(sample);
            }
            // Stale (the cgroup was removed) or unreadable: start over from the paths below.
        }
        *files = Files::default();
        // The only borrow: `take` does not call itself, and `pid` borrows `path` only while it runs.
        let mut path = self.path.borrow_mut();
        let path = &mut *path;
        let result = self.open(id, pid, files, path, buf).and_then(|rel| {
            self.read(files, buf, system, None).map_err(|(slot, fail)| {
                self.set_slot_path(path, slot, &rel, pid);
                fail.at(path)
            })
        });
        match result {
            Ok(sample) => {
                if !keep || !files.try_keep(self.kept_max()) {
                    *files = Files::default();
                }
                Ok(sample)
            }
            Err(e) => {
                *files = Files::default();
                Err(e)
            }
        }
    }

    /// Descriptors kept files may use; the first call raises the soft `RLIMIT_NOFILE` (`files` module doc).
    fn kept_max(&self) -> usize {
        match self.kept_max.get() {
            Some(n) => n,
            None => {
                let n = files::raise_nofile();
                self.kept_max.set(Some(n));
                n
            }
        }
    }

    /// Finds the container's cgroup directory and opens every file a sample reads into `files` (empty).
    /// Returns the directory, relative to each controller's root. Errors name the file.
    fn open(
        &self,
        id: &str,
        pid: u32,
        files: &mut Files,
        path: &mut PathBuf,
        buf: &mut Vec<u8>,
    ) -> Result<heapless::String<CGROUP_PATH_MAX_BYTES>, Error> {
        let (rel, cpu) = self.find(id, pid, path, buf)?;
        files.cpu = Some(cpu);
        files.pid = pid;
        for slot in [
            Slot::Usage,
            Slot::Limit,
            Slot::Stat,
            Slot::Io,
            Slot::IoThrottle,
            Slot::Pids,
        ] {
            let Some(optional) = self.set_slot_path(path, slot, &rel, pid) else {
                continue;
            };
            let file = match File::open(&*path) {
                Ok(f) => f,
                Err(e) if optional && e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Read {
                        path: path.clone(),
                        source,
                    })
                }
            };
            *match slot {
                Slot::Usage => &mut files.usage,
                Slot::Limit => &mut files.limit,
                Slot::Stat => &mut files.stat,
                Slot::Io => &mut files.io,
                Slot::IoThrottle => &mut files.io_throttle,
                _ => &mut files.pids,
            } = Some(file);
        }
        self.set_slot_path(path, Slot::Net, &rel, pid);
        let read_error = |path: &Path, source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let net = File::open(&*path).map_err(|e| read_error(path, e))?;
        let meta = net.metadata().map_err(|e| read_error(path, e))?;
        // `--network host`: the host's interfaces are not the container's (Docker reports none).
        if self.host_net != Some((meta.dev(), meta.ino())) {
            files.net = Some(net);
        }
        Ok(rel)
    }

    /// Sets `path` to the file of `slot` for the container at `rel` with init `pid`. Returns whether the
    /// file is optional (missing reads as 0), or `None` when this tree has no such file (no controller).
    fn set_slot_path(&self, path: &mut PathBuf, slot: Slot, rel: &str, pid: u32) -> Option<bool> {
        const THROTTLE: &str = "blkio.throttle.io_service_bytes";
        let (base, name, optional) = match (&self.tree, slot) {
            (_, Slot::ProcStat) => (&self.proc_dir, "stat", false),
            (_, Slot::Net) => {
                set_path(
                    path,
                    &self.proc_dir,
                    &[decimal(u64::from(pid)).as_str(), "net/dev"],
                );
                return Some(false);
            }
            (Tree::V1 { cpuacct, .. }, Slot::Cpu) => (cpuacct, "cpuacct.usage", false),
            (Tree::V1 { memory, .. }, Slot::Usage) => (memory, "memory.usage_in_bytes", false),
            (Tree::V1 { memory, .. }, Slot::Limit) => (memory, "memory.limit_in_bytes", false),
            (Tree::V1 { memory, .. }, Slot::Stat) => (memory, "memory.stat", false),
            (Tree::V1 { blkio: None, .. }, Slot::Io | Slot::IoThrottle) => return None,
            (
                Tree::V1 {
                    blkio: Some(b),
                    cfq: true,
                    ..
                },
                Slot::Io,
            ) => (b, "blkio.io_service_bytes_recursive", true),
            (Tree::V1 { blkio: Some(b), .. }, Slot::Io) => (b, THROTTLE, false),
            (
                Tree::V1 {
                    blkio: Some(b),
                    cfq: true,
                    ..
                },
                Slot::IoThrottle,
            ) => (b, THROTTLE, false),
            (Tree::V1 { .. }, Slot::IoThrottle) => return None,
            (Tree::V1 { pids: None, .. }, Slot::Pids) => return None,
            (Tree::V1 { pids: Some(p), .. }, Slot::Pids) => (p, "pids.current", false),
            (Tree::V2 { root }, Slot::Cpu) => (root, "cpu.stat", false),
            (Tree::V2 { root }, Slot::Usage) => (root, "memory.current", false),
            (Tree::V2 { root }, Slot::Limit) => (root, "memory.max", false),
            (Tree::V2 { root }, Slot::Stat) => (root, "memory.stat", false),
            // io.stat and pids.current exist only where the io and pids controllers are enabled for the
            // container; without them Docker reports nothing, which reads as 0.
            (Tree::V2 { root }, Slot::Io) => (root, "io.stat", true),
            (Tree::V2 { .. }, Slot::IoThrottle) => return None,
            (Tree::V2 { root }, Slot::Pids) => (root, "pids.current", true),
        };
        let rel = if slot == Slot::ProcStat { "" } else { rel };
        set_path(path, base, &[rel, name]);
        Some(optional)
    }

    /// Reads every open file of `files` (see [`CgroupSource::sample`] for the order) and `/proc/stat`.
    /// A failure names the file's slot; the caller knows whether it has a path for it.
    /// `system`: a `/proc/stat` reading to use, else one is read and left there
    /// ([`CgroupSource::sample_batched`]).
    /// `known_limit`: the memory limit to use instead of reading its file, while the files'
    /// `limit_left` has not run out ([`CgroupSource::sample_batched`]).
    fn read(
        &self,
        files: &Files,
        buf: &mut Vec<u8>,
        system: &mut Option<ProcStat>,
        known_limit: Option<u64>,
    ) -> Result<Sample, (Slot, Fail)> {
        let v2 = self.version() == Version::V2;
        let cpu = read_slot(files.cpu.as_ref(), buf, End::Short)
            .and_then(|t| {
                let t = t.ok_or(Fail::Closed)?;
                if v2 {
                    parse_cpu_stat(t)
                } else {
                    parse_number(t)
                }
                .map_err(Fail::Parse)
            })
            .map_err(|f| (Slot::Cpu, f))?;
        let stat = match *system {
            Some(stat) => stat,
            None => {
                let stat = self.read_proc_stat(buf).map_err(|f| (Slot::ProcStat, f))?;
                *system = Some(stat);
                stat
            }
        };
        let number = |slot: Slot, file: Option<&File>, buf: &mut Vec<u8>| {
            read_slot(file, buf, End::Short)
                .and_then(|t| {
                    let t = t.ok_or(Fail::Closed)?;
                    // memory.max says `max` for no limit; the v1 files hold a number.
                    if v2 && slot == Slot::Limit {
                        parse_limit(t)
                    } else {
                        parse_number(t)
                    }
                    .map_err(Fail::Parse)
                })
                .map_err(|f| (slot, f))
        };
        let usage = number(Slot::Usage, files.usage.as_ref(), buf)?;
        let limit = match known_limit {
            Some(limit) if files.limit_left.get() > 0 => {
                files.limit_left.set(files.limit_left.get() - 1);
                limit
            }
            _ => {
                let limit = number(Slot::Limit, files.limit.as_ref(), buf)?;
                files.limit_left.set(CGROUP_LIMIT_REREAD_SAMPLES - 1);
                limit
            }
        };
        let mem_stat = read_slot(files.stat.as_ref(), buf, End::Short)
            .and_then(|t| parse_memory_stat(t.ok_or(Fail::Closed)?).map_err(Fail::Parse))
            .map_err(|f| (Slot::Stat, f))?;
        let io = match read_slot(files.io.as_ref(), buf, End::Short).map_err(|f| (Slot::Io, f))? {
            None => Io::default(),
            Some(t) if v2 => parse_io_stat(t).map_err(|w| (Slot::Io, Fail::Parse(w)))?,
            Some(t) => parse_blkio(t).map_err(|w| (Slot::Io, Fail::Parse(w)))?,
        };
        // v1 with CFQ: its file first when it holds an entry, else the throttle file (module doc).
        let io = match files.io_throttle.as_ref() {
            Some(file) if io.entries == 0 => {
                let t = read_slot(Some(file), buf, End::Short)
                    .map_err(|f| (Slot::IoThrottle, f))?
                    .ok_or((Slot::IoThrottle, Fail::Closed))?;
                parse_blkio(t).map_err(|w| (Slot::IoThrottle, Fail::Parse(w)))?
            }
            _ => io,
        };
        let pids = match files.pids.as_ref() {
            Some(file) => number(Slot::Pids, Some(file), buf)?,
            None => 0,
        };
        // net/dev has a record per interface, which the kernel hands out a page at a time: a short
        // read with room for another record is the whole file (one `pread` for a container's few
        // interfaces), else it is read on to its end.
        let net = match read_slot(
            files.net.as_ref(),
            buf,
            End::Records(NET_DEV_RECORD_MAX_BYTES),
        )
        .map_err(|f| (Slot::Net, f))?
        {
            Some(t) => docker_net(t).map_err(|w| (Slot::Net, Fail::Parse(w)))?,
            None => Net::default(),
        };
        Ok(Sample {
            cpu_total_ns: cpu,
            system_cpu_ns: stat.system_cpu_ns,
            online_cpus: stat.online_cpus.max(1),
            memory_usage: working_set(usage, mem_stat),
            // Docker (statsV1/statsV2): a limit above the host's memory becomes the host's memory.
            memory_limit: if limit > self.mem_total_bytes && self.mem_total_bytes > 0 {
                self.mem_total_bytes
            } else {
                limit
            },
            network_rx: net.rx,
            network_tx: net.tx,
            disk_read: io.read,
            disk_write: io.write,
            pids,
        })
    }

    /// `/proc/stat` through the descriptor opened at [`CgroupSource::detect`], as a prefix of at most
    /// [`FILE_MAX_BYTES`] (its long `intr` line follows the `cpu` lines we need).
    fn read_proc_stat(&self, buf: &mut Vec<u8>) -> Result<ProcStat, Fail> {
        let (text, whole) =
            pread_capped(&self.proc_stat, buf, FILE_MAX_BYTES, End::Short).map_err(Fail::Read)?;
        procfs::parse_stat(text, whole)
            .and_then(|s| docker_proc_stat(&s))
            .map_err(Fail::Parse)
    }

    /// The init PID of the running container `id` (what inspect calls `State.Pid`), read from the
    /// container's own cgroup, so that finding it costs dockerd nothing: the PIDs in `cgroup.procs`
    /// (of the memory hierarchy on v1, of the unified tree on v2), and of those the one whose
    /// innermost `NSpid` is 1 (the first PID of the container's PID namespace). With no such process
    /// (`--pid host`, or a kernel before 4.1 without `NSpid`) the lowest PID seen is taken, which is
    /// the oldest process unless PIDs wrapped around. At most [`PROCS_SCAN_MAX_COUNT`] PIDs are looked at.
    ///
    /// Only the layouts that name a container without a PID are tried (`docker/<id>`,
    /// `system.slice/docker-<id>.scope`); in any other layout this is [`Error::NoCgroup`] and the caller
    /// falls back to asking Docker (inspect), whose PID [`CgroupSource::sample`] then follows through
    /// `/proc/<pid>/cgroup`. An empty `cgroup.procs` (every process exited) is [`Error::NotRunning`].
    /// `buf` is scratch, as in [`CgroupSource::sample`].
    pub fn pid(&self, id: &str, buf: &mut Vec<u8>) -> Result<u32, Error> {
        check_id(id)?;
        let mut path = self.path.borrow_mut();
        let path = &mut *path;
        let base = match &self.tree {
            Tree::V1 { memory, .. } => memory,
            Tree::V2 { root } => root,
        };
        let mut candidates = heapless::Vec::<u32, PROCS_SCAN_MAX_COUNT>::new();
        let mut found = false;
        for layout in [Layout::Cgroupfs, Layout::Systemd] {
            // FromPid is never asked for here: `relative` needs no PID for the two fixed layouts.
            let Some(rel) = self.relative(layout, id, 0, path, buf)? else {
                continue;
            };
            set_path(path, base, &[&rel, "cgroup.procs"]);
            let text = match read_whole(path, buf) {
                Ok(text) => text,
                Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    continue
                }
                Err(e) => return Err(e),
            };
            for pid in parse_procs(text) {
                if candidates.push(pid).is_err() {
                    break;
                }
            }
            self.layout.set(layout);
            found = true;
            break;
        }
        if !found {
            let mut id_copy = heapless::String::new();
            // Cannot fail: check_id made `id` exactly CONTAINER_ID_MAX_BYTES long.
            let _ = id_copy.push_str(id);
            return Err(Error::NoCgroup { id: id_copy });
        }
        for &pid in &candidates {
            set_path(
                path,
                &self.proc_dir,
                &[decimal(u64::from(pid)).as_str(), "status"],
            );
            // A process that exited since the list was read is simply not the init.
            if let Ok(status) = read_whole(path, buf) {
                if parse_nspid_innermost(status) == Some(1) {
                    return Ok(pid);
                }
            }
        }
        candidates
            .iter()
            .copied()
            .filter(|p| *p != 0)
            .min()
            .ok_or(Error::NotRunning)
    }

    /// Finds the container's cgroup directory (relative to each controller's root) and opens its CPU
    /// counter, which doubles as the probe: a missing directory is a missing first file.
    fn find(
        &self,
        id: &str,
        pid: u32,
        path: &mut PathBuf,
        buf: &mut Vec<u8>,
    ) -> Result<(heapless::String<CGROUP_PATH_MAX_BYTES>, File), Error> {
        let first = self.layout.get();
        let order = core::iter::once(first).chain(LAYOUTS.into_iter().filter(|l| *l != first));
        for layout in order {
            let Some(rel) = self.relative(layout, id, pid, path, buf)? else {
                continue;
            };
            self.set_slot_path(path, Slot::Cpu, &rel, pid);
            match File::open(&*path) {
                Ok(file) => {
                    self.layout.set(layout);
                    return Ok((rel, file));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Read {
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
        let mut id_copy = heapless::String::new();
        // Cannot fail: check_id made `id` exactly CONTAINER_ID_MAX_BYTES long.
        let _ = id_copy.push_str(id);
        Err(Error::NoCgroup { id: id_copy })
    }

    /// The relative cgroup path of `id` in `layout`, or `None` when that layout cannot name it.
    fn relative(
        &self,
        layout: Layout,
        id: &str,
        pid: u32,
        path: &mut PathBuf,
        buf: &mut Vec<u8>,
    ) -> Result<Option<heapless::String<CGROUP_PATH_MAX_BYTES>>, Error> {
        let mut rel = heapless::String::<CGROUP_PATH_MAX_BYTES>::new();
        // The fixed layouts are at most 90 bytes with a 64-byte ID: far below the capacity.
        let fits = match layout {
            Layout::Cgroupfs => rel.push_str("docker/").and_then(|()| rel.push_str(id)),
            Layout::Systemd => rel
                .push_str("system.slice/docker-")
                .and_then(|()| rel.push_str(id))
                .and_then(|()| rel.push_str(".scope")),
            Layout::FromPid => {
                set_path(
                    path,
                    &self.proc_dir,
                    &[decimal(u64::from(pid)).as_str(), "cgroup"],
                );
                let text = match read_capped(path, buf, PID_CGROUP_MAX_BYTES) {
                    Ok(true) => &buf[..],
                    // Too long, or the process is gone: this layout cannot say.
                    Ok(false) => return Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(Error::Read {
                            path: path.clone(),
                            source,
                        })
                    }
                };
                match parse_pid_cgroup(text, self.version() == Version::V2) {
                    // Only a path that names the container: a reused PID must not lead elsewhere.
                    Some(p) if p.contains(id) => rel.push_str(p),
                    _ => return Ok(None),
                }
            }
        };
        Ok(fits.is_ok().then_some(rel))
    }
}

impl fmt::Display for CgroupSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = match self.version() {
            Version::V1 => "v1",
            Version::V2 => "v2",
        };
        write!(
            f,
            "cgroup {v} at {}, host procfs at {}",
            self.cgroup_dir.display(),
            self.proc_dir.display()
        )
    }
}

/// What a candidate cgroup directory holds: `None` when it is not there at all.
fn classify(dir: &Path) -> Option<Result<Tree, Unavailable>> {
    if !dir.is_dir() {
        return None;
    }
    if dir.join("cgroup.controllers").exists() {
        // The root of a v2 hierarchy has no cgroup.type (CFTYPE_NOT_ON_ROOT); a namespace's view does.
        if dir.join("cgroup.type").exists() {
            return Some(Err(Unavailable::OwnView {
                path: dir.to_path_buf(),
            }));
        }
        let controllers = dir.join("cgroup.controllers");
        let text = match fs::read(&controllers) {
            Ok(t) => t,
            Err(source) => {
                return Some(Err(Unavailable::Read {
                    path: controllers,
                    source,
                }))
            }
        };
        if !fields(&text).any(|c| c == b"memory") {
            return Some(Err(Unavailable::MissingController {
                path: dir.to_path_buf(),
                controller: "memory",
            }));
        }
        return Some(Ok(Tree::V2 {
            root: dir.to_path_buf(),
        }));
    }
    let memory = dir.join("memory");
    let cpuacct = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_dir());
    if !memory.is_dir() && cpuacct.is_none() {
        // Neither v2 nor v1: an empty mount point, or a tmpfs without controllers.
        return None;
    }
    if !memory.is_dir() {
        return Some(Err(Unavailable::MissingController {
            path: dir.to_path_buf(),
            controller: "memory",
        }));
    }
    // Only a v1 hierarchy's root has cgroup.sane_behavior (CFTYPE_ONLY_ON_ROOT).
    if !memory.join("cgroup.sane_behavior").exists() {
        return Some(Err(Unavailable::OwnView { path: memory }));
    }
    let Some(cpuacct) = cpuacct else {
        return Some(Err(Unavailable::MissingController {
            path: dir.to_path_buf(),
            controller: "cpuacct",
        }));
    };
    let blkio = Some(dir.join("blkio")).filter(|p| p.is_dir());
    let cfq = blkio
        .as_ref()
        .is_some_and(|b| b.join("blkio.io_serviced_recursive").exists());
    let pids = Some(dir.join("pids")).filter(|p| p.is_dir());
    Some(Ok(Tree::V1 {
        cpuacct,
        memory,
        blkio,
        pids,
        cfq,
    }))
}

/// Which file of a sample failed: the fresh pass turns it back into a path for the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Cpu,
    ProcStat,
    Usage,
    Limit,
    Stat,
    Io,
    IoThrottle,
    Pids,
    Net,
}

/// How reading one file failed, before the path is known.
#[derive(Debug)]
enum Fail {
    Read(io::Error),
    TooLarge,
    Parse(&'static str),
    /// A required file is not open (cannot happen after `open`; reads as the file missing).
    Closed,
}

impl Fail {
    /// The error naming `path`.
    fn at(self, path: &Path) -> Error {
        let path = path.to_path_buf();
        match self {
            Fail::Read(source) => Error::Read { path, source },
            Fail::Closed => Error::Read {
                path,
                source: io::ErrorKind::NotFound.into(),
            },
            Fail::TooLarge => Error::TooLarge {
                path,
                limit: FILE_MAX_BYTES,
            },
            Fail::Parse(what) => Error::Parse { path, what },
        }
    }
}

/// The whole text of an open file (at most [`FILE_MAX_BYTES`]), or `None` when there is no file.
fn read_slot<'b>(
    file: Option<&File>,
    buf: &'b mut Vec<u8>,
    end: End,
) -> Result<Option<&'b [u8]>, Fail> {
    let Some(file) = file else {
        return Ok(None);
    };
    match pread_capped(file, buf, FILE_MAX_BYTES, end) {
        Ok((text, true)) => Ok(Some(text)),
        Ok((_, false)) => Err(Fail::TooLarge),
        Err(e) => Err(Fail::Read(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    pub(super) use crate::docker::stats;

    // ---- fixtures (tests/fixtures/cgroup/README.md says where each comes from) ----

    pub(super) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(name)
    }

    pub(super) fn source(tree: &str) -> CgroupSource {
        CgroupSource::detect(&fixture(tree)).unwrap_or_else(|e| panic!("{tree}: {e}"))
    }

    /// `(name, id, pid)` of the containers of a recorded tree.
    pub(super) fn recorded(tree: &str) -> Vec<(String, String, u32)> {
        let text = fs::read_to_string(fixture(tree).join("containers.txt")).unwrap();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap())
            })
            .collect()
    }

    pub(super) fn docker_json(tree: &str, name: &str, when: &str) -> Sample {
        let bytes = fs::read(fixture(tree).join(format!("docker/{name}-{when}.json"))).unwrap();
        stats::parse(&bytes).unwrap()
    }

    pub(super) const NGINX: &str =
        "15d3b24aa42343c78d59905003f9cdfa03173067eeb741bf39f3476375f01a53";
    pub(super) const PIHOLE: &str =
        "881bf4fed68052952b45a0fcda8b1d27fd15aeeca2e184b17fa9bd25f7f360c2";
    pub(super) const HASS: &str =
        "0065ea0d18ee19625ef87512856375f564988a76b3cbc2ee393bcba375c7715e";
    pub(super) const ROOTLESS: &str =
        "c5195ca227eac15e1574951c3337a2abffe7aa76a45f44aabc1727a0ce9255f8";
    pub(super) const REUSED: &str =
        "bb45f35c6f0b081b77da2d031e2ad6316c67c57d1547fd20a5c1982a4d5c92a9";
    pub(super) const CFQ_USED: &str =
        "92a91f99372e6ad4c0116b41eab6437d7303f3b87c8461947ebd01539a3a5c9c";
    pub(super) const CFQ_EMPTY: &str =
        "5bcffb045f2d15d58c57fc17feaa9c54ad43b211a86c3f2ec9881667e058cff6";

    /// MemTotal 2014256 kB of the 2-CPU hand-written trees, in bytes.
    pub(super) const MEM_2G: u64 = 2_014_256 * 1024;
    /// MemTotal 3884360 kB of the Pi 4 tree, in bytes.
    pub(super) const MEM_PI: u64 = 3_884_360 * 1024;
    /// `cpu  48213 12 9034 1753320 802 0 211 57`: the first seven counters, 1811592 ticks (steal 57 left out).
    pub(super) const SYS_2CPU_NS: u64 = 1_811_592 * 10_000_000;

    // ---- detection ----

    #[test]
    fn detect_finds_v1_and_v2_trees() {
        let v1 = source("v1");
        assert_eq!(v1.version(), Version::V1);
        assert_eq!(v1.cgroup_dir(), fixture("v1/sys/fs/cgroup"));
        assert_eq!(v1.proc_dir(), fixture("v1/proc"));
        assert_eq!(v1.mem_total_bytes(), 25_276_502_016);
        assert!(matches!(v1.tree, Tree::V1 { cfq: false, .. }));
        assert!(v1.host_net.is_some());
        assert_eq!(
            v1.to_string(),
            format!(
                "cgroup v1 at {}, host procfs at {}",
                fixture("v1/sys/fs/cgroup").display(),
                fixture("v1/proc").display()
            )
        );
        for tree in ["v2-cgroupfs", "v2-systemd", "v2-rootless"] {
            let s = source(tree);
            assert_eq!(s.version(), Version::V2, "{tree}");
            assert_eq!(s.cgroup_dir(), fixture(tree).join("sys/fs/cgroup"));
        }
        assert_eq!(source("v2-systemd").mem_total_bytes(), MEM_PI);
        let cfq = source("v1-cfq");
        assert!(
            matches!(&cfq.tree, Tree::V1 { cfq: true, pids: None, cpuacct, .. }
            if cpuacct.ends_with("cpu,cpuacct"))
        );
    }

    #[test]
    fn detect_prefers_the_hosts_tree_and_procfs_under_host() {
        let s = source("v2-container");
        assert_eq!(s.cgroup_dir(), fixture("v2-container/host/sys/fs/cgroup"));
        assert_eq!(s.proc_dir(), fixture("v2-container/host/proc"));
        assert_eq!(s.mem_total_bytes(), MEM_2G);
    }

    #[test]
    fn detect_explains_what_is_missing() {
        let err = |tree: &str| CgroupSource::detect(&fixture(tree)).unwrap_err();
        assert!(matches!(err("no-such-tree"), Unavailable::NoTree { .. }));
        assert!(
            matches!(err("v2-own-view"), Unavailable::OwnView { path } if path.ends_with("sys/fs/cgroup"))
        );
        assert!(
            matches!(err("v1-own-view"), Unavailable::OwnView { path } if path.ends_with("cgroup/memory"))
        );
        assert!(matches!(
            err("v2-no-memory"),
            Unavailable::MissingController {
                controller: "memory",
                ..
            }
        ));
        assert!(
            matches!(err("private-pids"), Unavailable::NotHostPids { path } if path.ends_with("private-pids/proc"))
        );
        // A usable tree without any procfs.
        let dir = std::env::temp_dir().join(format!("dmtest-cgroup-noproc-{}", std::process::id()));
        fs::create_dir_all(dir.join("sys/fs/cgroup")).unwrap();
        fs::write(dir.join("sys/fs/cgroup/cgroup.controllers"), "cpu memory\n").unwrap();
        assert!(matches!(
            CgroupSource::detect(&dir),
            Err(Unavailable::NoProc { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();

        let texts = [
            err("no-such-tree").to_string(),
            err("v2-own-view").to_string(),
            err("v2-no-memory").to_string(),
            err("private-pids").to_string(),
        ];
        assert!(texts[0].starts_with("no cgroup tree at /"), "{}", texts[0]);
        assert!(
            texts[0].ends_with("no-such-tree/sys/fs/cgroup"),
            "{}",
            texts[0]
        );
        assert!(
            texts[1].ends_with("shows only this container's own cgroup; mount the host's /sys/fs/cgroup at /host/sys/fs/cgroup"),
            "{}",
            texts[1]
        );
        assert!(
            texts[2].ends_with("has no memory controller"),
            "{}",
            texts[2]
        );
        assert!(
            texts[3].contains("is not the host's pid namespace"),
            "{}",
            texts[3]
        );
        for t in &texts {
            assert!(!t.contains('\n'), "{t}");
        }
    }

    // ---- samples ----

    #[test]
    fn v1_recording_agrees_with_dockers_documents_around_it() {
        // Each container was read between two Docker stats calls (before, after); see the README.
        let s = source("v1");
        let mut buf = Vec::new();
        for (name, id, pid) in recorded("v1") {
            let ours = s.sample(&id, pid, &mut buf).unwrap();
            let before = docker_json("v1", &name, "before");
            let after = docker_json("v1", &name, "after");
            for (what, lo, x, hi) in [
                (
                    "cpu",
                    before.cpu_total_ns,
                    ours.cpu_total_ns,
                    after.cpu_total_ns,
                ),
                (
                    "system",
                    before.system_cpu_ns,
                    ours.system_cpu_ns,
                    after.system_cpu_ns,
                ),
                ("rx", before.network_rx, ours.network_rx, after.network_rx),
                ("tx", before.network_tx, ours.network_tx, after.network_tx),
                ("read", before.disk_read, ours.disk_read, after.disk_read),
                (
                    "write",
                    before.disk_write,
                    ours.disk_write,
                    after.disk_write,
                ),
            ] {
                assert!(lo <= x && x <= hi, "{name} {what}: {lo} ≤ {x} ≤ {hi}");
            }
            assert_eq!(ours.memory_limit, before.memory_limit, "{name}");
            assert_eq!(ours.online_cpus, before.online_cpus, "{name}");
            assert_eq!(ours.pids, before.pids, "{name}");
            assert_eq!(ours.memory_usage, before.memory_usage, "{name}");
        }
        // Exact values, by hand from the files.
        let (_, id, pid) = &recorded("v1")[0];
        assert_eq!(
            s.sample(id, *pid, &mut buf).unwrap(),
            Sample {
                cpu_total_ns: 24_697_808,
                system_cpu_ns: 896_945 * 10_000_000,
                online_cpus: 2,
                memory_usage: 331_776,
                memory_limit: 64 << 20, // --memory 64m, below the host's RAM: kept
                network_rx: 586,
                network_tx: 0,
                disk_read: 0,
                disk_write: 0,
                pids: 1,
            }
        );
        let by_name = |n: &str| recorded("v1").into_iter().find(|c| c.0 == n).unwrap();
        let (_, id, pid) = by_name("disk");
        let disk = s.sample(&id, pid, &mut buf).unwrap();
        assert_eq!((disk.disk_read, disk.disk_write), (8 << 20, 8 << 20));
        assert_eq!(disk.memory_limit, 25_276_502_016); // unlimited → the host's MemTotal
        let (_, id, pid) = by_name("memory");
        assert_eq!(
            s.sample(&id, pid, &mut buf).unwrap().memory_usage,
            34_140_160
        );
        // --network host: the host's counters are not the container's.
        let (_, id, pid) = by_name("hostnet");
        let host = s.sample(&id, pid, &mut buf).unwrap();
        assert_eq!((host.network_rx, host.network_tx), (0, 0));
        assert_eq!(s.layout(), Layout::Cgroupfs);
    }

    #[test]
    fn v1_burner_recordings_give_fifty_percent() {
        // Δcpu 7804016632 − 4755548605 = 3048468027 ns; Δsystem (898160 − 896945) ticks = 12.15 s;
        // 3048468027 / 12150000000 × 2 × 100 = 50.18 → 50.2 (a --cpus 0.5 quota).
        let (_, id, pid) = recorded("v1-t1")[0].clone();
        let mut buf = Vec::new();
        let a = source("v1").sample(&id, pid, &mut buf).unwrap();
        let b = source("v1-t1").sample(&id, pid, &mut buf).unwrap();
        assert_eq!(b.cpu_total_ns - a.cpu_total_ns, 3_048_468_027);
        assert_eq!(crate::stats::compute(Some(&a), &b).cpu_percent, 50.2);
    }

    fn nginx() -> Sample {
        Sample {
            cpu_total_ns: 7_654_321_000,
            system_cpu_ns: SYS_2CPU_NS,
            online_cpus: 2,
            memory_usage: 15_728_640 - 3_145_728,
            memory_limit: MEM_2G, // memory.max `max`
            network_rx: 1_048_576,
            network_tx: 524_288,
            disk_read: 1_459_200 + 90_430_464,
            disk_write: 314_773_504 + 299_008_000,
            pids: 3,
        }
    }

    #[test]
    fn v2_cgroupfs_layout() {
        let s = source("v2-cgroupfs");
        let mut buf = Vec::new();
        assert_eq!(s.sample(NGINX, 4242, &mut buf).unwrap(), nginx());
        assert_eq!(s.layout(), Layout::Cgroupfs);
    }

    #[test]
    fn v2_systemd_layout() {
        let s = source("v2-systemd");
        let mut buf = Vec::new();
        let sys = 10_050_045 * 10_000_000; // 123456+789+45678+9876543+2345+0+1234 ticks
        assert_eq!(
            s.sample(PIHOLE, 1337, &mut buf).unwrap(),
            Sample {
                cpu_total_ns: 98_765_432_000,
                system_cpu_ns: sys,
                online_cpus: 4,
                memory_usage: 83_886_080 - 20_971_520,
                memory_limit: 268_435_456,
                network_rx: 52_428_800,
                network_tx: 10_485_760,
                disk_read: 4_096_000,
                disk_write: 12_288_000,
                pids: 14,
            }
        );
        assert_eq!(s.layout(), Layout::Systemd);
        // An 8 GiB limit on a 4 GB Pi reads as the Pi's memory; no io.stat and no pids.current (those
        // controllers are not enabled for it) read as 0; --network host reads as no network.
        assert_eq!(
            s.sample(HASS, 2001, &mut buf).unwrap(),
            Sample {
                cpu_total_ns: 555_000_000_000,
                system_cpu_ns: sys,
                online_cpus: 4,
                memory_usage: 314_572_800 - 104_857_600,
                memory_limit: MEM_PI,
                ..Sample::default()
            }
        );
    }

    /// Issue 18: a batch reads `/proc/stat` once, and each sample is the one `sample` gives.
    #[test]
    fn a_batch_shares_one_proc_stat_reading() {
        let s = source("v2-systemd");
        let mut buf = Vec::new();
        let (mut a, mut b) = (Files::default(), Files::default());
        let mut system = None;
        let first = s
            .sample_batched(PIHOLE, 1337, &mut a, &mut buf, &mut system, None)
            .unwrap();
        assert_eq!(first, s.sample(PIHOLE, 1337, &mut buf).unwrap());
        let read = system.expect("the first sample of a batch reads /proc/stat");
        assert_eq!(read.system_cpu_ns, first.system_cpu_ns);
        // A reading left in `system` is what the batch's next samples use.
        let given = ProcStat {
            system_cpu_ns: 7,
            online_cpus: 3,
        };
        system = Some(given);
        let second = s
            .sample_batched(HASS, 2001, &mut b, &mut buf, &mut system, None)
            .unwrap();
        assert_eq!((second.system_cpu_ns, second.online_cpus), (7, 3));
        assert_eq!(system, Some(given));
        let alone = s.sample(HASS, 2001, &mut buf).unwrap();
        assert_eq!(
            Sample {
                system_cpu_ns: alone.system_cpu_ns,
                online_cpus: alone.online_cpus,
                ..second
            },
            alone
        );
    }

    /// Issue 18: the limit file is read on open, then every `CGROUP_LIMIT_REREAD_SAMPLES`th sample
    /// and after `reread_limit`; the samples between take the known limit.
    #[test]
    fn the_limit_is_read_on_open_periodically_and_after_an_update() {
        let s = source("v2-systemd");
        let mut buf = Vec::new();
        let mut files = Files::default();
        let real = 268_435_456;
        let mut limit = |files: &mut Files, known| {
            s.sample_batched(PIHOLE, 1337, files, &mut buf, &mut None, Some(known))
                .unwrap()
                .memory_limit
        };
        // Not open yet: the file, whatever the caller knows.
        assert_eq!(limit(&mut files, 5), real);
        for _ in 1..CGROUP_LIMIT_REREAD_SAMPLES {
            assert_eq!(limit(&mut files, 5), 5);
        }
        assert_eq!(limit(&mut files, 5), real);
        assert_eq!(limit(&mut files, 5), 5);
        files.reread_limit();
        assert_eq!(limit(&mut files, 5), real);
        // No previous reading: the file.
        let sample = s
            .sample_batched(PIHOLE, 1337, &mut files, &mut buf, &mut None, None)
            .unwrap();
        assert_eq!(sample.memory_limit, real);
    }

    #[test]
    fn v2_rootless_layout_comes_from_proc_pid_cgroup() {
        let s = source("v2-rootless");
        let mut buf = Vec::new();
        assert_eq!(
            s.sample(ROOTLESS, 7777, &mut buf).unwrap(),
            Sample {
                cpu_total_ns: 1_000_000_000,
                system_cpu_ns: SYS_2CPU_NS,
                online_cpus: 2,
                memory_usage: 4_194_304,
                memory_limit: MEM_2G,
                network_rx: 2048,
                network_tx: 1024,
                disk_read: 0,
                disk_write: 0,
                pids: 1,
            }
        );
        assert_eq!(s.layout(), Layout::FromPid);
        // A PID whose cgroup does not name the container (reused), or lies outside our cgroup namespace.
        for (id, pid) in [(REUSED, 8888), (ROOTLESS, 9999), (ROOTLESS, 123_456)] {
            let e = s.sample(id, pid, &mut buf).unwrap_err();
            assert!(
                matches!(&e, Error::NoCgroup { id: got } if got == id),
                "{id} {pid}: {e}"
            );
        }
        // The remembered layout does not stop the others from being tried.
        assert!(s.sample(ROOTLESS, 7777, &mut buf).is_ok());
    }

    #[test]
    fn v2_container_reads_the_hosts_files() {
        let mut buf = Vec::new();
        assert_eq!(
            source("v2-container")
                .sample(NGINX, 4242, &mut buf)
                .unwrap(),
            nginx()
        );
    }

    #[test]
    fn v1_cfq_files_come_first_when_they_have_entries() {
        let s = source("v1-cfq");
        let mut buf = Vec::new();
        let used = s.sample(CFQ_USED, 501, &mut buf).unwrap();
        assert_eq!(
            used,
            Sample {
                cpu_total_ns: 2_000_000_000,
                system_cpu_ns: SYS_2CPU_NS,
                online_cpus: 2,
                memory_usage: 10_485_760 - 3_145_728, // total_inactive_file, not inactive_file
                memory_limit: MEM_2G,
                network_rx: 100,
                network_tx: 200,
                disk_read: 4096 + 1000,
                disk_write: 8192,
                pids: 0, // no pids controller
            }
        );
        let empty = s.sample(CFQ_EMPTY, 502, &mut buf).unwrap();
        assert_eq!((empty.disk_read, empty.disk_write), (100, 200));
    }

    #[test]
    fn sample_errors_name_the_problem() {
        let s = source("v2-cgroupfs");
        let mut buf = Vec::new();
        let errors = [
            s.sample("15d3b24aa423", 4242, &mut buf).unwrap_err(),
            s.sample(NGINX, 0, &mut buf).unwrap_err(),
            s.sample(PIHOLE, 4242, &mut buf).unwrap_err(),
            // The cgroup is there but the process is gone: net/dev names the file.
            s.sample(NGINX, 4243, &mut buf).unwrap_err(),
        ];
        assert!(matches!(errors[0], Error::BadId { len: 12 }));
        assert!(matches!(errors[1], Error::NotRunning));
        assert!(matches!(errors[2], Error::NoCgroup { .. }));
        assert!(
            matches!(&errors[3], Error::Read { path, .. } if path.ends_with("proc/4243/net/dev"))
        );
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts[0],
            "cgroup stats need the full container id (64 lowercase hex characters), got 12 bytes"
        );
        assert_eq!(texts[1], "cgroup stats: container not running (pid 0)");
        assert_eq!(
            texts[2],
            "no cgroup directory for container 881bf4fed680 (stopped, or an unknown cgroup layout)"
        );
        assert!(texts[3].starts_with("cannot read /"), "{}", texts[3]);
        for t in &texts {
            assert!(
                !t.contains('\n') && t.starts_with(|c: char| c.is_ascii_lowercase()),
                "{t}"
            );
        }
    }

    #[test]
    fn files_larger_than_the_cap_are_errors() {
        let dir = std::env::temp_dir().join(format!("dmtest-cgroup-cap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("io.stat");
        let line = b"8:0 rbytes=1 wbytes=1\n";
        let big: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(FILE_MAX_BYTES + 1)
            .collect();
        fs::write(&path, &big).unwrap();
        let mut buf = Vec::new();
        let e = read_whole(&path, &mut buf).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::TooLarge {
                    limit: FILE_MAX_BYTES,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .ends_with("is larger than the 65536-byte read limit"),
            "{e}"
        );
        fs::write(&path, &big[..FILE_MAX_BYTES]).unwrap();
        assert_eq!(read_whole(&path, &mut buf).unwrap().len(), FILE_MAX_BYTES);
        fs::remove_dir_all(&dir).unwrap();
    }

    // ---- the init PID from the container's cgroup (issue #4) ----

    #[test]
    fn procs_and_nspid_parsers() {
        assert_eq!(
            parse_procs(b"4301\n4242\n4302\n").collect::<Vec<_>>(),
            [4301, 4242, 4302]
        );
        assert_eq!(parse_procs(b"").count(), 0);
        // Junk lines and PIDs past u32 are skipped, a missing final newline is fine.
        assert_eq!(
            parse_procs(b"12\nx\n99999999999\n 7").collect::<Vec<_>>(),
            [12, 7]
        );
        assert_eq!(
            parse_nspid_innermost(b"Name:\tsh\nNSpid:\t27933\t1\nNSpgid:\t27933\t1\n"),
            Some(1)
        );
        assert_eq!(parse_nspid_innermost(b"NSpid:\t4301\t12\t29\n"), Some(29));
        assert_eq!(parse_nspid_innermost(b"NSpid:\t2001\n"), Some(2001));
        assert_eq!(parse_nspid_innermost(b"Name:\tsh\nPid:\t1\n"), None);
        assert_eq!(parse_nspid_innermost(b"NSpid:\t12\tx\n"), None);
        assert_eq!(parse_nspid_innermost(b"NSpid:\n"), None);
    }

    #[test]
    fn pid_comes_from_the_containers_own_cgroup() {
        let mut buf = Vec::new();
        // v1 (recorded tree; cgroup.procs added by hand): every container's init, as containers.txt.
        let v1 = source("v1");
        for (name, id, pid) in recorded("v1") {
            assert_eq!(v1.pid(&id, &mut buf).unwrap(), pid, "{name}");
        }
        assert_eq!(v1.layout(), Layout::Cgroupfs);
        // v2, unsorted cgroup.procs: the master (NSpid 1) is found behind a worker.
        assert_eq!(source("v2-cgroupfs").pid(NGINX, &mut buf).unwrap(), 4242);
        assert_eq!(source("v2-container").pid(NGINX, &mut buf).unwrap(), 4242);
        let systemd = source("v2-systemd");
        assert_eq!(systemd.pid(PIHOLE, &mut buf).unwrap(), 1337);
        assert_eq!(systemd.layout(), Layout::Systemd);
        // --pid host: no process is 1 in a namespace of its own; the lowest PID is the init.
        assert_eq!(systemd.pid(HASS, &mut buf).unwrap(), 2001);
        let cfq = source("v1-cfq");
        assert_eq!(cfq.pid(CFQ_USED, &mut buf).unwrap(), 501);
        assert!(matches!(
            cfq.pid(CFQ_EMPTY, &mut buf),
            Err(Error::NotRunning)
        ));
    }

    #[test]
    fn pid_needs_a_layout_that_names_the_container() {
        let mut buf = Vec::new();
        // Rootless: only /proc/<pid>/cgroup leads there, and that needs the PID: the caller asks Docker.
        let e = source("v2-rootless").pid(ROOTLESS, &mut buf).unwrap_err();
        assert!(
            matches!(&e, Error::NoCgroup { id } if id == ROOTLESS),
            "{e}"
        );
        assert!(matches!(
            source("v2-cgroupfs").pid(PIHOLE, &mut buf),
            Err(Error::NoCgroup { .. })
        ));
        assert!(matches!(
            source("v2-cgroupfs").pid("15d3b24aa423", &mut buf),
            Err(Error::BadId { len: 12 })
        ));
    }
}
