//! `self_update` in container mode end to end (issue 15, spec 3.8.3, 1.2 `cleanup.json`): our own image
//! as v1 and v2 (the x86_64 musl release binary built twice with another `VERSION`, packed by
//! scripts/image) in Debian's `docker-registry` on 127.0.0.1, the agent running from v1 in a container
//! with a data volume, against the protocol test server.
//!
//! Needs: a running dockerd, packages docker-registry and apache2-utils, and the x86_64 musl target
//! (scripts/dist's toolchain). The two binaries are built on first use if missing, which is:
//! ```text
//! for v in 1 2; do VERSION=0.0.$v-v$v cargo build --release --locked --target x86_64-unknown-linux-musl --bin dockmon-agent
//!   mkdir -p /tmp/dmt-selfupdate-dist/v$v; cp target/x86_64-unknown-linux-musl/release/dockmon-agent /tmp/dmt-selfupdate-dist/v$v/dockmon-agent-linux-amd64; done
//! ```
//! (`DMT_SELFUPDATE_DIST` overrides /tmp/dmt-selfupdate-dist.)
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/registry.rs"]
mod registry;
mod support;

use dockmon_server::{DockmonServer, Options};
use registry::{ImageSpec, Registry};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-selfupdate";
const REPO: &str = "dmt-selfupdate/agent";

fn dist() -> PathBuf {
    PathBuf::from(
        std::env::var("DMT_SELFUPDATE_DIST").unwrap_or_else(|_| "/tmp/dmt-selfupdate-dist".into()),
    )
}

