//! Memory of the agent as users run it (issue #4 acceptance), on the real engine: the static musl
//! release build with the counting allocator (`--features count-alloc`, which only adds two atomic
//! counters to each allocation), in agent mode against the protocol test server, stats every 5 s
//! from the Docker source.
//!
//! One test, in phases, with one agent process, so each figure is the same process's history:
//! 1. idle (no containers of ours): RSS(0);
//! 2. 100 running containers, each sampled at least twice: RSS <= 2 MiB, heap high-water
//!    <= 512 KiB, at most 2 threads, RSS(100) - RSS(0) <= 256 KiB;
//! 3. the soak: 50 containers created, sampled and removed, in a loop (3 minutes here,
//!    `DOCKMON_SOAK_SECS` to change it); heap in use and RSS at the end within a small margin of
//!    where they were after the first round.
//!
//! Builds its own binary (cargo, `target/count-alloc`, the folder `bench/heap` uses) because
//! `CARGO_BIN_EXE_dockmon-agent` is a debug build without the counting allocator.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/memory.rs"]
mod memory;
mod support;

use dockmon_server::{DockmonServer, EventKind, Options};
use memory::{count_alloc_build, Agent};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-memory";
const KIB: u64 = 1024;

/// The ceilings for 100 containers at a 5 s interval, issue #4's. With every feature of issues 11-16
/// compiled in they held again once issue 18 laid the text out hot and cold and the agent began giving
/// unused text pages back (`textmem`): RSS 1,472 KiB (anon 472 KiB), heap high-water 486,358 B in a run
/// with only this test's containers on the engine. The list reply grows with every container on the
/// engine, not only this test's, so other containers raise the heap high-water.
const RSS_MAX_KIB: u64 = 2048;
const HEAP_HIGH_WATER_MAX_BYTES: u64 = 512 * KIB;
const THREADS_MAX: u64 = 2;
const RSS_GROWTH_MAX_KIB: u64 = 256;

/// The soak's margins: what may remain after minutes of churn, compared with the first round.
/// Heap: a few container-sized entries' worth; anonymous RSS: a few pages of allocator
/// fragmentation. The soak compares anonymous RSS, where a leak shows: the file-backed part is the
/// binary's own pages, bounded by its size, and swings by a few hundred KiB with the phase of the
/// agent's periodic release of unused text (`textmem`), so total RSS at two instants measures that
/// phase rather than a leak (1,240 -> 1,620 KiB in one CI run, anonymous part unchanged).
const SOAK_HEAP_MARGIN_BYTES: u64 = 16 * KIB;
const SOAK_ANON_MARGIN_KIB: u64 = 64;
const SOAK_DEFAULT_SECS: u64 = 180;
const SOAK_BATCH: usize = 50;

/// A board profile's name and ceilings (boards/*.json).
#[derive(serde::Deserialize)]
struct Profile {
    name: String,
    rss_ceiling_kib: u64,
    heap_ceiling_kib: u64,
}

fn board_profiles() -> Vec<Profile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
    let mut profiles: Vec<Profile> = std::fs::read_dir(&dir)
        .expect("boards/")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "json").then(|| {
                serde_json::from_slice(&std::fs::read(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            })
        })
        .collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(profiles.len(), 7, "seven board profiles");
    profiles
}

/// The agent in agent mode against `server` with `board`'s profile and `source`'s stats
/// ([`memory::Agent`]).
fn start_agent(bin: &Path, server: &DockmonServer, board: &str, source: &str) -> Agent {
    let mut env = vec![("DOCKMON_BOARD", board), ("STATS_SOURCE", source)];
    if board == "amd64" {
        // The figure is for a 5 s interval (amd64's own); other boards keep theirs.
        env.push(("STATS_INTERVAL", "5s"));
    }
    Agent::start(bin, &server.url(), TOKEN, &tempdir("memory-agent"), &env)
}

/// The figures this test reads from `/proc/<pid>/status`.
trait Figures {
    fn rss_kib(&self) -> u64;
    /// RSS split into anonymous (heap, stacks) and file-backed (the binary's pages), for messages.
    fn rss_split(&self) -> String;
    /// Anonymous RSS (heap, stacks): where a leak would show.
    fn anon_kib(&self) -> u64;
    fn threads(&self) -> u64;
}

