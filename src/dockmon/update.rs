//! `update_container` (DockMon spec 3.3, 3.5, 3.8.1, 3.8.2): pull the new image, recreate the container
//! from its own configuration with it, wait for health, and roll back to the original on any failure.
//!
//! The reply `{"status":"update_started"}` goes out at once; the flow runs detached on the agent's
//! executor (`Context::ex`), so it survives a reconnect, and reports through events queued with
//! `Context::send`: `update_progress` per stage, `update_layer_progress` during the pull (throttled by
//! `docker::pull::Throttle`), `update_complete` at the end. A failure ends with one last
//! `update_progress` whose stage is `failed` (nothing was changed yet, or the rollback itself failed)
//! or `rollback` (the original container is back under its name and in its state), its message says why.
//!
//! Steps: pull → inspect the old container and its image, find dependants (`network_mode:
//! container:<x>`), plan the clone (`docker::recreate`) → stop and rename the old one to
//! `<name>-dockmon-backup` → create the new one under the name, connect extra networks → start → wait
//! for health (Docker healthcheck `healthy`, or running through the grace period min(30 s, 50 % of
//! `health_timeout`)) → stop it again if the old one was stopped → recreate dependants → remove the
//! backup → `update_complete`.
//!
//! Memory: the pull is read line by line (`Client::pull`); the layer table and each progress frame
//! are bounded by `PULL_LAYERS_MAX_COUNT`.
use super::context::Context;
use super::error::docker_text;
use super::msg;
use crate::docker::pull::{self, Layers, Throttle};
use crate::docker::recreate::{self, short_id, Plan};
use crate::docker::{self, Client};
use crate::limits::*;
use crate::outbox::Class;
use async_io::Timer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Suffix of the old container's name while the new one is tried.
pub const BACKUP_SUFFIX: &str = "-dockmon-backup";

/// The `update_container` payload (spec 3.3).
#[derive(Debug, Deserialize)]
pub struct Payload {
    /// The container (ID, short ID or name).
    #[serde(default)]
    pub container_id: String,
    /// The image to update to.
    #[serde(default)]
    pub new_image: String,
    /// Grace period of the stop, seconds.
    #[serde(default)]
    pub stop_timeout: Option<f64>,
    /// How long the new container may take to become healthy, seconds.
    #[serde(default)]
    pub health_timeout: Option<f64>,
    /// Credentials for the registry (spec 3.8.2).
    #[serde(default)]
    pub registry_auth: Option<RegistryAuth>,
}

/// `registry_auth`. Never logged.
#[derive(Deserialize)]
pub struct RegistryAuth {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password or token.
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RegistryAuth {{ username: {:?}, password: … }}",
            self.username
        )
    }
}

/// Seconds from the payload: finite, non-negative, clamped to `max`, else `default`.
fn seconds(v: Option<f64>, default: u32, max: u32) -> u32 {
    v.filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| (t as u32).min(max))
        .unwrap_or(default)
}

/// The payload, checked: the error text is the reply's.
pub fn parse_payload(payload: Option<&RawValue>) -> Result<Payload, String> {
    let p: Payload = match payload {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| format!("invalid update_container payload: {e}"))?,
        None => return Err("invalid update_container payload: missing".into()),
    };
    if p.container_id.is_empty() {
        return Err("container_id is required".into());
    }
    if p.new_image.is_empty() {
        return Err("new_image is required".into());
    }
    Ok(p)
}

/// The grace period of a container without a Docker healthcheck (spec 3.8.1).
pub fn grace_s(health_timeout_s: u32) -> u32 {
    UPDATE_GRACE_MAX_S.min(health_timeout_s / 2)
}

