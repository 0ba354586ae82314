//! `deploy_compose` (spec 3.8.4): the reply at once, then the deployment detached on the
//! executor, reporting `deploy_progress` events and one final `deploy_complete`.
//!
//! Files: `compose_content` is written to `$AGENT_STACKS_DIR/<project>/docker-compose.yml`, every
//! `env_files` entry beside it (the legacy `env_file_content` as `.env` when `env_files` is
//! empty). Env file names are plain file names: a `/` or a `..` is refused, so a payload cannot
//! write outside the project directory. Interpolation takes its variables from those env files
//! (`.env` first, then the others by name; later ones win) and never from the agent's own
//! environment, which holds its tokens.
use super::context::{Context, Sink};
use super::msg;
use crate::compose::model::{self, Input};
use crate::compose::plan::Where;
use crate::compose::{hostdir, interp, up};
use crate::docker::Client;
use crate::limits::{
    COMPOSE_ENV_FILES_MAX, COMPOSE_FILE_MAX_BYTES, COMPOSE_HEALTH_TIMEOUT_DEFAULT_S,
    COMPOSE_HEALTH_TIMEOUT_MAX_S, COMPOSE_MOUNTINFO_LINE_MAX_BYTES, COMPOSE_MOUNTINFO_MAX_BYTES,
};
use crate::outbox::Class;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// The compose file's name in the project directory.
pub const COMPOSE_FILE_NAME: &str = "docker-compose.yml";

/// The payload of spec 3.8.4.
#[derive(Deserialize, Default)]
pub struct Payload {
    /// `<host_id>:<id>`, echoed in every event.
    #[serde(default)]
    pub deployment_id: String,
    /// The project name.
    #[serde(default)]
    pub project_name: String,
    /// The compose file.
    #[serde(default)]
    pub compose_content: String,
    /// Legacy single env file (`.env`).
    #[serde(default)]
    pub env_file_content: Option<String>,
    /// File name → content; takes precedence over `env_file_content`.
    #[serde(default)]
    pub env_files: Option<BTreeMap<String, String>>,
    /// `up`, `down` or `restart`.
    #[serde(default)]
    pub action: String,
    /// `down`: remove named and anonymous volumes.
    #[serde(default)]
    pub remove_volumes: bool,
    /// Active profiles.
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    /// Recreate unchanged services too.
    #[serde(default)]
    pub force_recreate: bool,
    /// Pull every image before `up` (a missing one is pulled anyway).
    #[serde(default)]
    pub pull_images: bool,
    /// Wait for healthchecks at the end.
    #[serde(default)]
    pub wait_for_healthy: bool,
    /// Seconds to wait for health.
    #[serde(default)]
    pub health_timeout: Option<f64>,
    /// Credentials by registry (spec 3.8.2). Never logged.
    #[serde(default)]
    pub registry_credentials: Option<Vec<RegistryCredential>>,
}

/// One `registry_credentials` entry. No `Debug`: it holds a password.
#[derive(Deserialize, Default)]
pub struct RegistryCredential {
    /// `ghcr.io`, `https://registry.example.com`, `docker.io`, ….
    #[serde(default)]
    pub registry_url: String,
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password or token.
    #[serde(default)]
    pub password: String,
}

/// The payload's credentials as the engine wants them (`X-Registry-Auth` by registry).
pub fn credentials_of(p: &Payload) -> Vec<up::Credential> {
    p.registry_credentials
        .iter()
        .flatten()
        .map(|c| up::Credential {
            registry: up::normalize_registry(&c.registry_url),
            auth: crate::docker::pull::registry_auth(&c.username, &c.password),
        })
        .collect()
}

#[derive(Serialize)]
struct ProgressEvent<'a> {
    deployment_id: &'a str,
    stage: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct ServiceOut<'a> {
    container_id: &'a str,
    container_name: &'a str,
    image: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    restart_policy: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    exit_code: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `services`: name → result, straight from the results (no map is built).
struct Services<'a>(&'a [up::ServiceResult]);