/// Builds the x86_64 musl release binary as `VERSION=version` into `dist/<version_dir>/` unless it
/// is there already (a minute or two each).
fn ensure_binary(version_dir: &str, version: &str) {
    let dir = dist().join(version_dir);
    let bin = dir.join("dockmon-agent-linux-amd64");
    if bin.exists() {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .args(["--bin", "dockmon-agent"])
        .current_dir(root)
        .env("VERSION", version)
        .env("COMMIT", format!("selfupd-{version_dir}"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build of {version} failed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        format!("{root}/target/x86_64-unknown-linux-musl/release/dockmon-agent"),
        &bin,
    )
    .unwrap();
}

/// Packs `dist/<v>/dockmon-agent-linux-amd64` with scripts/image as `reference` and pushes it.
fn push_agent_image(reg: &mut Registry, version_dir: &str, tag: &str) -> String {
    ensure_binary(
        version_dir,
        if version_dir == "v1" {
            "0.0.1-v1"
        } else {
            "0.0.2-v2"
        },
    );
    let dir = dist().join(version_dir);
    assert!(
        dir.join("dockmon-agent-linux-amd64").exists(),
        "{} is missing: build the binaries as this file's header says",
        dir.display()
    );
    let reference = reg.reference(REPO, tag);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/image");
    let out = Command::new(script)
        .args([
            "--dist",
            dir.to_str().unwrap(),
            "--arch",
            "amd64",
            "--tag",
            &reference,
        ])
        .output()
        .expect("run scripts/image");
    assert!(
        out.status.success(),
        "scripts/image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    reg.forget_on_drop(&reference);
    docker(&["push", "-q", &reference]);
    docker(&["rmi", &reference]);
    reference
}

/// The agent container, its `-update` twin and the data volume, removed on drop.
struct Guard {
    name: String,
    volume: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let update = format!("{}-update", self.name);
        for args in [
            vec!["rm", "-f", self.name.as_str(), update.as_str()],
            vec!["volume", "rm", "-f", self.volume.as_str()],
        ] {
            let _ = Command::new("docker")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn progress(server: &DockmonServer) -> Vec<Value> {
    server.event_payloads("selfupdate_progress")
}

fn wait_progress(server: &DockmonServer, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = progress(server).into_iter().find(|v| f(v)) {
            return v;
        }
        assert!(
            Instant::now() < end,
            "no such selfupdate_progress within {timeout:?}: {:?}",
            progress(server)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn containers_named(prefix: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^/{prefix}"),
        "--format",
        "{{.Names}} {{.Image}} {{.State}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn container_self_update_refuses_fails_safely_and_updates() {
    require_engine();
    let watchdog = Instant::now();
    let mut reg = Registry::start();
    let v1 = push_agent_image(&mut reg, "v1", "v1");
    let v2 = push_agent_image(&mut reg, "v2", "v2");
    // Same repository, but its command fails at once.
    let bad = reg.build_and_push(REPO, "v2bad", &ImageSpec::cmd(&["false"]), false);
    reg.forget_on_drop(&bad);

    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let pid = std::process::id();
    let guard = Guard {
        name: format!("dmt-selfupdate-agent-{pid}"),
        volume: format!("dmt-selfupdate-data-{pid}"),
    };
    let sock_gid = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m).to_string())
        .unwrap_or_else(|_| "0".into());
    docker(&[
        "run",
        "-d",
        "--name",
        &guard.name,
        "--network",
        "host",
        "--user",
        "0",
        "--group-add",
        &sock_gid,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{}:/data", guard.volume),
        "-e",
        &format!("DOCKMON_URL={}", server.url()),
        "-e",
        &format!("REGISTRATION_TOKEN={TOKEN}"),
        "-e",
        "LOG_LEVEL=debug",
        &v1,
    ]);
    let first = server.wait_for_agent(Duration::from_secs(30));
    assert_eq!(first.register["version"], "0.0.1-v1");
    assert_eq!(
        first.register["capabilities"]["self_update"], true,
        "container mode offers self_update"
    );
    let logs = || {
        let out = Command::new("docker")
            .args(["logs", &guard.name])
            .output()
            .expect("docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // 1. A foreign repository is refused, the agent stays.
    let foreign = reg.reference("dmt-selfupdate/other-agent", "v2");
    let id = server.send_command("self_update", json!({"image": foreign, "version": "2"}));
    let reply = server.wait_reply(&id, Duration::from_secs(10));
    assert_eq!(reply["payload"]["status"], "self_update_started", "{reply}");
    let err = wait_progress(&server, Duration::from_secs(20), |v| {
        v.get("error").is_some()
    });
    let text = err["error"].as_str().unwrap();
    assert!(
        text.contains("refusing") && text.contains("other-agent"),
        "{err}"
    );
    assert!(logs().contains("refusing"), "the reason is logged");
    assert!(server.agent_online(&first.agent_id));

    // 2. A v2 whose command fails at once: the old agent stays connected, the failure is reported,
    //    the half-made `-update` container is gone.
    let before = progress(&server).len();
    let id = server.send_command("self_update", json!({"image": bad, "version": "2"}));
    server.wait_reply(&id, Duration::from_secs(10));
    let err = wait_progress(&server, Duration::from_secs(90), |v| {
        v.get("error").is_some() && v["stage"] != "pull"
    });
    assert_eq!(err["stage"], "health", "{err}");
    assert!(err["error"].as_str().unwrap().contains("exited"), "{err}");
    assert!(progress(&server).len() > before);
    std::thread::sleep(Duration::from_secs(2));
    let left = containers_named(&guard.name);
    assert_eq!(left.len(), 1, "only the old agent remains: {left:?}");
    assert!(left[0].contains(":v1 running"), "{left:?}");
    assert!(server.agent_online(&first.agent_id));
    let regs_before = server.registrations().len();

    // 3. The real v2: the agent comes back as v2 with the same permanent token, one container with
    //    the original name remains, its image is v2.
    let id = server.send_command("self_update", json!({"image": v2, "version": "0.0.2-v2"}));
    server.wait_reply(&id, Duration::from_secs(10));
    let ok = server.wait_until(Duration::from_secs(120), |s| {
        s.registrations()
            .iter()
            .skip(regs_before)
            .any(|a| a.register["version"] == "0.0.2-v2")
    });
    assert!(
        ok,
        "no v2 registration; progress {:?}\n{}",
        progress(&server),
        logs()
    );
    let v2reg = server
        .registrations()
        .into_iter()
        .skip(regs_before)
        .find(|a| a.register["version"] == "0.0.2-v2")
        .unwrap();
    assert_eq!(v2reg.agent_id, first.agent_id, "same agent");
    assert_eq!(
        v2reg.register["token"], first.permanent_token,
        "same permanent token"
    );
    assert!(v2reg.reconnect, "no re-registration");
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let left = containers_named(&guard.name);
        if left.len() == 1 && left[0].starts_with(&format!("{} ", guard.name)) {
            assert!(left[0].contains(&format!("{v2} running")), "{left:?}");
            break;
        }
        assert!(Instant::now() < end, "cleanup did not finish: {left:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(server.agent_online(&first.agent_id));
    assert!(
        watchdog.elapsed() < Duration::from_secs(600),
        "took {:?}",
        watchdog.elapsed()
    );
    drop(guard);
}