/// Answers `update_container` into `out` and starts the flow on `ctx.ex`.
pub async fn update_container(
    ctx: &Context,
    payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let now = msg::now_stamp();
    let p = match parse_payload(payload) {
        Ok(p) => p,
        Err(text) => return msg::write_response_error(out, id, &text, &now),
    };
    let Some(guard) = Running::claim(short_id(&p.container_id)) else {
        let text = format!(
            "an update of container {} is already in progress (or {} updates are)",
            p.container_id, UPDATES_IN_FLIGHT_MAX_COUNT
        );
        return msg::write_response_error(out, id, &text, &now);
    };
    let job = Job {
        client: ctx.client.clone(),
        sink: ctx.sink.clone(),
        cid: short_id(&p.container_id).to_string(),
        stop_s: seconds(
            p.stop_timeout,
            UPDATE_STOP_TIMEOUT_DEFAULT_S,
            STOP_TIMEOUT_MAX_S,
        ),
        health_s: seconds(
            p.health_timeout,
            UPDATE_HEALTH_TIMEOUT_DEFAULT_S,
            UPDATE_HEALTH_TIMEOUT_MAX_S,
        ),
        auth: p
            .registry_auth
            .as_ref()
            .filter(|a| !a.username.is_empty() || !a.password.is_empty())
            .map(|a| pull::registry_auth(&a.username, &a.password)),
        target: p.container_id,
        image: p.new_image,
    };
    log::debug!("update_container {} → {}", job.target, job.image);
    ctx.ex
        .spawn(async move {
            job.run().await;
            drop(guard);
        })
        .detach();
    msg::begin_response(out, id);
    out.extend_from_slice(br#"{"status":"update_started"}"#);
    msg::end_response(out, &now);
}

std::thread_local! {
    /// Containers (as the backend names them) with an update in flight. The agent has one thread,
    /// so this is the agent's one list; a second update of the same container would fight the first
    /// over the backup name, so it is refused. At most `UPDATES_IN_FLIGHT_MAX_COUNT` (refused past it).
    static RUNNING: std::cell::RefCell<heapless::Vec<heapless::String<64>, UPDATES_IN_FLIGHT_MAX_COUNT>> =
        const { std::cell::RefCell::new(heapless::Vec::new()) };
}

/// A claim on one container's update; released on drop.
struct Running(heapless::String<64>);

impl Running {
    fn claim(container: &str) -> Option<Running> {
        let mut key = heapless::String::new();
        key.push_str(container).ok()?;
        RUNNING.with_borrow_mut(|r| {
            if r.contains(&key) {
                return None;
            }
            r.push(key.clone()).ok()?;
            Some(Running(key))
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with_borrow_mut(|r| r.retain(|k| k != &self.0));
    }
}

struct Job {
    client: Rc<Client>,
    sink: Rc<dyn super::context::Sink>,
    /// The container as the backend named it, for the events (12 chars).
    cid: String,
    target: String,
    image: String,
    stop_s: u32,
    health_s: u32,
    auth: Option<String>,
}

/// How far the flow got, for the rollback.
struct Undo {
    old_id: String,
    name: String,
    was_running: bool,
    renamed: bool,
    new_id: Option<String>,
}

#[derive(Serialize)]
struct Progress<'a> {
    container_id: &'a str,
    stage: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct LayerJson<'a> {
    id: &'a str,
    status: &'a str,
    current: u64,
    total: u64,
    percent: u8,
}

#[derive(Serialize)]
struct LayerProgress<'a> {
    container_id: &'a str,
    overall_progress: u8,
    layers: Vec<LayerJson<'a>>,
    total_layers: usize,
    remaining_layers: usize,
    summary: &'a str,
    speed_mbps: f64,
}

#[derive(Serialize)]
struct Complete<'a> {
    old_container_id: &'a str,
    new_container_id: &'a str,
    container_name: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    failed_dependents: &'a [String],
}

/// The part of a container inspect the health wait reads.
#[derive(Deserialize)]
struct Inspected<'a> {
    #[serde(rename = "State", borrow)]
    state: State<'a>,
}

#[derive(Deserialize)]
struct State<'a> {
    #[serde(rename = "Status", borrow, default)]
    status: std::borrow::Cow<'a, str>,
    #[serde(rename = "ExitCode", default)]
    exit_code: i64,
    #[serde(rename = "Health", borrow, default)]
    health: Option<Health<'a>>,
}

#[derive(Deserialize)]
struct Health<'a> {
    #[serde(rename = "Status", borrow, default)]
    status: std::borrow::Cow<'a, str>,
}

/// A failure and the stage it happened in.
struct Failed {
    stage: &'static str,
    text: String,
}

fn at(stage: &'static str) -> impl Fn(docker::Error) -> Failed {
    move |e| Failed {
        stage,
        text: docker_text(&e),
    }
}

