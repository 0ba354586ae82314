//! Regression tests for issue 11 (numbered #8 in the issue texts) D1, D2 and D3, against the
//! protocol test server and the real engine:
//! - D1: a server that closes right after `auth_success`, and two agents sharing one identity, see at
//!   most 10 connections a minute (the log says why in the second case);
//! - D2: 1,000 `list_containers` in a burst, 100 containers, the agent in a 4 MiB memory cgroup: all
//!   answered, no OOM kill, peak RSS printed;
//! - D3: a frozen dockerd (answers `/_ping` and `/version`, never `/info`) or an unreachable one: no
//!   registration attempt, and the log says why.
//!
//! Figures are printed with `--nocapture`. `DMT_FLOOD_COUNT` lowers the burst for a quick run.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
mod support;

use dockmon_server::{DockmonServer, Options};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-defects";

/// The agent binary against a server, its stderr in a file, killed when dropped. Default
/// RECONNECT_INITIAL/RECONNECT_MAX (1 s, 60 s), as installed.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(server_url: &str, data: &Path, env: &[(&str, &str)], cgroup: Option<&Path>) -> Agent {
        require_engine();
        let log = data.with_extension(format!("{}.log", std::process::id()));
        let mut cmd = match cgroup {
            // Enter the cgroup before exec, so the agent's first page is charged there.
            Some(cg) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(r#"echo $$ > "$1/cgroup.procs" && exec "$2""#)
                    .arg("sh")
                    .arg(cg)
                    .arg(agent_bin());
                c
            }
            None => Command::new(agent_bin()),
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DOCKMON_URL", server_url)
            .env("REGISTRATION_TOKEN", TOKEN)
            .env("DATA_PATH", data)
            .env("LOG_JSON", "false")
            .env("LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Agent {
            child: cmd.spawn().expect("spawn the agent"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_for_log(&self.log, needle, timeout)
    }

    /// A field of the agent's /proc status in KiB (`VmHWM`, `RssAnon`).
    fn status_kib(&self, field: &str) -> Option<u64> {
        status_kib(self.child.id(), field)
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> DockmonServer {
    DockmonServer::start(Options::default().with_token(TOKEN, None, None))
}

/// Runs `f` in a thread and fails the test if it takes longer than `limit` (the watchdog).
fn watchdog<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => {
            if handle.is_finished() {
                // The test panicked: re-raise its panic.
                match handle.join() {
                    Err(p) => std::panic::resume_unwind(p),
                    Ok(()) => unreachable!("sent nothing, ended normally"),
                }
            }
            panic!("watchdog: the test took longer than {limit:?}")
        }
    }
}

#[test]
fn issue_11_d1_a_server_that_closes_after_auth_sees_at_most_10_connections_a_minute() {
    watchdog(Duration::from_secs(150), || {
        let server = server();
        let data = tempdir("session-d1-close");
        let agent = Agent::start(&server.url(), &data, &[], None);
        server.wait_for_agent(Duration::from_secs(15));
        let started = Instant::now();
        // Close every registered connection as soon as it is registered.
        let mut closed = 0;
        while started.elapsed() < Duration::from_secs(60) {
            if server.connections() > 0 && !server.registrations().is_empty() {
                server.close_all(1000, "bye");
                closed += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let connections = server.handshakes().len();
        let per_minute = connections as f64 * 60.0 / started.elapsed().as_secs_f64();
        println!(
            "D1 server closing after auth: {connections} connections ({closed} closed) in {:.0} s = {per_minute:.1}/min",
            started.elapsed().as_secs_f64()
        );
        assert!(
            connections <= 10,
            "{connections} connections in 60 s\n{}",
            agent.log()
        );
        assert!(
            connections >= 3,
            "the agent kept reconnecting: {connections}\n{}",
            agent.log()
        );
    });
}

#[test]
fn issue_11_d1_two_agents_with_one_identity_see_at_most_10_connections_a_minute_and_say_why() {
    watchdog(Duration::from_secs(150), || {
        let server = server();
        let data_a = tempdir("session-d1-clone-a");
        let a = Agent::start(&server.url(), &data_a, &[], None);
        server.wait_for_agent(Duration::from_secs(15));
        let token_file = data_a.join("permanent_token");
        assert!(server.wait_until(Duration::from_secs(5), |_| token_file.exists()));
        // A cloned data directory: the same permanent token.
        let data_b = tempdir("session-d1-clone-b");
        std::fs::copy(&token_file, data_b.join("permanent_token")).unwrap();
        let before = server.handshakes().len();
        let started = Instant::now();
        let b = Agent::start(&server.url(), &data_b, &[("REGISTRATION_TOKEN", "")], None);
        std::thread::sleep(Duration::from_secs(60));
        let connections = server.handshakes().len() - before;
        let per_minute = connections as f64 * 60.0 / started.elapsed().as_secs_f64();
        let logs = format!("--- a\n{}\n--- b\n{}", a.log(), b.log());
        println!(
            "D1 two agents, one identity: {connections} connections in {:.0} s = {per_minute:.1}/min",
            started.elapsed().as_secs_f64()
        );
        assert!(
            connections <= 10,
            "{connections} connections in 60 s\n{logs}"
        );
        let said = logs
            .matches("another agent is using this agent's identity")
            .count();
        assert!(said >= 1, "no log line says why\n{logs}");
        assert!(said <= 2, "said once per agent, not per reconnect\n{logs}");
    });
}

/// A memory cgroup (v1 `memory.limit_in_bytes` or v2 `memory.max`) removed when dropped.
struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    fn new(tag: &str, limit_bytes: u64) -> MemoryCgroup {
        let name = format!("dmt-session-{tag}-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (dir, v2) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(name), false)
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            (Path::new("/sys/fs/cgroup").join(name), true)
        } else {
            panic!("no memory cgroup (v1 /sys/fs/cgroup/memory or v2 /sys/fs/cgroup): run as root on Linux with cgroups mounted");
        };
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("mkdir {}: {e} (run as root)", dir.display()));
        let limit = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        std::fs::write(dir.join(limit), limit_bytes.to_string()).unwrap();
        if !v2 {
            // No swap either, where the kernel accounts it.
            let _ = std::fs::write(
                dir.join("memory.memsw.limit_in_bytes"),
                limit_bytes.to_string(),
            );
        }
        MemoryCgroup { dir, v2 }
    }

    fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    fn peak_bytes(&self) -> u64 {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Empty once the agent is gone; retried briefly while the kernel lets go.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Containers created (not started: no network needed) with a `dmt-session-` prefix, removed when
/// dropped.
struct Created {
    names: Vec<String>,
}

impl Created {
    fn new(tag: &str, count: usize) -> Created {
        ensure_image();
        let mut c = Created { names: Vec::new() };
        for i in 0..count {
            let name = format!("dmt-session-{tag}-{}-{i}", std::process::id());
            docker(&["create", "--name", &name, "dmtest/busybox:local", "true"]);
            c.names.push(name);
        }
        c
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        for chunk in self.names.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            let _ = Command::new("docker").args(&args).output();
        }
    }
}

#[test]
fn issue_11_d2_a_burst_of_list_containers_in_a_4_mib_cgroup_is_all_answered() {
    let count: usize = std::env::var("DMT_FLOOD_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    watchdog(Duration::from_secs(900), move || {
        let _containers = Created::new("flood", 100);
        // The server's command timeouts scaled up: 1,000 lists of 100 containers take dockerd
        // minutes (each is 102 engine calls); the test is about memory, not speed.
        let server = DockmonServer::start(
            Options::default()
                .with_token(TOKEN, None, None)
                .with_timeout_scale(40.0),
        );
        let cgroup = MemoryCgroup::new("flood", 4 * 1024 * 1024);
        let data = tempdir("session-d2-flood");
        let mut agent = Agent::start(&server.url(), &data, &[], Some(&cgroup.dir));
        server.wait_for_agent(Duration::from_secs(20));
        // Let the first poll of the test server settle.
        std::thread::sleep(Duration::from_secs(2));
        // The peak of the agent's own (anonymous) memory, sampled every 20 ms: VmHWM also counts
        // the binary's pages, which the page cache holds for every process.
        let pid = agent.child.id();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(status_kib(pid, "RssAnon").unwrap_or(0));
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak
            })
        };
        let idle_anon = agent.status_kib("RssAnon");
        let started = Instant::now();
        let ids: Vec<String> = (0..count)
            .map(|_| server.send_command("list_containers", Value::Null))
            .collect();
        let mut answered = 0;
        let mut errors = Vec::new();
        for id in &ids {
            let reply = server.wait_reply(id, Duration::from_secs(800));
            match reply.get("payload").and_then(Value::as_array) {
                Some(list) if list.len() >= 100 => answered += 1,
                _ => errors.push(reply.to_string().chars().take(300).collect::<String>()),
            }
        }
        let took = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let anon_peak = sampler.join().unwrap_or(0);
        let rss = agent.status_kib("VmHWM");
        let alive = agent.alive();
        println!(
            "D2 flood: {answered}/{count} list_containers answered in {:.1} s; RssAnon {} KiB before, peak {anon_peak} KiB; peak RSS (VmHWM, with the binary's pages) {} KiB; cgroup peak {} KiB; OOM kills {}",
            took.as_secs_f64(),
            idle_anon.map_or("?".into(), |r| r.to_string()),
            rss.map_or("?".into(), |r| r.to_string()),
            cgroup.peak_bytes() / 1024,
            cgroup.oom_kills()
        );
        assert!(alive, "the agent died\n{}", agent.log());
        assert_eq!(cgroup.oom_kills(), 0, "OOM kill\n{}", agent.log());
        assert!(
            errors.is_empty(),
            "{} error replies, first: {:?}",
            errors.len(),
            errors.first()
        );
        assert_eq!(answered, count);
        drop(agent);
    });
}