impl Services<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Services<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for r in self.0 {
            m.serialize_entry(
                &r.name,
                &ServiceOut {
                    container_id: &r.container_id,
                    container_name: &r.container_name,
                    image: &r.image,
                    status: &r.status,
                    restart_policy: &r.restart_policy,
                    error: &r.error,
                    exit_code: r.exit_code,
                },
            )?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Complete<'a> {
    deployment_id: &'a str,
    action: &'a str,
    success: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial_success: bool,
    #[serde(skip_serializing_if = "Services::is_empty")]
    services: Services<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed_services: Vec<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
}

/// Everything the detached task needs (owned).
struct Job {
    client: Rc<Client>,
    sink: Rc<dyn Sink>,
    stacks_dir: PathBuf,
    host_stacks_dir: Option<PathBuf>,
    p: Payload,
}

/// Answers `deploy_compose`: `{"status":"deployment_started"}` into `out` and the deployment
/// spawned on `ctx.ex`. A payload that is not the spec's JSON gets an error reply (spec 3.3).
pub async fn deploy_compose(
    ctx: &Context,
    payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let now = msg::now_stamp();
    let p: Payload = match payload.map(|p| serde_json::from_str::<Payload>(p.get())) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return msg::write_response_error(
                out,
                id,
                &format!("invalid deploy_compose payload: {e}"),
                &now,
            )
        }
        None => {
            return msg::write_response_error(
                out,
                id,
                "invalid deploy_compose payload: missing",
                &now,
            )
        }
    };
    let job = Job {
        client: ctx.client.clone(),
        sink: ctx.sink.clone(),
        stacks_dir: ctx.config.stacks_dir.clone(),
        host_stacks_dir: ctx.config.host_stacks_dir.clone(),
        p,
    };
    // Boxed: the deployment's state machine is then polled through its own function, which stays
    // in this (cold) module instead of being inlined into the executor's task poll in hot text.
    let task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> = Box::pin(run(job));
    ctx.ex.spawn(task).detach();
    msg::begin_response(out, id);
    out.extend_from_slice(br#"{"status":"deployment_started"}"#);
    msg::end_response(out, &now);
}

fn progress(sink: &dyn Sink, deployment_id: &str, stage: &str, message: &str) {
    let mut frame = sink.buffer();
    frame.clear();
    msg::write_event(
        &mut frame,
        "deploy_progress",
        ProgressEvent {
            deployment_id,
            stage,
            message,
        },
        &msg::now_stamp(),
    );
    sink.send(Class::Event, frame);
}

async fn run(job: Job) {
    let id = job.p.deployment_id.clone();
    let sink = job.sink.clone();
    progress(
        &*sink,
        &id,
        "starting",
        &format!("Starting {} of {}", job.p.action, job.p.project_name),
    );
    let result = deploy(&job).await;
    let (results, error) = match result {
        Ok(r) => (r, String::new()),
        Err(e) => (Vec::new(), e),
    };
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.error.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    let ok_count = results.len() - failed.len();
    let success = error.is_empty() && failed.is_empty();
    let partial = error.is_empty() && !failed.is_empty() && ok_count > 0;
    let error_text = if !error.is_empty() {
        error.clone()
    } else if !failed.is_empty() {
        format!(
            "{} of {} services failed: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        )
    } else {
        String::new()
    };
    // The outcome in the agent's own log too: a deployment outlives a lost DockMon connection,
    // and its events may never reach the user (issue 17, fault matrix).
    if success {
        log::info!(
            "deploy_compose {id} ({}): completed, {} service(s)",
            job.p.action,
            results.len()
        );
        progress(&*sink, &id, "completed", "Deployment completed");
    } else {
        log::warn!(
            "deploy_compose {id} ({}): failed: {error_text}",
            job.p.action
        );
        progress(&*sink, &id, "failed", &error_text);
    }
    let mut frame = sink.buffer();
    frame.clear();
    msg::write_event(
        &mut frame,
        "deploy_complete",
        Complete {
            deployment_id: &id,
            action: &job.p.action,
            success,
            partial_success: partial,
            services: Services(&results),
            failed_services: failed.clone(),
            error: &error_text,
        },
        &msg::now_stamp(),
    );
    sink.send(Class::Event, frame);
}

/// Whether `name` is a plain file name we may write in the project directory.
pub fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255
}

