//! `self_update` (DockMon spec 3.3, 3.5 `selfupdate_progress`, 3.8.3) and the startup half of it (spec
//! 1.2 `cleanup.json`, 1.3 step 5).
//!
//! DockMon builds the payload for its Go agent: `image` is what its update check found for the agent's
//! own container, `binary_url` always points at the Go agent's release. A user who chose this agent
//! must get this agent's newer release or a clear refusal, never a silent swap to another program. So:
//!
//! - **Container mode** (spec 1.5): an `image` from another repository than the one our container runs
//!   from is refused. Otherwise: `pull` → `inspect` (our own container, cloned with the new image by
//!   `docker::recreate`, named `<name>-update`; `cleanup.json` written to `DATA_PATH`, mode 0600) →
//!   `start` → `health` (Docker health `healthy`; 5 s running without a healthcheck; 60 s limit) →
//!   `complete`, then [`Link::retire`](super::context::Link::retire): the agent loop closes the
//!   connection and stops reconnecting; the process lingers until the new container removes it. Any
//!   failure removes the half-made `-update` container and `cleanup.json`; the old agent was never
//!   touched, so it stays running and connected. The reason goes in a `selfupdate_progress` error and
//!   the log.
//! - **Startup** ([`spawn_cleanup`]): a container that finds `cleanup.json` naming it as the new
//!   container waits until it is registered with DockMon, then stops and removes the old container,
//!   renames itself to `original_name` and deletes the file. Waiting for the registration (the Go
//!   agent cleans up before connecting) means a new agent that cannot connect never removes the
//!   working one: the old agent's health wait fails and takes the new one away instead. In practice
//!   the new agent registers within seconds, well before its image's HEALTHCHECK first reports
//!   (interval 30 s), so it usually stops the old agent while that one is still in its health wait;
//!   the retire path covers a new agent that is healthy before it has cleaned up.
//!
//! Caveat: `dockmon-agent health` asks an abstract unix socket, which belongs to the network
//! namespace. Two agents with `--network host` share it, so the new one's healthcheck is answered by
//! the old one until the old one is gone; a new agent that exits is still caught (not running).
//! - **Native (systemd) mode**: [`native`]: this project's release binary for our architecture,
//!   checked against the release's `SHA256SUMS`, staged next to the executable, `update.lock`, exit;
//!   systemd restarts the agent, which tries the new binary and keeps it only once it has registered.
//!   The `self_update` capability stays false there: DockMon reads it as "container mode" (spec 2.3)
//!   and offers the button either way.
//!
//! Files: this one (the command, container mode and its startup cleanup), [`native`] (native mode and
//! its startup half), [`lock`] (`update.lock` and the startup decisions, pure), [`release`] (release
//! URLs, `SHA256SUMS`, `--version` lines, pure), [`fetch`] (the download).
//!
//! The data volume is shared by both containers, so the permanent token carries over and the new
//! agent reconnects as the same host without re-registration.
pub mod fetch;
pub mod lock;
pub mod native;
pub mod release;

use super::context::{Context, Sink};
use super::error::docker_text;
use super::msg;
use crate::docker::pull::{self, Layers, Throttle};
use crate::docker::recreate::{self, short_id};
use crate::docker::{self, Client};
use crate::identity;
use crate::limits::*;
use crate::outbox::Class;
use async_io::Timer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The file that hands the cleanup to the new container (spec 1.2).
pub const CLEANUP_FILE: &str = "cleanup.json";
/// Suffix of the replacement container's name while both run (spec 3.8.3).
pub const UPDATE_SUFFIX: &str = "-update";

/// The `self_update` payload (spec 3.3). `binary_url` and `checksum` are for the Go agent's binary.
#[derive(Debug, Default, Deserialize)]
pub struct Payload {
    /// The image to update to (container mode).
    #[serde(default)]
    pub image: Option<String>,
    /// The version DockMon offers.
    #[serde(default)]
    pub version: Option<String>,
    /// The Go agent's release asset: never downloaded here.
    #[serde(default)]
    pub binary_url: Option<String>,
    /// SHA-256 of `binary_url`'s file.
    #[serde(default)]
    pub checksum: Option<String>,
}