impl Job {
    fn event<P: Serialize>(&self, name: &str, payload: P) {
        let mut frame = self.sink.buffer();
        msg::write_event(&mut frame, name, payload, &msg::now_stamp());
        self.sink.send(Class::Event, frame);
    }

    fn progress(&self, stage: &str, message: &str) {
        self.event(
            "update_progress",
            Progress {
                container_id: &self.cid,
                stage,
                message,
            },
        );
    }

    async fn run(self) {
        self.progress("pulling", &format!("Pulling image {}", self.image));
        if let Err(e) = self.pull().await {
            log::debug!("update of {}: pull failed: {e}", self.target);
            let text = format!("failed to pull image {}: {}", self.image, docker_text(&e));
            return self.progress("failed", &text);
        }
        self.progress("configuring", "Reading the container's configuration");
        let (plan, mut undo, dependants) = match self.prepare().await {
            Ok(x) => x,
            Err(f) => return self.progress("failed", &format!("{}: {}", f.stage, f.text)),
        };
        match self.replace(&plan, &mut undo, &dependants).await {
            Ok((new_id, failed_dependents)) => {
                // The outcome in the agent's own log too: an update outlives a lost DockMon
                // connection, and its events may never reach the user (issue 17).
                log::info!("update of {} to {}: completed", undo.name, self.image);
                self.progress("completed", "Update completed");
                self.event(
                    "update_complete",
                    Complete {
                        old_container_id: short_id(&undo.old_id),
                        new_container_id: short_id(&new_id),
                        container_name: &undo.name,
                        failed_dependents: &failed_dependents,
                    },
                );
            }
            Err(f) => {
                log::warn!(
                    "update of {} failed at {}: {}; rolling back",
                    undo.name,
                    f.stage,
                    f.text
                );
                match self.rollback(&undo).await {
                    Ok(()) => self.progress(
                        "rollback",
                        &format!(
                            "update failed at {}: {}; rolled back to the original container",
                            f.stage, f.text
                        ),
                    ),
                    Err(e) => self.progress(
                        "failed",
                        &format!(
                            "update failed at {}: {}; rollback failed: {}",
                            f.stage,
                            f.text,
                            docker_text(&e)
                        ),
                    ),
                }
            }
        }
    }

