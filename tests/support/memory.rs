//! What the memory tests share: the count-alloc release build, the agent process they measure, its
//! RSS figures from `/proc/<pid>/status` and its heap from the line it logs on SIGUSR1.
//!
//! The build is the static musl release agent with the counting allocator (`--features count-alloc`,
//! which only adds two atomic counters to each allocation), in `target/count-alloc` (the folder
//! `bench/heap` uses): `CARGO_BIN_EXE_dockmon-agent` is a debug build without the counter.
//!
//! Include it with `#[path = "support/memory.rs"] mod memory;`; it needs nothing else from support.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release target the memory figures are for.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// `cargo build --release --features count-alloc --target x86_64-unknown-linux-musl` into
/// `target/count-alloc`; returns the binary.
pub fn count_alloc_build() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target/count-alloc");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--release",
            "--quiet",
            "--features",
            "count-alloc",
            "--target",
            TARGET,
        ])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the count-alloc release agent failed (needs `rustup target add {TARGET}`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(TARGET).join("release/dockmon-agent")
}

/// One `key` of `/proc/<pid>/status` (`VmRSS:`, `RssAnon:`, `RssFile:`: kB; `Threads:`: a count).
/// Panics when the process is gone or the key is missing.
pub fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e} (is the agent running?)"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

/// An agent-mode process of a count-alloc build, its stderr in a log file; stopped when dropped
/// (SIGTERM, SIGKILL after 10 s).
pub struct Agent {
    /// The process.
    pub child: Child,
    /// Its stderr.
    pub log: PathBuf,
}

impl Agent {
    /// Starts `bin` in agent mode against the DockMon URL `url` with registration `token`, `data` as
    /// `DATA_PATH` and its log in `data` with the extension `.log`: an empty environment but `PATH`,
    /// text log at info level (the heap line is an info line), then `env` (`DOCKMON_BOARD`,
    /// `STATS_INTERVAL`, `DOCKER_HOST`, …).
    pub fn start(bin: &Path, url: &str, token: &str, data: &Path, env: &[(&str, &str)]) -> Agent {
        let log = data.with_extension("log");
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DOCKMON_URL", url)
            .env("REGISTRATION_TOKEN", token)
            .env("DATA_PATH", data)
            .env("LOG_JSON", "false")
            .env("LOG_LEVEL", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn the agent");
        Agent { child, log }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One `key` of its `/proc/<pid>/status` ([`status_kib`]).
    pub fn status_kib(&self, key: &str) -> u64 {
        status_kib(self.child.id(), key)
    }

    /// Heap in use and high-water in bytes, from the line the agent logs on SIGUSR1.
    pub fn heap(&self) -> (u64, u64) {
        let before = self.log().matches("heap in use ").count();
        let _ = Command::new("kill")
            .args(["-USR1", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let log = self.log();
            if log.matches("heap in use ").count() > before {
                let line = log
                    .lines()
                    .rev()
                    .find(|l| l.contains("heap in use "))
                    .unwrap();
                let nums: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                assert_eq!(nums.len(), 2, "heap line: {line}");
                return (nums[0], nums[1]);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no heap line after SIGUSR1; log:\n{}", self.log());
    }
}

impl Drop for Agent {
    /// SIGTERM (so a wrapper such as massif writes its output), SIGKILL after 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
