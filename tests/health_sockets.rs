//! Issue 11 D4: the health socket is one per agent, not one per network namespace. Two agents on one
//! host (one network and mount namespace, as two `--network host` containers share the network one)
//! both bind their socket and both report healthy through `dockmon-agent health`.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
mod support;

use dockmon_server::{DockmonServer, Options};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-health";

/// An agent against its own server, killed when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
    data: PathBuf,
}

impl Agent {
    fn start(server: &DockmonServer, tag: &str) -> Agent {
        let data = tempdir(tag);
        let log = data.with_extension("log");
        let child = Command::new(agent_bin())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DOCKMON_URL", server.url())
            .env("REGISTRATION_TOKEN", TOKEN)
            .env("DATA_PATH", &data)
            .env("LOG_JSON", "false")
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn the agent");
        Agent { child, log, data }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `dockmon-agent health` with `DATA_PATH=data`: (exit code, stdout).
fn health(data: &Path) -> (Option<i32>, String) {
    let (out, _) = run_agent(
        &["health"],
        &[("DATA_PATH", data.to_str().unwrap())],
        Duration::from_secs(10),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn issue11_d4_two_agents_on_one_host_both_report_healthy() {
    require_engine();
    let s1 = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let s2 = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let a1 = Agent::start(&s1, "tidy-health-1");
    let a2 = Agent::start(&s2, "tidy-health-2");
    s1.wait_for_agent(Duration::from_secs(15));
    s2.wait_for_agent(Duration::from_secs(15));

    // Connected is set right after auth_success; give both a moment to get there.
    let end = Instant::now() + Duration::from_secs(10);
    let (mut h1, mut h2) = (health(&a1.data), health(&a2.data));
    while (h1.0 != Some(0) || h2.0 != Some(0)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        (h1, h2) = (health(&a1.data), health(&a2.data));
    }
    assert_eq!(h1, (Some(0), "connected".to_string()), "{}", a1.log());
    assert_eq!(h2, (Some(0), "connected".to_string()), "{}", a2.log());
    for a in [&a1, &a2] {
        assert!(
            !a.log().contains("will report unhealthy"),
            "a health socket warning:\n{}",
            a.log()
        );
    }

    // The first one gone: its health says so, the second one's is untouched.
    drop(a1);
    assert_eq!(health(&a2.data), (Some(0), "connected".to_string()));
}