    async fn pull(&self) -> Result<(), docker::Error> {
        let started = Instant::now();
        let mut layers = Layers::new();
        let mut throttle = Throttle::default();
        let mut last = (0u64, 0u64); // (ms, bytes) at the last event
        let mut each = |line: &pull::Line<'_>| {
            let applied = layers.apply(line);
            let now_ms = started.elapsed().as_millis() as u64;
            if !throttle.due(now_ms, layers.overall(), applied.completed) {
                return Ok(());
            }
            let bytes = layers.downloaded_bytes();
            let dt = now_ms.saturating_sub(last.0);
            let speed = if dt == 0 {
                0.0
            } else {
                let mbps = bytes.saturating_sub(last.1) as f64 * 8.0 / 1e6 / (dt as f64 / 1e3);
                (mbps * 100.0).round() / 100.0
            };
            last = (now_ms, bytes);
            self.layer_event(&layers, speed);
            Ok(())
        };
        self.client
            .pull(&self.image, self.auth.as_deref(), &mut each)
            .await?;
        Ok(())
    }

    fn layer_event(&self, layers: &Layers, speed_mbps: f64) {
        let total = layers.layers().len() + layers.untracked() as usize;
        let remaining = layers.remaining() + layers.untracked() as usize;
        let summary = format!(
            "{} of {} layers done, {:.1} of {:.1} MB",
            total - remaining,
            total,
            layers.downloaded_bytes() as f64 / 1e6,
            layers.total_bytes() as f64 / 1e6
        );
        self.event(
            "update_layer_progress",
            LayerProgress {
                container_id: &self.cid,
                overall_progress: layers.overall(),
                layers: layers
                    .layers()
                    .iter()
                    .map(|l| LayerJson {
                        id: &l.id,
                        status: l.phase.as_str(),
                        current: l.current,
                        total: l.total,
                        percent: l.percent(),
                    })
                    .collect(),
                total_layers: total,
                remaining_layers: remaining,
                summary: &summary,
                speed_mbps,
            },
        );
    }

    async fn prepare(&self) -> Result<(Plan, Undo, Vec<String>), Failed> {
        let stage = "configuring";
        let old = self
            .client
            .inspect_value(&self.target)
            .await
            .map_err(at(stage))?;
        let old_id = old
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let image_id = old
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let was_running = old
            .pointer("/State/Running")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let image_config = self
            .client
            .image_config(&image_id)
            .await
            .map_err(at(stage))?;
        let plan =
            recreate::clone_config(old, image_config.as_ref(), &self.image).map_err(|e| {
                Failed {
                    stage,
                    text: e.to_string(),
                }
            })?;
        // The inspect values are the largest things held here: gone before the list is read.
        drop(image_config);
        let dependants = self
            .client
            .namespace_dependants(&old_id, &plan.name)
            .await
            .map_err(at(stage))?;
        let undo = Undo {
            old_id,
            name: plan.name.clone(),
            was_running,
            renamed: false,
            new_id: None,
        };
        Ok((plan, undo, dependants))
    }

    /// Everything from the backup on; `undo` records what to take back.
    async fn replace(
        &self,
        plan: &Plan,
        undo: &mut Undo,
        dependants: &[String],
    ) -> Result<(String, Vec<String>), Failed> {
        let c = &self.client;
        self.progress(
            "backup",
            "Stopping the container and keeping it as a backup",
        );
        c.stop(&undo.old_id, self.stop_s)
            .await
            .map_err(at("backup"))?;
        c.rename(&undo.old_id, &backup_name(&undo.name))
            .await
            .map_err(at("backup"))?;
        undo.renamed = true;

        self.progress("creating", "Creating the new container");
        let new_id = c.create_from(plan).await.map_err(at("creating"))?;
        undo.new_id = Some(new_id.clone());

        self.progress("starting", "Starting the new container");
        c.start(&new_id).await.map_err(at("starting"))?;

        self.progress(
            "health_check",
            "Waiting for the new container to be healthy",
        );
        self.wait_healthy(&new_id).await?;
        if !undo.was_running {
            c.stop(&new_id, self.stop_s)
                .await
                .map_err(at("health_check"))?;
        }

        let mut failed_dependents = Vec::new();
        if !dependants.is_empty() {
            self.progress("dependents", "Recreating containers that share its network");
            for dep in dependants {
                if let Err(e) = self.recreate_dependant(dep, &new_id).await {
                    log::debug!("dependant {dep}: {}", docker_text(&e));
                    failed_dependents.push(short_id(dep).to_string());
                }
            }
        }

        self.progress("cleanup", "Removing the old container");
        if let Err(e) = c.remove(&undo.old_id, true).await {
            // The update itself succeeded; a leftover backup is reported, not rolled back.
            log::debug!("removing the backup of {}: {}", undo.name, docker_text(&e));
        }
        Ok((new_id, failed_dependents))
    }

    /// Waits for the Docker healthcheck to say healthy, or, without one, for the container to keep
    /// running through the grace period (spec 3.8.1).
    async fn wait_healthy(&self, id: &str) -> Result<(), Failed> {
        let stage = "health_check";
        let started = Instant::now();
        let limit = Duration::from_secs(u64::from(self.health_s));
        let grace = Duration::from_secs(u64::from(grace_s(self.health_s)));
        let mut buf = Vec::new();
        loop {
            self.client
                .inspect_raw(id, &mut buf)
                .await
                .map_err(at(stage))?;
            let state = serde_json::from_slice::<Inspected>(&buf)
                .map_err(|e| Failed {
                    stage,
                    text: format!("unexpected inspect JSON: {e}"),
                })?
                .state;
            let status = state.status.as_ref();
            let health = state.health.as_ref().map(|h| h.status.as_ref());
            if status != "running" {
                let code = state.exit_code;
                return Err(Failed {
                    stage,
                    text: format!("the new container is {status} (exit code {code})"),
                });
            }
            match health {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => {
                    return Err(Failed {
                        stage,
                        text: "the new container's healthcheck reports unhealthy".into(),
                    })
                }
                Some(_) => {}
                None if started.elapsed() >= grace => return Ok(()),
                None => {}
            }
            if started.elapsed() >= limit {
                return Err(Failed {
                    stage,
                    text: format!(
                        "the new container was not healthy within {} s",
                        self.health_s
                    ),
                });
            }
            Timer::after(Duration::from_millis(UPDATE_HEALTH_POLL_MS)).await;
        }
    }

    /// Recreates a container that shares the updated one's network namespace, pointed at the new one,
    /// in its former state; on failure the dependant is put back as it was.
    async fn recreate_dependant(&self, dep: &str, new_id: &str) -> Result<(), docker::Error> {
        let c = &self.client;
        let old = c.inspect_value(dep).await?;
        let image = old
            .pointer("/Config/Image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let running = old
            .pointer("/State/Running")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut plan =
            recreate::clone_config(old, None, &image).map_err(|e| docker::Error::Stream {
                call: "GET /containers/{id}/json".into(),
                message: e.to_string(),
            })?;
        recreate::share_namespace_of(&mut plan, new_id);
        c.stop(dep, self.stop_s).await?;
        c.rename(dep, &backup_name(&plan.name)).await?;
        let result = async {
            let id = c.create_from(&plan).await?;
            if running {
                if let Err(e) = c.start(&id).await {
                    let _ = c.remove(&id, true).await;
                    return Err(e);
                }
            }
            Ok(id)
        }
        .await;
        match result {
            Ok(_) => c.remove(dep, true).await,
            Err(e) => {
                let _ = c.rename(dep, &plan.name).await;
                Err(e)
            }
        }
    }

    /// Removes the new container and puts the backup back under its name and in its state.
    async fn rollback(&self, undo: &Undo) -> Result<(), docker::Error> {
        let c = &self.client;
        if let Some(id) = &undo.new_id {
            c.remove(id, true).await?;
        }
        if undo.renamed {
            c.rename(&undo.old_id, &undo.name).await?;
        }
        if undo.was_running {
            c.start(&undo.old_id).await?;
        }
        Ok(())
    }
}