/// `cleanup.json` (spec 1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleanup {
    /// The container being replaced (full ID).
    pub old_container_id: String,
    /// Its name (no leading `/`).
    pub old_container_name: String,
    /// The replacement (full ID).
    pub new_container_id: String,
    /// The replacement's name until the cleanup (`<name>-update`).
    pub temp_name: String,
    /// The name the replacement takes back.
    pub original_name: String,
}

/// The payload, checked: the error text is the reply's.
pub fn parse_payload(payload: Option<&RawValue>) -> Result<Payload, String> {
    match payload {
        Some(raw) => {
            serde_json::from_str(raw.get()).map_err(|e| format!("invalid self_update payload: {e}"))
        }
        None => Ok(Payload::default()),
    }
}

/// The repository of an image reference: without digest (`@…`) and tag (the last `:` after the last
/// `/`, so a registry port stays), Docker Hub's implicit `docker.io/` and `library/` made explicit,
/// lower case. `nginx`, `docker.io/library/nginx:1` and `nginx@sha256:…` are one repository.
pub fn repository(reference: &str) -> String {
    let r = reference.split('@').next().unwrap_or(reference);
    let name_start = r.rfind('/').map_or(0, |i| i + 1);
    let r = match r[name_start..].rfind(':') {
        Some(i) => &r[..name_start + i],
        None => r,
    };
    let r = r.to_ascii_lowercase();
    // The first component is a registry when it has a dot or a colon or is `localhost`.
    let (registry, path) = match r.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), r.clone()),
    };
    let registry = if registry == "index.docker.io" {
        "docker.io".to_string()
    } else {
        registry
    };
    if registry == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{registry}/{path}")
    }
}

/// Refuses `wanted` unless it is from the repository of `ours` (the reference our container was
/// created with). The text says why, for the reply's progress error and the log.
pub fn check_repository(ours: &str, wanted: &str) -> Result<(), String> {
    if ours.is_empty() || ours.starts_with("sha256:") {
        return Err(format!(
            "refusing to update to {wanted}: this agent's container was created from image ID {ours:?}, so its repository is unknown; recreate it from a named image"
        ));
    }
    let (a, b) = (repository(ours), repository(wanted));
    if a != b {
        return Err(format!(
            "refusing to update to {wanted}: it is from repository {b}, but this agent runs from {a} (DockMon offers the image of another agent; update this one from its own repository)"
        ));
    }
    Ok(())
}

/// Answers `self_update` into `out` and, in container mode, starts the flow on `ctx.ex`.
pub async fn self_update(ctx: &Context, payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let now = msg::now_stamp();
    let p = match parse_payload(payload) {
        Ok(p) => p,
        Err(text) => return msg::write_response_error(out, id, &text, &now),
    };
    let mode = identity::detect_mode(
        Path::new("/proc"),
        std::env::var("HOSTNAME").ok().as_deref(),
    );
    let Some(own) = mode.container_id() else {
        return native::start(ctx, &p, id, out, &now);
    };
    let image = match p.image.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => i.to_string(),
        _ => {
            return msg::write_response_error(
                out,
                id,
                "self_update needs an image in container mode",
                &now,
            )
        }
    };
    if BUSY.with(|b| b.replace(true)) {
        return msg::write_response_error(out, id, "a self-update is already in progress", &now);
    }
    let job = Job {
        client: ctx.client.clone(),
        sink: ctx.sink.clone(),
        link: ctx.link.clone(),
        data_path: ctx.config.data_path.clone(),
        own: own.to_string(),
        image,
    };
    log::info!(
        "self_update to {} (version {})",
        job.image,
        p.version.as_deref().unwrap_or("?")
    );
    ctx.ex
        .spawn(async move {
            job.run().await;
            BUSY.with(|b| b.set(false));
        })
        .detach();
    msg::begin_response(out, id);
    out.extend_from_slice(br#"{"status":"self_update_started"}"#);
    msg::end_response(out, &now);
}