impl Figures for Agent {
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn rss_split(&self) -> String {
        format!(
            "anon {} KiB, file {} KiB",
            self.status_kib("RssAnon:"),
            self.status_kib("RssFile:")
        )
    }

    fn anon_kib(&self) -> u64 {
        self.status_kib("RssAnon:")
    }

    fn threads(&self) -> u64 {
        self.status_kib("Threads:")
    }
}

/// `docker run -d` of `names`, 6 at a time; returns the full IDs.
fn run_many(names: &[String]) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names.to_vec());
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (next, names) = (next.clone(), names.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let id = docker(&["run", "-d", "--name", name, IMAGE, "sleep", "100000"]);
                    ids.push(id.trim().to_string());
                }
                ids
            })
        })
        .collect();
    workers
        .into_iter()
        .flat_map(|w| w.join().expect("docker run worker"))
        .collect()
}

/// `docker rm -f` of `names`, one at a time (`support::remove_containers` says why).
fn remove_many(names: &[String]) {
    if let Err(e) = remove_containers(None, names) {
        panic!("{e}");
    }
}

/// Removes the containers named with `prefix` however the test ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = docker(&["ps", "-aq", "--filter", &format!("name={}", self.0)]);
        let names: Vec<String> = names.lines().map(str::to_string).collect();
        if !names.is_empty() {
            remove_many(&names);
        }
    }
}

/// Waits until the server has received `count` container_stats frames since `from` for each of
/// `ids` (full IDs; the agent sends the 12-character short ID).
fn wait_for_stats(
    server: &DockmonServer,
    ids: &[String],
    from: usize,
    count: usize,
    limit: Duration,
) {
    let wanted: HashSet<&str> = ids.iter().map(|id| &id[..12]).collect();
    let ok = server.wait_until(limit, |s| {
        let stats = s.events(EventKind::ContainerStats);
        let mut seen = std::collections::HashMap::<&str, usize>::new();
        for st in stats.iter().skip(from) {
            if let Some(id) = st["container_id"].as_str() {
                let short = &id[..id.len().min(12)];
                if let Some(w) = wanted.get(short) {
                    *seen.entry(w).or_default() += 1;
                }
            }
        }
        wanted
            .iter()
            .all(|w| seen.get(w).copied().unwrap_or(0) >= count)
    });
    assert!(
        ok,
        "not every container got {count} container_stats within {limit:?}"
    );
}