fn backup_name(name: &str) -> String {
    format!("{name}{BACKUP_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn payloads_are_checked() {
        let p = parse_payload(Some(&raw(
            r#"{"container_id":"abc","new_image":"x:2","stop_timeout":5,"health_timeout":60,"registry_auth":{"username":"u","password":"p"}}"#,
        )))
        .unwrap();
        assert_eq!(p.container_id, "abc");
        assert_eq!(seconds(p.stop_timeout, 30, 3600), 5);
        assert!(
            !format!("{:?}", p.registry_auth).contains("\"p\""),
            "password not in Debug"
        );
        let p = parse_payload(Some(&raw(
            r#"{"container_id":"abc","new_image":"x","registry_auth":null}"#,
        )))
        .unwrap();
        assert!(p.registry_auth.is_none());
        assert_eq!(seconds(p.health_timeout, 120, 600), 120);
        assert_eq!(seconds(Some(-1.0), 120, 600), 120);
        assert_eq!(seconds(Some(1e9), 120, 600), 600);
        assert_eq!(
            parse_payload(Some(&raw(r#"{"new_image":"x"}"#))).unwrap_err(),
            "container_id is required"
        );
        assert_eq!(
            parse_payload(Some(&raw(r#"{"container_id":"a"}"#))).unwrap_err(),
            "new_image is required"
        );
        assert!(parse_payload(Some(&raw("\"x\"")))
            .unwrap_err()
            .starts_with("invalid update_container payload"));
        assert!(parse_payload(None).is_err());
    }

    #[test]
    fn one_update_per_container_at_a_time() {
        let a = Running::claim("aaaaaaaaaaaa").unwrap();
        assert!(Running::claim("aaaaaaaaaaaa").is_none());
        let b = Running::claim("bbbbbbbbbbbb").unwrap();
        drop(a);
        assert!(Running::claim("aaaaaaaaaaaa").is_some(), "released on drop");
        drop(b);
        let all: Vec<_> = (0..UPDATES_IN_FLIGHT_MAX_COUNT)
            .map(|i| Running::claim(&format!("c{i}")).unwrap())
            .collect();
        assert!(Running::claim("one-more").is_none(), "capacity");
        drop(all);
    }

    #[test]
    fn grace_is_min_of_30_s_and_half_the_timeout() {
        assert_eq!(grace_s(120), 30);
        assert_eq!(grace_s(20), 10);
        assert_eq!(grace_s(0), 0);
    }
}
