//! `deploy_compose` as DockMon sends it, for the suites that deploy stacks (compose_stacks,
//! engine_footprint, faults_agent), and the cleanup of what a deployment leaves on the engine.
#![allow(dead_code)]

use crate::dockmon_server::DockmonServer;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a deployment may take to send `deploy_complete` (a slow CI machine starts the
/// containers of a fixture one by one).
const COMPLETE_WITHIN: Duration = Duration::from_secs(180);

/// The payload DockMon sends (every field; `up`, no content, no options), with the fields of
/// `overrides` (an object) put over it.
pub fn payload(deployment_id: &str, project: &str, overrides: Value) -> Value {
    let mut p = json!({
        "deployment_id": deployment_id,
        "project_name": project,
        "compose_content": "",
        "env_file_content": "",
        "env_files": {},
        "action": "up",
        "remove_volumes": false,
        "profiles": [],
        "force_recreate": false,
        "pull_images": false,
        "wait_for_healthy": false,
        "health_timeout": 60,
        "registry_credentials": [],
    });
    for (k, v) in overrides.as_object().expect("overrides are an object") {
        p[k] = v.clone();
    }
    p
}

/// Sends `deploy_compose` with `payload` and checks the immediate `deployment_started` reply.
pub fn start(server: &DockmonServer, payload: Value) {
    server.start_detached("deploy_compose", payload, "deployment_started");
}

/// The payloads of the `name` events of deployment `deployment_id`, oldest first.
pub fn events(server: &DockmonServer, name: &str, deployment_id: &str) -> Vec<Value> {
    server
        .event_payloads(name)
        .into_iter()
        .filter(|e| e["deployment_id"] == deployment_id)
        .collect()
}

/// Sends `payload` and waits for its `deploy_complete`; returns that payload and this run's
/// `deploy_progress` payloads. A deployment ID may be used again (DockMon sends `down` with the
/// `up`'s ID): what earlier runs of the same ID sent is skipped.
pub fn deploy(server: &DockmonServer, payload: Value) -> (Value, Vec<Value>) {
    let dep_id = payload["deployment_id"]
        .as_str()
        .expect("payload has a deployment_id")
        .to_string();
    let done_before = events(server, "deploy_complete", &dep_id).len();
    let progress_before = events(server, "deploy_progress", &dep_id).len();
    start(server, payload);
    let end = Instant::now() + COMPLETE_WITHIN;
    loop {
        if let Some(done) = events(server, "deploy_complete", &dep_id)
            .into_iter()
            .nth(done_before)
        {
            let progress = events(server, "deploy_progress", &dep_id)
                .into_iter()
                .skip(progress_before)
                .collect();
            return (done, progress);
        }
        assert!(
            Instant::now() < end,
            "no deploy_complete for {dep_id} within {COMPLETE_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes a compose project's containers, networks and volumes (by compose's project label, and
/// the default network by name) however the test ends.
pub struct Project(pub String);

impl Drop for Project {
    fn drop(&mut self) {
        let label = format!("label=com.docker.compose.project={}", self.0);
        let ids = |list: &[&str]| {
            Command::new("docker")
                .args(list)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let default_network = format!("{}_default", self.0);
        for (list, rm) in [
            (
                &["ps", "-aq", "--filter", &label][..],
                &["rm", "-f", "-v"][..],
            ),
            (
                &["network", "ls", "-q", "--filter", &label],
                &["network", "rm"],
            ),
            (
                &["volume", "ls", "-q", "--filter", &label],
                &["volume", "rm", "-f"],
            ),
        ] {
            for id in ids(list).split_whitespace() {
                let _ = Command::new("docker").args(rm).arg(id).output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &default_network])
            .output();
    }
}