#[test]
fn memory_is_flat_at_100_containers_and_through_a_create_remove_soak() {
    require_engine();
    ensure_image();
    // DOCKMON_MEMORY_AGENT runs another build (or a wrapper such as valgrind's massif) instead.
    let bin = std::env::var_os("DOCKMON_MEMORY_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(count_alloc_build);
    let prefix = format!("dmtest-memory-{}-", std::process::id());
    let _cleanup = Cleanup(prefix.clone());
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let agent = start_agent(&bin, &server, "amd64", "docker");
    server.wait_for_agent(Duration::from_secs(15));

    // 1. Idle: what the agent costs before any container of ours exists.
    std::thread::sleep(Duration::from_secs(12));
    let rss_0 = agent.rss_kib();

    // 2. 100 running containers, each sampled twice (CPU % needs two readings).
    let names: Vec<String> = (0..100).map(|i| format!("{prefix}run-{i}")).collect();
    let from = server.events(EventKind::ContainerStats).len();
    let ids = run_many(&names);
    wait_for_stats(&server, &ids, from, 2, Duration::from_secs(120));
    // One more interval, so buffers sized by a full round are all in use; and past the agent's next
    // release of its unused text pages (`textmem`), so the code the burst of 100 starts ran is given
    // back and what is measured is the steady agent at 100 containers.
    std::thread::sleep(Duration::from_secs(
        6 + dockmon_agent::limits::TEXT_RELEASE_EVERY_S + 2,
    ));
    let rss_100 = agent.rss_kib();
    let threads = agent.threads();
    let (heap_100, high_water_100) = agent.heap();
    eprintln!(
        "100 containers: RSS {rss_100} KiB ({}; idle {rss_0} KiB, growth {} KiB), {threads} \
         threads, heap in use {heap_100} B, high-water {high_water_100} B",
        agent.rss_split(),
        rss_100 as i64 - rss_0 as i64
    );
    assert!(threads <= THREADS_MAX, "{threads} threads");
    assert!(
        rss_100 <= RSS_MAX_KIB,
        "RSS at 100 containers {rss_100} KiB > {RSS_MAX_KIB} KiB"
    );
    assert!(
        high_water_100 <= HEAP_HIGH_WATER_MAX_BYTES,
        "heap high-water {high_water_100} B > {HEAP_HIGH_WATER_MAX_BYTES} B"
    );
    assert!(
        rss_100.saturating_sub(rss_0) <= RSS_GROWTH_MAX_KIB,
        "RSS(100) - RSS(0) = {} KiB > {RSS_GROWTH_MAX_KIB} KiB",
        rss_100 - rss_0
    );

    // Each board profile's own ceilings, with the same 100 containers (cgroup source, so seven
    // agents at once do not load dockerd; the profiles' budgets are exercised by engine_boards).
    // DockMon refuses a second agent of the same engine, so each gets a server of its own.
    let agents: Vec<(Profile, DockmonServer, Agent)> = board_profiles()
        .into_iter()
        .map(|p| {
            let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
            let a = start_agent(&bin, &server, &p.name, "cgroup");
            (p, server, a)
        })
        .collect();
    for (p, server, _) in &agents {
        assert!(
            server.try_wait_for_agent(Duration::from_secs(20)).is_some(),
            "the {} agent registers",
            p.name
        );
    }
    std::thread::sleep(Duration::from_secs(25));
    for (p, _, a) in &agents {
        let rss = a.rss_kib();
        let (_, high_water) = a.heap();
        eprintln!(
            "board {}: RSS {rss} KiB (ceiling {}), heap high-water {high_water} B (ceiling {} KiB)",
            p.name, p.rss_ceiling_kib, p.heap_ceiling_kib
        );
        assert!(rss <= p.rss_ceiling_kib, "{}: RSS {rss} KiB", p.name);
        assert!(
            high_water <= p.heap_ceiling_kib * KIB,
            "{}: heap high-water {high_water} B",
            p.name
        );
    }
    drop(agents);
    remove_many(&names);

    // 3. Soak: batches of 50 created, sampled once, removed. The first round is the reference.
    let soak = Duration::from_secs(
        std::env::var("DOCKMON_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(SOAK_DEFAULT_SECS),
    );
    let round = |n: usize| {
        let names: Vec<String> = (0..SOAK_BATCH)
            .map(|i| format!("{prefix}soak-{n}-{i}"))
            .collect();
        let from = server.events(EventKind::ContainerStats).len();
        let ids = run_many(&names);
        wait_for_stats(&server, &ids, from, 1, Duration::from_secs(60));
        remove_many(&names);
        // Die and destroy events reach the agent and empty its table.
        std::thread::sleep(Duration::from_secs(3));
    };
    round(0);
    let rss_start = agent.rss_kib();
    let anon_start = agent.anon_kib();
    let (heap_start, _) = agent.heap();
    let started = Instant::now();
    let mut rounds = 1;
    while started.elapsed() < soak {
        round(rounds);
        rounds += 1;
    }
    let rss_end = agent.rss_kib();
    let anon_end = agent.anon_kib();
    let (heap_end, high_water_end) = agent.heap();
    eprintln!(
        "soak: {rounds} rounds of {SOAK_BATCH} in {:?}: heap in use {heap_start} -> {heap_end} B, \
         RSS {rss_start} -> {rss_end} KiB (anonymous {anon_start} -> {anon_end} KiB), high-water \
         {high_water_end} B",
        started.elapsed()
    );
    assert!(
        heap_end <= heap_start + SOAK_HEAP_MARGIN_BYTES,
        "heap in use grew from {heap_start} to {heap_end} B over {rounds} rounds"
    );
    assert!(
        anon_end <= anon_start + SOAK_ANON_MARGIN_KIB,
        "anonymous RSS grew from {anon_start} to {anon_end} KiB over {rounds} rounds"
    );
    assert!(
        rss_end <= RSS_MAX_KIB,
        "RSS after the soak {rss_end} KiB > {RSS_MAX_KIB} KiB"
    );
    assert!(
        !agent.log().contains("panicked"),
        "agent log:\n{}",
        agent.log()
    );
}
