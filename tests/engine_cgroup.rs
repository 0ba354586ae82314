//! The cgroup stats source against the real engine: each cgroup [`Sample`] agrees with the Docker source
//! (`docker::Client::stats`) read right before and right after it: cumulative counters (CPU, system CPU,
//! network, block I/O) lie between the two Docker readings, limit, pids and online CPUs are equal,
//! memory is within 5% or 256 KiB; CPU % over about a second of a burner capped at half a core is within
//! 5 points of Docker's. And the warmed-up sample allocates nothing.
//!
//! Every test runs its body under a watchdog thread, so a hang fails the test instead of stalling CI.
mod support;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use dockmon_agent::docker::{endpoint, Client};
use dockmon_agent::sampler::source::cgroup::{CgroupSource, Error, Version};
use dockmon_agent::stats::{self, Sample};
use support::*;

// ---- a per-thread allocation counter (tests run on parallel threads) ----------------------------------

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a thread-local `Cell`
// with a const initialiser and no destructor, so touching it never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// ---- helpers ---------------------------------------------------------------------------------------

/// Runs `body` on its own thread and fails the test if it has not finished within `limit`.
fn watchdog<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("test body ran past its {limit:?} watchdog"),
        Err(RecvTimeoutError::Disconnected) => panic!("test body panicked (message above)"),
    }
}

fn client() -> Client {
    let ep = endpoint::select(None, endpoint::is_socket).unwrap();
    async_io::block_on(Client::connect(ep)).expect("connect to the engine")
}

fn docker_stats(c: &Client, id: &str) -> Sample {
    let mut buf = Vec::new();
    async_io::block_on(c.stats(id, &mut buf)).unwrap_or_else(|e| panic!("docker stats {id}: {e}"))
}

fn pid_of(id: &str) -> u32 {
    docker(&["inspect", "--format", "{{.State.Pid}}", id])
        .trim()
        .parse()
        .unwrap()
}

fn source() -> CgroupSource {
    CgroupSource::detect(Path::new("/"))
        .unwrap_or_else(|e| panic!("this host's cgroup files must be usable for these tests: {e}"))
}

/// Docker before, cgroup, Docker after.
fn bracket(c: &Client, s: &CgroupSource, id: &str, pid: u32) -> (Sample, Sample, Sample) {
    let before = docker_stats(c, id);
    let mut buf = Vec::new();
    let ours = s
        .sample(id, pid, &mut buf)
        .unwrap_or_else(|e| panic!("cgroup sample of {id}: {e}"));
    let after = docker_stats(c, id);
    (before, ours, after)
}

fn assert_agrees(name: &str, before: &Sample, ours: &Sample, after: &Sample) {
    for (what, lo, x, hi) in [
        (
            "cpu_total_ns",
            before.cpu_total_ns,
            ours.cpu_total_ns,
            after.cpu_total_ns,
        ),
        (
            "system_cpu_ns",
            before.system_cpu_ns,
            ours.system_cpu_ns,
            after.system_cpu_ns,
        ),
        (
            "network_rx",
            before.network_rx,
            ours.network_rx,
            after.network_rx,
        ),
        (
            "network_tx",
            before.network_tx,
            ours.network_tx,
            after.network_tx,
        ),
        (
            "disk_read",
            before.disk_read,
            ours.disk_read,
            after.disk_read,
        ),
        (
            "disk_write",
            before.disk_write,
            ours.disk_write,
            after.disk_write,
        ),
    ] {
        assert!(
            lo <= x && x <= hi,
            "{name} {what}: cgroup {x} not between docker before {lo} and after {hi}"
        );
    }
    assert_eq!(
        ours.memory_limit, before.memory_limit,
        "{name} memory_limit"
    );
    assert_eq!(ours.memory_limit, after.memory_limit, "{name} memory_limit");
    assert_eq!(ours.online_cpus, before.online_cpus, "{name} online_cpus");
    assert_eq!(ours.pids, before.pids, "{name} pids");
    assert_eq!(ours.pids, after.pids, "{name} pids");
    let near = |d: u64| ours.memory_usage.abs_diff(d) <= (d / 20).max(256 * 1024);
    let between = (before.memory_usage.min(after.memory_usage)
        ..=before.memory_usage.max(after.memory_usage))
        .contains(&ours.memory_usage);
    assert!(
        between || near(before.memory_usage) || near(after.memory_usage),
        "{name} memory: cgroup {} vs docker {} / {}",
        ours.memory_usage,
        before.memory_usage,
        after.memory_usage
    );
    eprintln!(
        "{name}: memory cgroup {} docker {}..{} (Δ {} B); limit {}; pids {}; cpus {}; rx {} tx {}; read {} write {}; cpu {} in [{}, {}]",
        ours.memory_usage,
        before.memory_usage,
        after.memory_usage,
        ours.memory_usage as i128 - before.memory_usage as i128,
        ours.memory_limit,
        ours.pids,
        ours.online_cpus,
        ours.network_rx,
        ours.network_tx,
        ours.disk_read,
        ours.disk_write,
        ours.cpu_total_ns,
        before.cpu_total_ns,
        after.cpu_total_ns
    );
}

