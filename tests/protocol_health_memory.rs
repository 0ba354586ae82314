//! Memory with 20 health checks configured (issue #11 budget: the issue #4 limits of
//! tests/engine_memory.rs hold). The static musl release build with the counting allocator, as
//! engine_memory.rs builds it, in agent mode against the protocol test server, no containers of
//! ours: RSS, threads, heap in use and the heap high-water mark before any check, then after 20
//! checks (10 plain HTTP, 10 HTTPS with the handshake) ran every second for 20 s and past the agent's
//! next text release (so the one-off code of the sync itself is given back), so every check ran
//! many times and, right after the sync, all 20 were due at once.
//!
//! Asserted: RSS 2,048 KiB and the engine_memory heap ceiling (512 KiB), 2 threads, on this idle
//! host, and what the checks add: heap high-water at most `HIGH_WATER_GROWTH_MAX_BYTES` over the idle
//! level and RSS at most `RSS_GROWTH_MAX_KIB`, so that the 100-container figures of engine_memory.rs
//! plus this growth stay within the same ceilings (heap: engine_memory's high-water before issues
//! 11-16, 444,610 B; RSS: its current 100-container figure, see `RSS_GROWTH_MAX_KIB`).
//!
//! The half-HTTPS case asserts the heap only: a TLS handshake per check runs rustls's handshake code,
//! which link/hot-text.ld leaves out of the steady profile on purpose (packing it with the steady code
//! would make it resident on every host, most of which never run an HTTPS check), so a host that
//! checks HTTPS targets keeps that code resident between text releases (2,312 KiB with 10 HTTPS
//! checks every second, the backend's minimum being 10 s).
//!
//! The third test runs the combination itself: 100 running containers on a bridge network of a
//! private dockerd (so the shared engine's own figures are not disturbed) and 20 checks (14 plain,
//! 4 HTTPS, 2 to a target that never answers), engine_memory's agent (amd64 board, Docker stats
//! source, 5 s), `list_containers` asked twice a second: heap high-water within 512 KiB. Measured
//! (count-alloc build): before issue 14's heap work 475,263 -> 544,256 B (over the ceiling); after
//! it 473,148-475,166 -> 508,919-511,798 B in three runs. What changed: no check starts while a list
//! reply is built or waits in the outbox (`dockmon::health::Quiet`), the reply is sized like the
//! previous one (`LIST_REPLY_GUESS_SLACK_BYTES`), and a check waiting for its answer holds no read
//! buffer (`probe`). What the checks still add (about 26 KB in use) is their steady state: configs,
//! hung runs' sockets and tasks, result frames, the sync frame's read buffer. The rest of the peak
//! is a list reply (about 100 KB) built while a stats round (about 60 KB) runs.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/faults.rs"]
mod faults;
#[path = "support/health.rs"]
mod health;
#[path = "support/memory.rs"]
mod memory;
mod support;

use dockmon_server::{DockmonServer, Options};
use health::*;
use memory::{count_alloc_build, Agent};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{require_engine, tempdir};

const TOKEN: &str = "reg-token-health-memory";
const KIB: u64 = 1024;
/// Issue #4's ceilings. RSS: the checks' code (`probe`, `dockmon::health`) is in link/hot-text.ld's
/// steady profile since scripts/hot-text profiles a host with agent-side checks: 1,516 KiB measured
/// after 20 HTTP checks (2,044 KiB before, when their code was spread over the cold text).
const RSS_MAX_KIB: u64 = 2048;
const HEAP_HIGH_WATER_MAX_BYTES: u64 = 512 * KIB;
const THREADS_MAX: u64 = 2;
/// What 20 checks may add: the room engine_memory's 100-container figures leave. Heap: 512 KiB -
/// 444,610 B (its high-water before issues 11-16) = 79,678 B. RSS: 2,048 KiB - 1,536 KiB (its RSS at
/// 100 containers, 1,472-1,476 KiB measured with every feature in, rounded up) = 512 KiB.
const HIGH_WATER_GROWTH_MAX_BYTES: u64 = 512 * KIB - 444_610;
const RSS_GROWTH_MAX_KIB: u64 = 512;

/// The agent on the amd64 board's profile with a 5 s stats interval.
fn start_agent(bin: &std::path::Path, server: &DockmonServer) -> Agent {
    let data = tempdir("health-memory");
    let env = [("DOCKMON_BOARD", "amd64"), ("STATS_INTERVAL", "5s")];
    Agent::start(bin, &server.url(), TOKEN, &data, &env)
}

/// Figures of one agent with 20 checks, `https` of them to the HTTPS server.
struct Figures {
    rss_0: u64,
    rss_20: u64,
    rss_anon: u64,
    rss_file: u64,
    high_0: u64,
    high_20: u64,
    threads: u64,
}

