//! `update_container` end to end (issue 13, spec 3.8.1, 3.8.2): the agent against the protocol test
//! server, the real engine and a real registry (Debian's `docker-registry`, tests/support/registry.rs)
//! holding FROM-scratch busybox images v1 and v2 of one repository, so every update pulls for real.
//!
//! Needs: a running dockerd, packages docker-registry and apache2-utils (htpasswd).
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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-update";

/// The agent against a server, its log in a file, killed on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(server: &DockmonServer) -> Agent {
        require_engine();
        let data = tempdir("update-agent");
        let log = data.with_extension("log");
        let child = Command::new(agent_bin())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DOCKMON_URL", server.url())
            .env("REGISTRATION_TOKEN", TOKEN)
            .env("DATA_PATH", &data)
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn the agent");
        server.wait_for_agent(Duration::from_secs(15));
        Agent { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
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

/// Payloads of the events `name` received so far about container `cid12`.
fn events(server: &DockmonServer, name: &str, cid12: &str) -> Vec<Value> {
    server
        .event_payloads(name)
        .into_iter()
        .filter(|p| {
            name == "update_complete"
                || p.get("container_id").and_then(Value::as_str) == Some(cid12)
        })
        .collect()
}

/// Sends `update_container` and waits for the end: `update_complete` (Ok) or a final
/// `update_progress` of stage `rollback`/`failed` (Err with its payload).
fn update(
    server: &DockmonServer,
    agent: &Agent,
    cid: &str,
    image: &str,
    extra: Value,
) -> Result<Value, Value> {
    let mut payload = json!({
        "container_id": &cid[..12],
        "new_image": image,
        "stop_timeout": 2,
        "health_timeout": 20,
        "registry_auth": null,
    });
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    let seen = events(server, "update_progress", &cid[..12]).len();
    server.start_detached("update_container", payload, "update_started");
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        let done: Vec<Value> = events(server, "update_complete", "")
            .into_iter()
            .filter(|c| c["old_container_id"] == cid[..12])
            .collect();
        if let Some(c) = done.first() {
            return Ok(c.clone());
        }
        let progress = events(server, "update_progress", &cid[..12]);
        if let Some(last) = progress.get(seen..).and_then(<[Value]>::last) {
            if matches!(last["stage"].as_str(), Some("rollback" | "failed")) {
                return Err(last.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "no end of the update within 120 s; progress: {:?}\nagent log:\n{}",
        events(server, "update_progress", &cid[..12]),
        agent.log()
    );
}

fn inspect(name: &str) -> Value {
    let text = docker(&["inspect", name]);
    serde_json::from_str::<Value>(&text).unwrap()[0].clone()
}

fn exists(name: &str) -> bool {
    Command::new("docker")
        .args(["inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Networks and volumes a test creates, removed on drop (after the containers, which drop first
/// when declared after this).
struct Objects {
    networks: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Objects {
    fn drop(&mut self) {
        for n in &self.networks {
            let _ = Command::new("docker")
                .args(["network", "rm", n])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for v in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn v1() -> ImageSpec {
    ImageSpec::cmd(&["sleep", "3600"])
        .label("dmt.image", "v1")
        .label("dmt.v1only", "yes")
        .env("IMG_ENV", "v1")
}

fn v2() -> ImageSpec {
    ImageSpec::cmd(&["sleep", "3601"])
        .label("dmt.image", "v2")
        .env("IMG_ENV", "v2")
        .healthcheck("--interval=1s --timeout=3s --retries=3 CMD [\"true\"]")
}

/// Removes the containers left by an update (the recreated one has the same name as the old).
struct Names(Vec<String>);

impl Drop for Names {
    fn drop(&mut self) {
        for n in &self.0 {
            for name in [n.clone(), format!("{n}-dockmon-backup")] {
                let _ = Command::new("docker")
                    .args(["rm", "-f", &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

#[test]
fn update_v1_to_v2_keeps_the_settings_and_recreates_dependants() {
    require_engine();
    let pid = std::process::id();
    let prefix = format!("dmt-update-{pid}-ok");
    let mut reg = Registry::start();
    let repo = format!("dmt-update/app{pid}");
    let img1 = reg.build_and_push(&repo, "v1", &v1(), true);
    let img2 = reg.build_and_push(&repo, "v2", &v2(), false);
    assert!(
        !Registry::is_local(&img2),
        "v2 must be pulled by the update"
    );

    let objects = Objects {
        networks: vec![format!("{prefix}-net1"), format!("{prefix}-net2")],
        volumes: vec![format!("{prefix}-vol")],
    };
    for n in &objects.networks {
        docker(&["network", "create", n]);
    }
    let (net1, net2, vol) = (
        &objects.networks[0],
        &objects.networks[1],
        &objects.volumes[0],
    );
    let name = format!("{prefix}-app");
    let dep = format!("{prefix}-dep");
    let _names = Names(vec![name.clone(), dep.clone()]);
    let old_id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "USER_ENV=1",
        "--label",
        "user.label=mine",
        "-p",
        "127.0.0.1::8080",
        "-v",
        &format!("{vol}:/data"),
        "--network",
        net1,
        "--network-alias",
        "app-alias",
        "--restart",
        "unless-stopped",
        &img1,
    ])
    .trim()
    .to_string();
    docker(&["network", "connect", "--alias", "extra-alias", net2, &name]);
    let dep_old = docker(&[
        "run",
        "-d",
        "--name",
        &dep,
        "--network",
        &format!("container:{name}"),
        IMAGE,
        "sleep",
        "3600",
    ])
    .trim()
    .to_string();
    let before = inspect(&name);

    let server = server();
    let agent = Agent::start(&server);
    let done = update(&server, &agent, &old_id, &img2, json!({}))
        .unwrap_or_else(|p| panic!("update failed: {p}\n{}", agent.log()));
    reg.forget_on_drop(&img2);

    let after = inspect(&name);
    let new_id = after["Id"].as_str().unwrap();
    assert_ne!(new_id, old_id);
    assert_eq!(done["old_container_id"], old_id[..12]);
    assert_eq!(done["new_container_id"], new_id[..12]);
    assert_eq!(done["container_name"], name.as_str());
    assert!(done.get("failed_dependents").is_none(), "{done}");
    assert!(!exists(&old_id), "the old container is gone");
    assert!(!exists(&format!("{name}-dockmon-backup")));

    let config = &after["Config"];
    assert_eq!(config["Image"], img2.as_str());
    assert_eq!(
        config["Cmd"],
        json!(["sleep", "3601"]),
        "the new image's command"
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"USER_ENV=1"), "{env:?}");
    assert!(
        env.contains(&"IMG_ENV=v2") && !env.contains(&"IMG_ENV=v1"),
        "{env:?}"
    );
    let labels = &config["Labels"];
    assert_eq!(labels["user.label"], "mine");
    assert_eq!(labels["dmt.image"], "v2");
    assert!(
        labels.get("dmt.v1only").is_none(),
        "v1's label left out: {labels}"
    );
    assert_eq!(after["State"]["Running"], true);
    assert_eq!(after["State"]["Health"]["Status"], "healthy");

    let host = &after["HostConfig"];
    assert_eq!(host["RestartPolicy"], before["HostConfig"]["RestartPolicy"]);
    assert_eq!(host["PortBindings"], before["HostConfig"]["PortBindings"]);
    assert_eq!(host["NetworkMode"], net1.as_str());
    let mounts = after["Mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["Name"] == vol.as_str() && m["Destination"] == "/data"),
        "{mounts:?}"
    );
    let nets = &after["NetworkSettings"]["Networks"];
    let aliases = |net: &str| -> Vec<String> {
        nets[net]["Aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(aliases(net1).contains(&"app-alias".to_string()), "{nets}");
    assert!(aliases(net2).contains(&"extra-alias".to_string()), "{nets}");

    // The dependant now shares the new container's namespace, and runs.
    let dep_after = inspect(&dep);
    assert_ne!(dep_after["Id"], dep_old.as_str(), "recreated");
    assert_eq!(dep_after["State"]["Running"], true);
    let mode = dep_after["HostConfig"]["NetworkMode"].as_str().unwrap();
    assert!(
        mode == format!("container:{new_id}") || mode == format!("container:{name}"),
        "{mode}"
    );
    assert!(!exists(&dep_old));

    // Progress went through the stages of spec 3.8.1, and the pull was reported.
    let stages: Vec<String> = events(&server, "update_progress", &old_id[..12])
        .iter()
        .map(|p| p["stage"].as_str().unwrap().to_string())
        .collect();
    for s in [
        "pulling",
        "configuring",
        "backup",
        "creating",
        "starting",
        "health_check",
        "dependents",
        "cleanup",
        "completed",
    ] {
        assert!(
            stages.contains(&s.to_string()),
            "{s} missing from {stages:?}"
        );
    }
    let layers = events(&server, "update_layer_progress", &old_id[..12]);
    assert!(!layers.is_empty(), "no update_layer_progress");
    for l in &layers {
        for key in [
            "overall_progress",
            "layers",
            "total_layers",
            "remaining_layers",
            "summary",
            "speed_mbps",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    assert!(
        server.breaker_failures().is_empty(),
        "{:?}",
        server.breaker_failures()
    );
}

#[test]
fn a_failing_new_version_rolls_back_to_the_original() {
    require_engine();
    let pid = std::process::id();
    let mut reg = Registry::start();
    let repo = format!("dmt-update/fail{pid}");
    let img1 = reg.build_and_push(&repo, "v1", &v1(), true);
    let exits = reg.build_and_push(&repo, "v2-exits", &ImageSpec::cmd(&["false"]), false);
    let unhealthy = reg.build_and_push(
        &repo,
        "v2-unhealthy",
        &v2().healthcheck("--interval=1s --timeout=2s --retries=1 CMD [\"false\"]"),
        false,
    );
    reg.forget_on_drop(&exits);
    reg.forget_on_drop(&unhealthy);
    // A user network: the default bridge is not usable on every test host (docker0 may be missing).
    let objects = Objects {
        networks: vec![format!("dmt-update-{pid}-failnet")],
        volumes: vec![],
    };
    docker(&["network", "create", &objects.networks[0]]);
    let server = server();
    let agent = Agent::start(&server);

    for (case, image, stopped) in [
        ("exits", &exits, false),
        ("unhealthy", &unhealthy, false),
        ("stopped", &exits, true),
    ] {
        let name = format!("dmt-update-{pid}-fail-{case}");
        let _names = Names(vec![name.clone()]);
        let old_id = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-e",
            "K=V",
            "--network",
            &objects.networks[0],
            &img1,
        ])
        .trim()
        .to_string();
        if stopped {
            docker(&["stop", "-t", "1", &name]);
        }
        let last = match update(&server, &agent, &old_id, image, json!({})) {
            Ok(done) => panic!("{case}: update of a failing image succeeded: {done}"),
            Err(last) => last,
        };
        assert_eq!(last["stage"], "rollback", "{case}: {last}");
        let message = last["message"].as_str().unwrap();
        assert!(message.contains("rolled back"), "{case}: {message}");
        let back = inspect(&name);
        assert_eq!(
            back["Id"],
            old_id.as_str(),
            "{case}: the original is back under its name"
        );
        assert_eq!(back["State"]["Running"], !stopped, "{case}: in its state");
        assert_eq!(back["Config"]["Image"], img1.as_str());
        assert!(!exists(&format!("{name}-dockmon-backup")), "{case}");
        // Only one container carries the name's prefix: the new one was removed.
        let left = docker(&["ps", "-aq", "--filter", &format!("name={name}")]);
        assert_eq!(left.lines().count(), 1, "{case}: {left}");
    }
    let _ = agent;
}

#[test]
fn registry_auth_wrong_password_changes_nothing_and_right_one_works() {
    require_engine();
    let pid = std::process::id();
    let mut reg = Registry::start_with_auth("dmtuser", "s3cret-pass");
    let repo = format!("dmt-update/auth{pid}");
    let img1 = reg.build_and_push(&repo, "v1", &v1(), true);
    let img2 = reg.build_and_push(&repo, "v2", &v2(), false);
    reg.forget_on_drop(&img2);
    let name = format!("dmt-update-{pid}-auth");
    let objects = Objects {
        networks: vec![format!("dmt-update-{pid}-authnet")],
        volumes: vec![],
    };
    docker(&["network", "create", &objects.networks[0]]);
    let _names = Names(vec![name.clone()]);
    let old_id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &objects.networks[0],
        &img1,
    ])
    .trim()
    .to_string();
    let server = server();
    let agent = Agent::start(&server);

    let wrong = json!({"registry_auth": {"username": "dmtuser", "password": "wrong"}});
    let last =
        update(&server, &agent, &old_id, &img2, wrong).expect_err("a wrong password must fail");
    assert_eq!(last["stage"], "failed", "{last}");
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains("failed to pull image") && message.contains(&img2),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("unauthorized") || message.contains("no basic auth"),
        "{message}"
    );
    let same = inspect(&name);
    assert_eq!(same["Id"], old_id.as_str());
    assert_eq!(same["State"]["Running"], true);
    assert!(!Registry::is_local(&img2), "nothing pulled");
    assert!(!agent.log().contains("s3cret-pass") && !agent.log().contains("\"wrong\""));

    let right = json!({"registry_auth": {"username": "dmtuser", "password": "s3cret-pass"}});
    let done = update(&server, &agent, &old_id, &img2, right)
        .unwrap_or_else(|p| panic!("update with the right password failed: {p}"));
    let after = inspect(&name);
    assert_eq!(
        done["new_container_id"],
        after["Id"].as_str().unwrap()[..12]
    );
    assert_eq!(after["Config"]["Image"], img2.as_str());
    assert!(!agent.log().contains("s3cret-pass"), "password in the log");
}