/// The env files of a payload, `.env` first, then the others by name.
pub fn env_files_of(p: &Payload) -> Result<Vec<(String, String)>, String> {
    let mut files: Vec<(String, String)> = match &p.env_files {
        Some(m) if !m.is_empty() => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => match &p.env_file_content {
            Some(c) if !c.is_empty() => vec![(".env".into(), c.clone())],
            _ => Vec::new(),
        },
    };
    if files.len() > COMPOSE_ENV_FILES_MAX {
        return Err(format!(
            "{} env files, more than {COMPOSE_ENV_FILES_MAX}",
            files.len()
        ));
    }
    for (name, content) in &files {
        if !safe_file_name(name) {
            return Err(format!("env file name {name:?} is not a plain file name"));
        }
        if content.len() > COMPOSE_FILE_MAX_BYTES {
            return Err(format!(
                "env file {name} is larger than {COMPOSE_FILE_MAX_BYTES} bytes"
            ));
        }
    }
    crate::compose::sort_by(&mut files, &|a, b| {
        (a.0 != ".env", &a.0) < (b.0 != ".env", &b.0)
    });
    Ok(files)
}

fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), String> {
    let tmp = path.with_extension("tmp-dockmon");
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.map_err(|e| format!("failed to write {}: {e}", path.display()))
}

/// `HOST_STACKS_DIR` when it is not set (spec 1.1): from `/proc/self/mountinfo`
/// (`compose::hostdir`), and only in a container (`/.dockerenv`, Podman's `/run/.containerenv`):
/// a native agent already sees the engine's paths.
fn discover_host_stacks_dir(stacks_dir: &Path) -> Option<PathBuf> {
    use std::io::{BufRead, Read};
    if !Path::new("/.dockerenv").exists() && !Path::new("/run/.containerenv").exists() {
        return None;
    }
    // Streamed a line at a time (`hostdir::Finder`): the file can be hundreds of KiB.
    let file = std::fs::File::open("/proc/self/mountinfo").ok()?;
    let mut reader = std::io::BufReader::with_capacity(
        COMPOSE_MOUNTINFO_LINE_MAX_BYTES,
        file.take(COMPOSE_MOUNTINFO_MAX_BYTES as u64),
    );
    let mut finder = hostdir::Finder::new(stacks_dir)?;
    let mut line = Vec::new();
    // Set while the rest of a line longer than the cap is skipped (mount paths are far shorter; such
    // a line is an overlay mount's option list).
    let mut skipping = false;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(COMPOSE_MOUNTINFO_LINE_MAX_BYTES as u64)
            .read_until(b'\n', &mut line)
            .ok()?;
        if n == 0 {
            break;
        }
        let whole = line.last() == Some(&b'\n');
        if !skipping && whole {
            finder.line(String::from_utf8_lossy(&line[..n - 1]).as_ref());
        }
        skipping = !whole;
    }
    let found = finder.finish();
    log::debug!(
        "HOST_STACKS_DIR from mountinfo for {}: {:?}",
        stacks_dir.display(),
        found
    );
    found
}