/// `DOCKMON_MEMORY_AGENT` when set (another build, or a wrapper such as valgrind's massif), else
/// the count-alloc build.
fn agent_build() -> std::path::PathBuf {
    std::env::var_os("DOCKMON_MEMORY_AGENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(count_alloc_build)
}

fn measure(https: usize) -> Figures {
    require_engine();
    let bin = agent_build();
    let dir = tempdir("health-memory-tls");
    let (cert, key) = self_signed(&dir);
    let plain = HttpServer::start();
    let tls = HttpServer::start_tls(&cert, &key);
    let server = DockmonServer::start(
        Options::default()
            .with_token(TOKEN, None, None)
            .with_list_containers(None),
    );
    let agent = start_agent(&bin, &server);
    server.wait_for_agent(Duration::from_secs(15));
    // Let the sampler's first rounds settle, past the agent's first release of unused text pages
    // (`textmem`), so that the idle figure is the steady agent's, not its start-up code's.
    std::thread::sleep(Duration::from_secs(
        dockmon_agent::limits::TEXT_RELEASE_FIRST_S + 3,
    ));
    let rss_0 = agent.status_kib("VmRSS:");
    let (heap_0, high_0) = agent.heap();

    let configs: Vec<_> = (0..20)
        .map(|i| {
            let url = if i < https {
                tls.url("https", "/status")
            } else {
                plain.url("http", "/status")
            };
            with(
                config(&format!("dmt-health-mem-{i:02}"), &url),
                json!({"check_interval_seconds": 1, "verify_ssl": false}),
            )
        })
        .collect();
    let t0 = Instant::now();
    sync(&server, &configs);
    std::thread::sleep(Duration::from_secs(
        20.max(dockmon_agent::limits::TEXT_RELEASE_EVERY_S + 5),
    ));
    let got = results(&server);
    let healthy = got
        .iter()
        .filter(|r| r.payload()["healthy"] == true)
        .count();
    let f = Figures {
        rss_0,
        rss_20: agent.status_kib("VmRSS:"),
        rss_anon: agent.status_kib("RssAnon:"),
        rss_file: agent.status_kib("RssFile:"),
        high_0,
        high_20: 0,
        threads: agent.status_kib("Threads:"),
    };
    let (heap_20, high_20) = agent.heap();
    eprintln!(
        "20 health checks ({} http, {https} https) every 1 s for {:?}: {} results ({healthy} healthy); \
         RSS {} -> {} KiB (anon {} KiB, file {} KiB); heap in use {heap_0} -> {heap_20} B; \
         high-water {high_0} -> {high_20} B; {} threads",
        20 - https,
        t0.elapsed(),
        got.len(),
        f.rss_0,
        f.rss_20,
        f.rss_anon,
        f.rss_file,
        f.threads,
    );
    assert!(got.len() >= 20 * 10, "checks ran: {} results", got.len());
    assert_eq!(healthy, got.len(), "every check healthy");
    Figures { high_20, ..f }
}

#[test]
fn twenty_http_checks_stay_within_the_memory_limits() {
    let f = measure(0);
    assert!(f.rss_20 <= RSS_MAX_KIB, "RSS {} KiB", f.rss_20);
    assert!(
        f.high_20 <= HEAP_HIGH_WATER_MAX_BYTES,
        "high-water {} B",
        f.high_20
    );
    assert!(f.threads <= THREADS_MAX, "{} threads", f.threads);
    assert!(
        f.high_20.saturating_sub(f.high_0) <= HIGH_WATER_GROWTH_MAX_BYTES,
        "heap high-water grew by {} B with 20 checks",
        f.high_20 - f.high_0
    );
    assert!(
        f.rss_20.saturating_sub(f.rss_0) <= RSS_GROWTH_MAX_KIB,
        "RSS grew by {} KiB with 20 checks",
        f.rss_20 - f.rss_0
    );
}

/// Half of them HTTPS. The heap bounds hold as for plain HTTP; RSS is reported, not bounded: the
/// first TLS handshake pages in rustls' and ring's code (file-backed RSS), which an agent whose
/// DockMon URL is `https://` has resident anyway, and the test server here is plain `ws://`.
#[test]
fn twenty_checks_half_https_stay_within_the_heap_limits() {
    let f = measure(10);
    assert!(
        f.high_20 <= HEAP_HIGH_WATER_MAX_BYTES,
        "high-water {} B",
        f.high_20
    );
    assert!(f.threads <= THREADS_MAX, "{} threads", f.threads);
    assert!(
        f.high_20.saturating_sub(f.high_0) <= HIGH_WATER_GROWTH_MAX_BYTES,
        "heap high-water grew by {} B with 20 checks",
        f.high_20 - f.high_0
    );
}

/// The budget as it stands: 100 running containers AND 20 checks, heap high-water within
/// engine_memory's ceiling. The containers run on a private dockerd (tests/support/faults.rs), so
/// the shared engine's own memory figures are not disturbed and no other container on it lengthens
/// the list. 20 checks at a 1 s interval: 14 plain, 4 HTTPS, 2 to a target that never answers
/// (`/slow`, each holding a slot for its 2 s timeout), while the test asks for `list_containers`
/// about twice a second, so list replies of 100 containers are built while checks are in flight.
#[test]
fn a_hundred_containers_and_twenty_checks_stay_within_the_heap_ceiling() {
    require_engine();
    let bin = agent_build();
    let dockerd = faults::PrivateDockerd::start("hc-heap");
    let names: Vec<String> = (0..100)
        .map(|i| format!("dmt-hc-heap-{}-run-{i}", std::process::id()))
        .collect();
    // On a bridge network of the private dockerd, as engine_memory's containers are on the shared
    // one's: their list objects carry addresses and endpoint IDs (about 1 KB each, 200 B more than
    // with `--network none`), so the list reply is as large as there.
    dockerd.docker(&["network", "create", "dmt-hc-heap-net"]);
    run_on_network(&dockerd, &names, "dmt-hc-heap-net");
    let running = dockerd.docker(&["ps", "-q"]).lines().count();
    assert_eq!(running, 100, "running containers on the private dockerd");

    let dir = tempdir("health-heap-tls");
    let (cert, key) = self_signed(&dir);
    let plain = HttpServer::start();
    let tls = HttpServer::start_tls(&cert, &key);
    let server = DockmonServer::start(
        Options::default()
            .with_token(TOKEN, None, None)
            .with_list_containers(None),
    );
    let data = tempdir("health-heap");
    // engine_memory's agent: the amd64 board, the Docker stats source, a 5 s interval.
    let env = [
        ("DOCKMON_BOARD", "amd64"),
        ("STATS_SOURCE", "docker"),
        ("STATS_INTERVAL", "5s"),
        ("DOCKER_HOST", dockerd.host.as_str()),
    ];
    let agent = Agent::start(&bin, &server.url(), TOKEN, &data, &env);
    server.wait_for_agent(Duration::from_secs(15));
    let list = |n: usize| -> usize {
        let id = server.send_command("list_containers", json!(null));
        let reply = server.wait_reply(&id, Duration::from_secs(20));
        let got = reply["payload"].as_array().map_or(0, Vec::len);
        assert!(got >= 100, "list_containers {n}: {got} containers: {reply}");
        reply["payload"].to_string().len()
    };
    // Each container sampled at least twice, a few list replies: the 100-container level.
    std::thread::sleep(Duration::from_secs(12));
    let mut reply_bytes = 0;
    for n in 0..5 {
        reply_bytes = list(n);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (heap_0, high_0) = agent.heap();

    let configs: Vec<_> = (0..20)
        .map(|i| {
            let (url, timeout) = match i {
                0..=13 => (plain.url("http", "/status"), 5),
                14..=17 => (tls.url("https", "/status"), 5),
                _ => (plain.url("http", "/slow"), 2),
            };
            with(
                config(&format!("dmt-hc-heap-check-{i:02}"), &url),
                json!({"check_interval_seconds": 1, "verify_ssl": false, "timeout_seconds": timeout}),
            )
        })
        .collect();
    sync(&server, &configs);
    let t0 = Instant::now();
    let mut replies = 0;
    while t0.elapsed() < Duration::from_secs(30) {
        list(replies);
        replies += 1;
        std::thread::sleep(Duration::from_millis(400));
    }
    let (heap_20, high_20) = agent.heap();
    let got = results(&server);
    let healthy = got
        .iter()
        .filter(|r| r.payload()["healthy"] == true)
        .count();
    eprintln!(
        "100 containers, 20 checks (14 http, 4 https, 2 slow) every 1 s for {:?}: {} results \
         ({healthy} healthy), {replies} list_containers replies; heap in use {heap_0} -> {heap_20} B; \
         high-water {high_0} -> {high_20} B (ceiling {HEAP_HIGH_WATER_MAX_BYTES} B); list reply \
         {reply_bytes} B; RSS {} KiB, {} threads",
        t0.elapsed(),
        got.len(),
        agent.status_kib("VmRSS:"),
        agent.status_kib("Threads:"),
    );
    assert!(got.len() >= 18 * 10, "checks ran: {} results", got.len());
    assert!(
        healthy >= 18 * 10 - 18,
        "{healthy} healthy of {}",
        got.len()
    );
    assert!(
        high_20 <= HEAP_HIGH_WATER_MAX_BYTES,
        "heap high-water {high_20} B > {HEAP_HIGH_WATER_MAX_BYTES} B at 100 containers with 20 checks"
    );
    assert!(
        agent.status_kib("Threads:") <= THREADS_MAX,
        "threads at 100 containers with 20 checks"
    );
    drop(agent);
    dockerd.remove(&names);
}

/// `docker run -d --network <network> --name <name> <image> sleep 100000` for each name, four at a
/// time.
fn run_on_network(dockerd: &faults::PrivateDockerd, names: &[String], network: &str) {
    let chunks: Vec<Vec<String>> = names
        .chunks(names.len().div_ceil(4))
        .map(<[String]>::to_vec)
        .collect();
    std::thread::scope(|scope| {
        for chunk in chunks {
            scope.spawn(move || {
                for name in chunk {
                    dockerd.docker(&[
                        "run",
                        "-d",
                        "--network",
                        network,
                        "--name",
                        &name,
                        support::IMAGE,
                        "sleep",
                        "100000",
                    ]);
                }
            });
        }
    });
}