// ---- tests -------------------------------------------------------------------------------------------

#[test]
fn detects_this_hosts_cgroup_tree_and_dockers_memory() {
    require_engine();
    watchdog(Duration::from_secs(30), || {
        let s = source();
        let version = docker(&["info", "--format", "{{.CgroupVersion}}"]);
        let want = if version.trim() == "2" {
            Version::V2
        } else {
            Version::V1
        };
        assert_eq!(s.version(), want, "docker info CgroupVersion {version}");
        // Docker's machineMemory, the limit of unlimited containers.
        let mem: u64 = docker(&["info", "--format", "{{.MemTotal}}"])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(s.mem_total_bytes(), mem);
    });
}

#[test]
fn cgroup_samples_agree_with_docker_before_and_after() {
    require_engine();
    let mut cs = Containers::new("cgroup");
    let idle = cs.run("idle", &["--memory", "64m"], &["sleep", "100000"]);
    let burner = cs.run(
        "burner",
        &["--cpus", "0.5"],
        &["sh", "-c", "while :; do :; done"],
    );
    let memory = cs.run(
        "memory",
        &[],
        &[
            "sh",
            "-c",
            "head -c 33554432 /dev/zero > /dev/shm/hold; sleep 100000",
        ],
    );
    // Since Linux 6.10 cgroup v1 counts block I/O bytes only on devices some cgroup throttles, so the
    // writer gets a (generous) throttle on the disk under Docker's data root.
    let throttle = format!("{}:1gb", data_root_device());
    let disk = cs.run(
        "disk",
        &["--device-write-bps", &throttle, "--device-read-bps", &throttle],
        &["sh", "-c", "dd if=/dev/zero of=/f bs=1M count=8 oflag=direct; dd if=/f of=/dev/null bs=1M iflag=direct; sleep 100000"],
    );
    let hostnet = cs.run("hostnet", &["--network", "host"], &["sleep", "100000"]);
    let all = [
        ("idle", idle),
        ("burner", burner),
        ("memory", memory),
        ("disk", disk),
        ("hostnet", hostnet),
    ];
    watchdog(Duration::from_secs(90), move || {
        // Let the writers finish and the burner reach its quota.
        std::thread::sleep(Duration::from_secs(3));
        let c = client();
        let s = source();
        let mut samples = Vec::new();
        for (name, id) in &all {
            let pid = pid_of(id);
            let (before, ours, after) = bracket(&c, &s, id, pid);
            assert_agrees(name, &before, &ours, &after);
            samples.push((*name, ours, before));
        }
        let get = |n: &str| samples.iter().find(|(name, ..)| *name == n).unwrap();
        assert_eq!(get("idle").1.memory_limit, 64 << 20);
        assert!(
            get("memory").1.memory_usage >= 32 << 20,
            "the 32 MiB in /dev/shm stay in the working set"
        );
        let d = get("disk").1;
        assert!(
            d.disk_read >= 8 << 20 && d.disk_write >= 8 << 20,
            "disk writer: read {} write {}",
            d.disk_read,
            d.disk_write
        );
        let h = get("hostnet");
        assert_eq!((h.1.network_rx, h.1.network_tx), (0, 0));
        assert_eq!((h.2.network_rx, h.2.network_tx), (0, 0));
        assert!(
            get("idle").1.network_rx > 0,
            "eth0 saw the network's first packets"
        );
    });
}