/// A fake dockerd on a unix socket that answers `/_ping` and `/version` and never `/info` (frozen
/// after the handshake); other calls hang as well.
fn frozen_docker(path: &Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut have = Vec::new();
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    have.extend_from_slice(&buf[..n]);
                    while let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&have[..end]).to_string();
                        have.drain(..end + 4);
                        let target = head.split(' ').nth(1).unwrap_or("").to_string();
                        let body = if target.ends_with("/_ping") {
                            "OK".to_string()
                        } else if target.ends_with("/version") {
                            r#"{"Version":"24.0.7","ApiVersion":"1.43","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}"#.to_string()
                        } else {
                            // Frozen: hold the connection, answer nothing.
                            std::thread::sleep(Duration::from_secs(3600));
                            return;
                        };
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn issue_11_d3_a_frozen_or_unreachable_dockerd_means_no_registration_attempt() {
    watchdog(Duration::from_secs(90), || {
        let server = server();
        // Frozen: /info never answers (CALL_TIMEOUT_MS 10 s each).
        let dir = tempdir("session-d3");
        let sock = dir.join("docker.sock");
        frozen_docker(&sock);
        let host = format!("unix://{}", sock.display());
        let frozen = Agent::start(&server.url(), &dir, &[("DOCKER_HOST", &host)], None);
        assert!(
            frozen.wait_log("cannot read the engine facts", Duration::from_secs(40)),
            "{}",
            frozen.log()
        );
        // Unreachable: no socket at all.
        let dir2 = tempdir("session-d3-gone");
        let gone = format!("unix://{}", dir2.join("nothing.sock").display());
        let unreachable = Agent::start(&server.url(), &dir2, &[("DOCKER_HOST", &gone)], None);
        std::thread::sleep(Duration::from_secs(15));
        let empty_ids: Vec<_> = server
            .registrations()
            .into_iter()
            .filter(|r| r.register["engine_id"].as_str().unwrap_or("").is_empty())
            .collect();
        assert!(empty_ids.is_empty(), "registered with an empty engine ID");
        assert_eq!(
            server.handshakes().len(),
            0,
            "DockMon was dialled without the engine facts\n{}\n{}",
            frozen.log(),
            unreachable.log()
        );
        assert!(
            frozen.log().matches("cannot read the engine facts").count() == 1,
            "said once\n{}",
            frozen.log()
        );
    });
}