thread_local! {
    /// One self-update at a time: a second one would remove the first one's `<name>-update`. The
    /// agent has one thread, so a thread-local is the process's flag.
    static BUSY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[derive(Serialize)]
struct Progress<'a> {
    stage: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

struct Job {
    client: Rc<Client>,
    sink: Rc<dyn Sink>,
    link: Rc<super::context::Link>,
    data_path: PathBuf,
    /// Our own short container ID.
    own: String,
    image: String,
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

/// Queues a `selfupdate_progress` event (spec 3.5).
fn progress(sink: &dyn Sink, stage: &str, message: &str, error: Option<&str>) {
    let mut frame = sink.buffer();
    msg::write_event(
        &mut frame,
        "selfupdate_progress",
        Progress {
            stage,
            message,
            error,
        },
        &msg::now_stamp(),
    );
    sink.send(Class::Event, frame);
}

impl Job {
    fn progress(&self, stage: &str, message: &str, error: Option<&str>) {
        progress(&*self.sink, stage, message, error);
    }

    async fn run(self) {
        let mut new_id = None;
        match self.steps(&mut new_id).await {
            Ok(()) => {
                self.progress(
                    "complete",
                    "The new agent is up; this one stops its connection",
                    None,
                );
                log::info!(
                    "self_update: the new container is healthy; closing the DockMon connection and waiting to be removed"
                );
                // Let the last progress frame go out before the connection closes.
                Timer::after(Duration::from_millis(SELF_UPDATE_RETIRE_DELAY_MS)).await;
                self.link.retire();
            }
            Err(f) => {
                log::error!(
                    "self_update to {} failed at {}: {}",
                    self.image,
                    f.stage,
                    f.text
                );
                if let Some(id) = &new_id {
                    if let Err(e) = self.client.remove(id, true).await {
                        log::warn!(
                            "self_update: removing the new container {}: {}",
                            short_id(id),
                            docker_text(&e)
                        );
                    }
                }
                let _ = std::fs::remove_file(self.data_path.join(CLEANUP_FILE));
                self.progress(f.stage, "Error occurred", Some(&f.text));
            }
        }
    }

    async fn steps(&self, new_id: &mut Option<String>) -> Result<(), Failed> {
        let c = &self.client;
        let me = c.inspect_value(&self.own).await.map_err(at("inspect"))?;
        let ours = me
            .pointer("/Config/Image")
            .and_then(Value::as_str)
            .unwrap_or("");
        check_repository(ours, &self.image).map_err(|text| Failed {
            stage: "pull",
            text,
        })?;

        self.progress("pull", &format!("Pulling image {}", self.image), None);
        self.pull().await.map_err(|e| Failed {
            stage: "pull",
            text: format!("failed to pull image {}: {}", self.image, docker_text(&e)),
        })?;

        self.progress(
            "inspect",
            "Reading this agent's container configuration",
            None,
        );
        let image_id = me.get("Image").and_then(Value::as_str).unwrap_or("");
        let image_config = c.image_config(image_id).await.map_err(at("inspect"))?;
        let old_container_id = me
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or(&self.own)
            .to_string();
        let mut plan =
            recreate::clone_config(me, image_config.as_ref(), &self.image).map_err(|e| Failed {
                stage: "inspect",
                text: e.to_string(),
            })?;
        let original_name = plan.name.clone();
        let temp_name = format!("{original_name}{UPDATE_SUFFIX}");
        plan.name = temp_name.clone();

        self.progress("create", &format!("Creating container {temp_name}"), None);
        // A leftover of an earlier failed attempt would hold the name.
        let _ = c.remove(&temp_name, true).await;
        let id = c.create_from(&plan).await.map_err(at("create"))?;
        *new_id = Some(id.clone());
        let cleanup = Cleanup {
            old_container_id,
            old_container_name: original_name.clone(),
            new_container_id: id.clone(),
            temp_name,
            original_name,
        };
        write_cleanup(&self.data_path, &cleanup).map_err(|e| Failed {
            stage: "create",
            text: format!(
                "cannot write {}: {e}",
                self.data_path.join(CLEANUP_FILE).display()
            ),
        })?;

        self.progress("start", "Starting the new agent container", None);
        c.start(&id).await.map_err(at("start"))?;

        self.progress("health", "Waiting for the new agent to be healthy", None);
        self.wait_healthy(&id).await
    }

    async fn pull(&self) -> Result<(), docker::Error> {
        let started = Instant::now();
        let mut layers = Layers::new();
        let mut throttle = Throttle::default();
        let mut each = |line: &pull::Line<'_>| {
            let applied = layers.apply(line);
            let now_ms = started.elapsed().as_millis() as u64;
            if throttle.due(now_ms, layers.overall(), applied.completed) {
                let text = format!(
                    "Pulling {}: {} % ({:.1} of {:.1} MB)",
                    self.image,
                    layers.overall(),
                    layers.downloaded_bytes() as f64 / 1e6,
                    layers.total_bytes() as f64 / 1e6
                );
                self.progress("pull", &text, None);
            }
            Ok(())
        };
        self.client.pull(&self.image, None, &mut each).await
    }

    /// Docker health `healthy`, or running for 5 s without a healthcheck; 60 s at most (spec 3.8.3).
    async fn wait_healthy(&self, id: &str) -> Result<(), Failed> {
        let stage = "health";
        let started = Instant::now();
        loop {
            let v = self.client.inspect_value(id).await.map_err(at(stage))?;
            let state = v.get("State").cloned().unwrap_or(Value::Null);
            let status = state.get("Status").and_then(Value::as_str).unwrap_or("");
            let health = state.pointer("/Health/Status").and_then(Value::as_str);
            if status != "running" {
                let code = state.get("ExitCode").and_then(Value::as_i64).unwrap_or(0);
                return Err(Failed {
                    stage,
                    text: format!("the new agent container is {status} (exit code {code})"),
                });
            }
            match health {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => {
                    return Err(Failed {
                        stage,
                        text: "the new agent container's healthcheck reports unhealthy".into(),
                    })
                }
                None if started.elapsed() >= Duration::from_secs(SELF_UPDATE_NO_HEALTHCHECK_S) => {
                    return Ok(())
                }
                _ => {}
            }
            if started.elapsed() >= Duration::from_secs(SELF_UPDATE_HEALTH_TIMEOUT_S) {
                return Err(Failed {
                    stage,
                    text: format!(
                        "the new agent container was not healthy within {SELF_UPDATE_HEALTH_TIMEOUT_S} s"
                    ),
                });
            }
            Timer::after(Duration::from_millis(UPDATE_HEALTH_POLL_MS)).await;
        }
    }
}

/// Writes `cleanup.json` with mode 0600 (temp file, then rename).
pub fn write_cleanup(dir: &Path, c: &Cleanup) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = dir.join(".cleanup.json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    // Serializing five strings cannot fail.
    f.write_all(&serde_json::to_vec(c).unwrap_or_default())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(CLEANUP_FILE))
}