#[test]
fn cgroup_cpu_percent_of_a_burner_agrees_with_docker() {
    require_engine();
    let mut cs = Containers::new("cgroup-cpu");
    let burner = cs.run(
        "burner",
        &["--cpus", "0.5"],
        &["sh", "-c", "while :; do :; done"],
    );
    watchdog(Duration::from_secs(60), move || {
        std::thread::sleep(Duration::from_secs(2));
        let c = client();
        let s = source();
        let pid = pid_of(&burner);
        let mut buf = Vec::new();
        let mut worst: f64 = 0.0;
        for round in 0..3 {
            let d1 = docker_stats(&c, &burner);
            let g1 = s.sample(&burner, pid, &mut buf).unwrap();
            std::thread::sleep(Duration::from_secs(1));
            let g2 = s.sample(&burner, pid, &mut buf).unwrap();
            let d2 = docker_stats(&c, &burner);
            assert!(d1.cpu_total_ns <= g1.cpu_total_ns && g2.cpu_total_ns <= d2.cpu_total_ns);
            assert!(d1.system_cpu_ns <= g1.system_cpu_ns && g2.system_cpu_ns <= d2.system_cpu_ns);
            let ours = stats::compute(Some(&g1), &g2).cpu_percent;
            let theirs = stats::compute(Some(&d1), &d2).cpu_percent;
            eprintln!("burner round {round}: cgroup {ours}% docker {theirs}%");
            assert!(
                (ours - theirs).abs() <= 5.0,
                "cpu %: cgroup {ours} vs docker {theirs}"
            );
            // Capped at half a core; less when the 2-core machine is busy with other tests.
            assert!((5.0..=60.0).contains(&ours), "a --cpus 0.5 burner: {ours}%");
            worst = worst.max((ours - theirs).abs());
        }
        eprintln!("burner: largest cpu % difference {worst:.1} points");
    });
}

#[test]
fn sampling_allocates_nothing_once_warm() {
    require_engine();
    let mut cs = Containers::new("cgroup-alloc");
    let idle = cs.run("idle", &[], &["sleep", "100000"]);
    watchdog(Duration::from_secs(30), move || {
        let s = source();
        let pid = pid_of(&idle);
        let mut buf = Vec::new();
        for _ in 0..3 {
            s.sample(&idle, pid, &mut buf).unwrap();
        }
        let start = allocations();
        for _ in 0..100 {
            s.sample(&idle, pid, &mut buf).unwrap();
        }
        let n = allocations() - start;
        assert_eq!(n, 0, "100 warm samples allocated {n} times");
        eprintln!(
            "100 warm samples: 0 allocations, buffer {} bytes",
            buf.capacity()
        );
    });
}

#[test]
fn a_stopped_container_has_no_cgroup() {
    require_engine();
    let mut cs = Containers::new("cgroup-stop");
    let id = cs.run("victim", &[], &["sleep", "100000"]);
    let name = cs.name("victim");
    watchdog(Duration::from_secs(30), move || {
        let s = source();
        let pid = pid_of(&id);
        let mut buf = Vec::new();
        s.sample(&id, pid, &mut buf).unwrap();
        docker(&["kill", &name]);
        docker(&["wait", &name]);
        let e = s.sample(&id, pid, &mut buf).unwrap_err();
        assert!(matches!(e, Error::NoCgroup { .. }), "{e}");
        assert_eq!(pid_of(&id), 0);
        assert!(matches!(s.sample(&id, 0, &mut buf), Err(Error::NotRunning)));
    });
}

/// Issue #4: the cgroup source finds a container's init PID in the container's own cgroup
/// (`cgroup.procs`, then `NSpid`), without asking Docker, and it is the PID `docker inspect` reports:
/// for a single process, for an init with children listed beside it, and after a restart.
#[test]
fn issue_4_pid_from_the_cgroup_is_inspects_pid() {
    require_engine();
    let mut cs = Containers::new("cgroup-pid");
    let single = cs.run("single", &[], &["sleep", "100000"]);
    let family = cs.run(
        "family",
        &[],
        &["sh", "-c", "sleep 100000 & sleep 100000 & wait"],
    );
    let restarted = cs.run("restarted", &[], &["sleep", "100000"]);
    let restarted_name = cs.name("restarted");
    watchdog(Duration::from_secs(60), move || {
        let s = source();
        let mut buf = Vec::new();
        // Let the shell start its children.
        std::thread::sleep(Duration::from_millis(500));
        for id in [&single, &family, &restarted] {
            assert_eq!(s.pid(id, &mut buf).unwrap(), pid_of(id), "{id}");
        }
        let procs = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                    .is_ok_and(|c| c.contains(family.as_str()))
            })
            .count();
        assert!(
            procs >= 3,
            "the family container runs its children: {procs}"
        );
        let before = pid_of(&restarted);
        docker(&["restart", "-t", "0", &restarted_name]);
        let after = pid_of(&restarted);
        assert_ne!(before, after);
        assert_eq!(s.pid(&restarted, &mut buf).unwrap(), after);
        // And the sample follows that PID.
        s.sample(&restarted, after, &mut buf).unwrap();
    });
}