async fn deploy(job: &Job) -> Result<Vec<up::ServiceResult>, String> {
    let p = &job.p;
    let project = model::normalize_project_name(&p.project_name)
        .filter(|n| *n == p.project_name)
        .ok_or_else(|| {
            format!(
                "invalid project name {:?}: use lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                p.project_name
            )
        })?;
    let progress =
        |stage: &str, message: &str| progress(&*job.sink, &p.deployment_id, stage, message);
    let mut report = progress;
    match p.action.as_str() {
        "down" => return up::down(&job.client, &project, p.remove_volumes, &mut report).await,
        "restart" => return up::restart(&job.client, &project, &mut report).await,
        "up" => {}
        other => return Err(format!("unknown action {other:?} (up, down or restart)")),
    }
    report("validating", "Validating the compose file");
    if p.compose_content.len() > COMPOSE_FILE_MAX_BYTES {
        return Err(format!(
            "compose file is larger than {COMPOSE_FILE_MAX_BYTES} bytes"
        ));
    }
    let env_files = env_files_of(p)?;
    let mut vars: Vec<(String, String)> = Vec::new();
    for (name, content) in &env_files {
        let pairs = interp::parse_env_file(content)
            .map_err(|line| format!("env file {name}, line {line}: not KEY=VALUE"))?;
        vars.extend(pairs);
    }
    let dir = job.stacks_dir.join(&project);
    // Relative bind sources name the host's path of the project directory (spec 1.1).
    let host_dir = match job
        .host_stacks_dir
        .clone()
        .or_else(|| discover_host_stacks_dir(&job.stacks_dir))
    {
        Some(h) => h.join(&project),
        None => dir.clone(),
    };
    let host_dir_text = host_dir.to_string_lossy().into_owned();
    report("parsing", "Parsing the compose file");
    let profiles = p.profiles.clone().unwrap_or_default();
    let mem_env: &[(String, String)] = &env_files;
    let read_env = |rel: &str| -> Result<Option<Vec<(String, String)>>, String> {
        // An env file delivered in this payload is read from it; others from the directory.
        let content = match mem_env
            .iter()
            .find(|(n, _)| n == rel || format!("./{n}") == rel)
        {
            Some((_, c)) => c.clone(),
            None => {
                let path = if rel.starts_with('/') {
                    PathBuf::from(rel)
                } else {
                    dir.join(rel)
                };
                match std::fs::metadata(&path) {
                    Err(_) => return Ok(None),
                    Ok(m) if m.len() > COMPOSE_FILE_MAX_BYTES as u64 => {
                        return Err(format!(
                            "env file {rel} is larger than {COMPOSE_FILE_MAX_BYTES} bytes"
                        ))
                    }
                    Ok(_) => {}
                }
                std::fs::read_to_string(&path).map_err(|e| format!("env file {rel}: {e}"))?
            }
        };
        interp::parse_env_file(&content)
            .map(Some)
            .map_err(|line| format!("env file {rel}, line {line}: not KEY=VALUE"))
    };
    let parsed = model::load(
        &p.compose_content,
        &Input {
            project: &project,
            vars: &vars,
            profiles: &profiles,
            project_dir: &host_dir_text,
            read_env_file: &read_env,
        },
    )
    .map_err(|e| format!("invalid compose file: {e}"))?;
    // Valid: write the files (the project directory keeps relative binds stable, spec 1.2).
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    write_file(&dir.join(COMPOSE_FILE_NAME), &p.compose_content, 0o644)?;
    for (name, content) in &env_files {
        write_file(&dir.join(name), content, 0o600)?;
    }
    let config_file = format!("{}/{COMPOSE_FILE_NAME}", host_dir_text);
    let secs = p
        .health_timeout
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| (t as u64).min(COMPOSE_HEALTH_TIMEOUT_MAX_S))
        .unwrap_or(COMPOSE_HEALTH_TIMEOUT_DEFAULT_S);
    let req = up::Up {
        project: &parsed,
        at: Where {
            working_dir: &host_dir_text,
            config_file: &config_file,
        },
        force_recreate: p.force_recreate,
        wait_for_healthy: p.wait_for_healthy,
        health_timeout: Duration::from_secs(secs),
        pull_images: p.pull_images,
        credentials: &credentials_of(p),
    };
    up::up(&job.client, &req, &mut report).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_plain_names_dotenv_first() {
        let mut p = Payload {
            env_files: Some(BTreeMap::from([
                ("b.env".to_string(), "B=1".to_string()),
                (".env".to_string(), "A=1".to_string()),
            ])),
            env_file_content: Some("IGNORED=1".into()),
            ..Default::default()
        };
        let f = env_files_of(&p).unwrap();
        assert_eq!(f[0].0, ".env");
        assert_eq!(f[1].0, "b.env");
        p.env_files = None;
        assert_eq!(
            env_files_of(&p).unwrap(),
            [(".env".to_string(), "IGNORED=1".to_string())]
        );
        for bad in ["../x", "a/b", "..", ""] {
            p.env_files = Some(BTreeMap::from([(bad.to_string(), String::new())]));
            assert!(env_files_of(&p).is_err(), "{bad}");
        }
    }
}