/// Parses `cleanup.json`.
pub fn parse_cleanup(bytes: &[u8]) -> Result<Cleanup, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid {CLEANUP_FILE}: {e}"))
}

/// What a starting agent does with a `cleanup.json`.
#[derive(Debug, PartialEq, Eq)]
pub enum Role {
    /// We are the replacement: remove the old container and take its name.
    New,
    /// We are the container being replaced (it restarted during the update): leave the file to the
    /// update in progress.
    Old,
    /// Neither (a stale file, or not in a container): delete it.
    Stale,
}

/// Who we are in `c`, from our short container ID.
pub fn role(c: &Cleanup, own: Option<&str>) -> Role {
    match own {
        Some(id) if !id.is_empty() && c.new_container_id.starts_with(id) => Role::New,
        Some(id) if !id.is_empty() && c.old_container_id.starts_with(id) => Role::Old,
        _ => Role::Stale,
    }
}

/// Startup half of the container self-update (spec 1.3 step 5): if `DATA_PATH/cleanup.json` names us
/// as the replacement, waits until this agent is registered with DockMon, then stops and removes the
/// old container, renames ours to `original_name` and deletes the file.
///
/// Also the connected half of the native self-update ([`native::spawn_trial`]).
pub fn spawn_cleanup(ctx: &Context) {
    native::spawn_trial(ctx);
    let path = ctx.config.data_path.join(CLEANUP_FILE);
    let bytes = {
        use std::io::Read;
        let Ok(f) = std::fs::File::open(&path) else {
            return;
        };
        let mut bytes = Vec::new();
        if let Err(e) = f
            .take(SELF_UPDATE_CLEANUP_MAX_BYTES as u64)
            .read_to_end(&mut bytes)
        {
            log::warn!("cannot read {}: {e}", path.display());
            return;
        }
        bytes
    };
    let c = match parse_cleanup(&bytes) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("{e}; deleting it");
            let _ = std::fs::remove_file(&path);
            return;
        }
    };
    let mode = identity::detect_mode(
        Path::new("/proc"),
        std::env::var("HOSTNAME").ok().as_deref(),
    );
    match role(&c, mode.container_id()) {
        Role::Old => {
            log::warn!("{CLEANUP_FILE}: a self-update to container {} is in progress; leaving it to that update", short_id(&c.new_container_id));
            return;
        }
        Role::Stale => {
            log::warn!(
                "{CLEANUP_FILE} names neither this container nor its predecessor; deleting it"
            );
            let _ = std::fs::remove_file(&path);
            return;
        }
        Role::New => {}
    }
    let client = ctx.client.clone();
    let link = ctx.link.clone();
    ctx.ex
        .spawn(async move {
            while !link.is_connected() {
                Timer::after(Duration::from_millis(UPDATE_HEALTH_POLL_MS)).await;
            }
            log::info!(
                "self-update: connected; removing the old agent container {} and taking the name {}",
                short_id(&c.old_container_id),
                c.original_name
            );
            if let Err(e) = client.stop(&c.old_container_id, SELF_UPDATE_OLD_STOP_S).await {
                if !e.is_not_found() {
                    log::warn!("self-update: stopping the old container: {}", docker_text(&e));
                }
            }
            if let Err(e) = client.remove(&c.old_container_id, true).await {
                if !e.is_not_found() {
                    log::warn!("self-update: removing the old container: {}", docker_text(&e));
                }
            }
            if let Err(e) = client.rename(&c.new_container_id, &c.original_name).await {
                log::warn!(
                    "self-update: renaming this container to {}: {}",
                    c.original_name,
                    docker_text(&e)
                );
            }
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("self-update: deleting {}: {e}", path.display());
            }
            log::info!("self-update complete: running as {}", c.original_name);
        })
        .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_compare_without_tag_digest_and_hub_defaults() {
        assert_eq!(repository("nginx"), "docker.io/library/nginx");
        assert_eq!(
            repository("docker.io/library/nginx:1.2"),
            "docker.io/library/nginx"
        );
        assert_eq!(repository("nginx@sha256:abc"), "docker.io/library/nginx");
        assert_eq!(
            repository("127.0.0.1:5000/dmt/agent:v2"),
            "127.0.0.1:5000/dmt/agent"
        );
        assert_eq!(repository("GHCR.io/Me/Agent:1"), "ghcr.io/me/agent");
        assert_eq!(repository("me/agent:1"), "docker.io/me/agent");
        assert!(check_repository("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v2").is_ok());
        let e = check_repository(
            "ghcr.io/dockmon-agent/dockmon-agent:0.3",
            "ghcr.io/darthnorse/dockmon-agent:1.1.2",
        )
        .unwrap_err();
        assert!(e.contains("ghcr.io/darthnorse/dockmon-agent"), "{e}");
        assert!(check_repository("sha256:abcd", "x:1").is_err());
        assert!(check_repository("", "x:1").is_err());
    }

    #[test]
    fn cleanup_round_trips_and_names_roles() {
        let c = Cleanup {
            old_container_id: "aaaaaaaaaaaa1111".into(),
            old_container_name: "agent".into(),
            new_container_id: "bbbbbbbbbbbb2222".into(),
            temp_name: "agent-update".into(),
            original_name: "agent".into(),
        };
        let text = serde_json::to_vec(&c).unwrap();
        assert_eq!(parse_cleanup(&text).unwrap(), c);
        assert!(parse_cleanup(b"{}").is_err());
        assert_eq!(role(&c, Some("bbbbbbbbbbbb")), Role::New);
        assert_eq!(role(&c, Some("aaaaaaaaaaaa")), Role::Old);
        assert_eq!(role(&c, Some("cccccccccccc")), Role::Stale);
        assert_eq!(role(&c, None), Role::Stale);
    }

    #[test]
    fn cleanup_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dmt-selfupdate-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Cleanup {
            old_container_id: "a".into(),
            old_container_name: "n".into(),
            new_container_id: "b".into(),
            temp_name: "n-update".into(),
            original_name: "n".into(),
        };
        write_cleanup(&dir, &c).unwrap();
        let meta = std::fs::metadata(dir.join(CLEANUP_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn payloads_parse() {
        let raw = RawValue::from_string(
            r#"{"image":"x:2","version":"2","binary_url":"https://e/x","checksum":null}"#.into(),
        )
        .unwrap();
        let p = parse_payload(Some(&raw)).unwrap();
        assert_eq!(p.image.as_deref(), Some("x:2"));
        assert!(p.checksum.is_none());
        let bad = RawValue::from_string("[1]".into()).unwrap();
        assert!(parse_payload(Some(&bad)).is_err());
    }
}
