//! The Docker calls of a deployment: `up` (networks, volumes, then containers in dependency order,
//! each gated on its dependencies' `condition`), `down` and `restart`, over our own client.
//!
//! Policy: a service whose container carries the same config hash is left as it is (started if it
//! was stopped); a changed one, or any with `force_recreate`, is stopped, removed and created
//! again. A service that fails is recorded with its error and the others go on, unless they depend
//! on it (then they fail too, naming the dependency): the caller reports `partial_success`.
//! `down` and `restart` work from the labels alone (`com.docker.compose.project`), so they need no
//! compose file and also find what an older file created.
//!
//! Images: before any container, every image of the active services is looked up; one missing
//! on the host is pulled (as compose does), and with `pull_images` every one is pulled, with the
//! `X-Registry-Auth` of the matching `registry_credentials` entry. A pull that fails fails the
//! services using that image (their error names the image and carries the engine's message), the
//! others go on; with `pull_images`, an image the host already has is used when its pull fails
//! (a locally built or tagged image, a registry that is down), with a progress message saying so.
//! A container whose image ID is no longer the tag's is recreated, as compose v2 does after a pull.
use super::json::Json;
use super::model::{Condition, Project, Resource};
use super::plan::{self, Where, LABEL_HASH, LABEL_PROJECT, LABEL_SERVICE};
use crate::docker::pull::{Layers, Throttle};
use crate::docker::{Client, Error};
use crate::http::request::push_encoded;
use crate::limits::{
    COMPOSE_CALL_BODY_MAX_BYTES, COMPOSE_LIST_BODY_MAX_BYTES, COMPOSE_POLL_MS, OP_TIMEOUT_MS,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The outcome of one service (spec 3.8.4 `services.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceResult {
    /// The service.
    pub name: String,
    /// Short (12) container ID, empty when none was created.
    pub container_id: String,
    /// The container's name.
    pub container_name: String,
    /// The image.
    pub image: String,
    /// Docker's state (`running`, `exited`, …) or `failed`.
    pub status: String,
    /// Restart policy name.
    pub restart_policy: String,
    /// Why it failed.
    pub error: String,
    /// Exit code of an exited container.
    pub exit_code: i64,
}

/// What `up` is asked to do.
pub struct Up<'a> {
    /// The validated project.
    pub project: &'a Project,
    /// Labels' paths.
    pub at: Where<'a>,
    /// Recreate every container even when its hash did not change.
    pub force_recreate: bool,
    /// Wait for every service with a healthcheck to be healthy at the end.
    pub wait_for_healthy: bool,
    /// How long `depends_on: service_healthy` and `wait_for_healthy` wait.
    pub health_timeout: Duration,
    /// Pull every image, not only the missing ones.
    pub pull_images: bool,
    /// Registry credentials (spec 3.8.2).
    pub credentials: &'a [Credential],
}

/// One `registry_credentials` entry, ready for the engine. No `Debug`: it holds a password.
pub struct Credential {
    /// The registry host as [`registry_of`] names it (`docker.io` for Docker Hub).
    pub registry: String,
    /// The `X-Registry-Auth` value.
    pub auth: String,
}

/// The registry a reference pulls from: its first path component when that names a host (has a
/// `.` or a `:`, or is `localhost`, Docker's rule), else `docker.io`.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((host, _)) if host.contains(['.', ':']) || host == "localhost" => host,
        _ => "docker.io",
    }
}

/// A `registry_url` as [`registry_of`] names it: scheme, path and trailing `/` dropped, Docker
/// Hub's aliases folded to `docker.io` (as DockMon's Go agent folds them).
pub fn normalize_registry(url: &str) -> String {
    let u = url.trim();
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .unwrap_or(u);
    let host = u.split('/').next().unwrap_or("");
    match host {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => "docker.io".into(),
        h => h.to_ascii_lowercase(),
    }
}

/// Progress: `(stage, message)` (spec 3.8.4 stage names).
pub type Progress<'a> = &'a mut dyn FnMut(&str, &str);

/// A whole-deployment failure (nothing more can be done), or per-service results.
pub type Outcome = Result<Vec<ServiceResult>, String>;

fn text(e: &Error) -> String {
    match e {
        Error::Status { message, .. } | Error::Stream { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn enc(v: &str) -> String {
    let mut s = String::new();
    push_encoded(&mut s, v);
    s
}

async fn call_json(
    client: &Client,
    method: &'static str,
    target: &str,
    body: Option<&[u8]>,
) -> Result<Value, Error> {
    let mut out = Vec::new();
    client
        .call(
            method,
            target,
            body.map(|b| ("application/json", b)),
            &mut out,
            COMPOSE_CALL_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await?;
    if out.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out).map_err(|e| Error::Json {
        call: format!("{method} {target}"),
        message: e.to_string(),
    })
}

/// A container of the project as `GET /containers/json` lists it.
#[derive(Debug, Clone)]
pub struct Existing {
    /// Full ID.
    pub id: String,
    /// Name without `/`.
    pub name: String,
    /// `running`, `exited`, ….
    pub state: String,
    /// Label `com.docker.compose.service`.
    pub service: String,
    /// Label `com.docker.compose.config-hash`.
    pub hash: String,
    /// The image ID it runs.
    pub image_id: String,
}

/// `{"label":["com.docker.compose.project=<project>"]}`, URL-encoded.
fn project_filter(project: &str) -> String {
    let mut f = Vec::new();
    Json::new(&mut f)
        .open()
        .key("label")
        .open_list()
        .str(&format!("{LABEL_PROJECT}={project}"))
        .close_list()
        .close();
    enc(&String::from_utf8_lossy(&f))
}

/// Every container (all states) labelled with `project`.
pub async fn list_project(client: &Client, project: &str) -> Result<Vec<Existing>, Error> {
    let target = format!("/containers/json?all=1&filters={}", project_filter(project));
    let mut out = Vec::new();
    client
        .call(
            "GET",
            &target,
            None,
            &mut out,
            COMPOSE_LIST_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await?;
    let list: Vec<Value> = serde_json::from_slice(&out).map_err(|e| Error::Json {
        call: "GET /containers/json".into(),
        message: e.to_string(),
    })?;
    Ok(list
        .iter()
        .map(|c| {
            let label = |k: &str| c["Labels"][k].as_str().unwrap_or("").to_string();
            Existing {
                id: c["Id"].as_str().unwrap_or("").to_string(),
                name: c["Names"][0]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
                state: c["State"].as_str().unwrap_or("").to_string(),
                service: label(LABEL_SERVICE),
                hash: label(LABEL_HASH),
                image_id: c["ImageID"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect())
}

async fn ensure_networks(
    client: &Client,
    p: &Project,
    progress: Progress<'_>,
) -> Result<(), String> {
    if !p.networks.is_empty() {
        progress("creating_networks", "Creating networks");
    }
    for n in &p.networks {
        ensure(client, "network", n, || plan::network_body(&p.name, n)).await?;
    }
    Ok(())
}

async fn ensure_volumes(
    client: &Client,
    p: &Project,
    progress: Progress<'_>,
) -> Result<(), String> {
    if !p.volumes.is_empty() {
        progress("creating_volumes", "Creating volumes");
    }
    for v in &p.volumes {
        ensure(client, "volume", v, || plan::volume_body(&p.name, v)).await?;
    }
    Ok(())
}

/// Makes sure the `kind` ("network" or "volume") named by `r` exists: left as it is when Docker has
/// it, refused when it is external and missing, else created from `body`.
async fn ensure(
    client: &Client,
    kind: &str,
    r: &Resource,
    body: impl FnOnce() -> Vec<u8>,
) -> Result<(), String> {
    let target = format!("/{kind}s/{}", enc(&r.name));
    match call_json(client, "GET", &target, None).await {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(format!("{kind} {}: {}", r.name, text(&e))),
    }
    if r.external {
        return Err(format!(
            "{kind} {} declared as external, but could not be found",
            r.name
        ));
    }
    call_json(
        client,
        "POST",
        &format!("/{kind}s/create"),
        Some(&body()[..]),
    )
    .await
    .map_err(|e| format!("failed to create {kind} {}: {}", r.name, text(&e)))?;
    Ok(())
}

/// Inspect → (status, health status or "", exit code, restart policy).
async fn state(client: &Client, id: &str) -> Result<(String, String, i64, String), Error> {
    let mut out = Vec::new();
    client.inspect_raw(id, &mut out).await?;
    let v: Value = serde_json::from_slice(&out).map_err(|e| Error::Json {
        call: "GET /containers/{id}/json".into(),
        message: e.to_string(),
    })?;
    Ok((
        v["State"]["Status"].as_str().unwrap_or("").to_string(),
        v["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        v["State"]["ExitCode"].as_i64().unwrap_or(0),
        v["HostConfig"]["RestartPolicy"]["Name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    ))
}

/// Waits for `cond` on container `id` (of service `name`) until `deadline`.
async fn wait_for(
    client: &Client,
    name: &str,
    id: &str,
    cond: Condition,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        let (status, health, code, _) = state(client, id)
            .await
            .map_err(|e| format!("dependency {name}: {}", text(&e)))?;
        match cond {
            Condition::Started => return Ok(()),
            Condition::Healthy => match health.as_str() {
                "healthy" => return Ok(()),
                "unhealthy" => return Err(format!("dependency {name} is unhealthy")),
                "" => return Err(format!("dependency {name} has no healthcheck")),
                _ if status == "exited" || status == "dead" => {
                    return Err(format!("dependency {name} exited with code {code}"))
                }
                _ => {}
            },
            Condition::CompletedSuccessfully => {
                if status == "exited" || status == "dead" {
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(format!("dependency {name} exited with code {code}"))
                    };
                }
            }
        }
        if Instant::now() >= deadline {
            let what = match cond {
                Condition::Healthy => "healthy",
                _ => "completed",
            };
            return Err(format!("timed out waiting for {name} to be {what}"));
        }
        async_io::Timer::after(Duration::from_millis(COMPOSE_POLL_MS)).await;
    }
}

async fn remove_container(client: &Client, id: &str, volumes: bool) -> Result<(), Error> {
    let target = format!(
        "/containers/{}?force=1{}",
        enc(id),
        if volumes { "&v=1" } else { "" }
    );
    match call_json(client, "DELETE", &target, None).await {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()),
    }
}

/// `up`: see the module doc.
pub async fn up(client: &Client, req: &Up<'_>, progress: Progress<'_>) -> Outcome {
    let p = req.project;
    ensure_networks(client, p, progress).await?;
    ensure_volumes(client, p, progress).await?;
    let existing = list_project(client, &p.name)
        .await
        .map_err(|e| format!("failed to list the project's containers: {}", text(&e)))?;
    let images = images(client, req, progress).await;
    let mut results: Vec<ServiceResult> = Vec::new();
    let mut ids: Vec<(String, String)> = Vec::new();
    let health_deadline = Instant::now() + req.health_timeout;
    for i in plan::start_order(p) {
        let s = &p.services[i];
        let name = plan::container_name(&p.name, s);
        let mut r = ServiceResult {
            name: s.name.clone(),
            container_name: name.clone(),
            image: s.image.clone(),
            status: "failed".into(),
            ..Default::default()
        };
        let image = images
            .iter()
            .find(|(n, _)| *n == s.image)
            .map(|(_, r)| r.as_deref().map_err(String::as_str))
            .unwrap_or(Ok(""));
        match up_one(
            client,
            req,
            i,
            image,
            &existing,
            &ids,
            &results,
            health_deadline,
            progress,
        )
        .await
        {
            Ok(id) => {
                r.container_id = id.chars().take(12).collect();
                match state(client, &id).await {
                    Ok((status, _, code, policy)) => {
                        r.status = status;
                        r.exit_code = code;
                        r.restart_policy = policy;
                    }
                    Err(e) => r.error = text(&e),
                }
                ids.push((s.name.clone(), id));
            }
            Err(e) => r.error = e,
        }
        results.push(r);
    }
    if req.wait_for_healthy {
        progress("health_check", "Waiting for services to be healthy");
        for s in &p.services {
            if s.healthcheck
                .as_ref()
                .is_some_and(|h| h.test.first().map(String::as_str) == Some("NONE"))
            {
                continue;
            }
            let Some((_, id)) = ids.iter().find(|(n, _)| *n == s.name) else {
                continue;
            };
            let Ok((_, health, _, _)) = state(client, id).await else {
                continue;
            };
            if health.is_empty() {
                continue;
            }
            if let Err(e) = wait_for(client, &s.name, id, Condition::Healthy, health_deadline).await
            {
                if let Some(r) = results.iter_mut().find(|r| r.name == s.name) {
                    r.error = e.replace("dependency ", "service ");
                    r.status = "unhealthy".into();
                }
            }
        }
    }
    Ok(results)
}

/// The ID of image `reference` on the host, `None` when it is not there.
async fn image_id(client: &Client, reference: &str) -> Result<Option<String>, Error> {
    let mut out = Vec::new();
    let target = format!("/images/{}/json", enc(reference));
    match client
        .call(
            "GET",
            &target,
            None,
            &mut out,
            COMPOSE_LIST_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    }
    #[derive(serde::Deserialize)]
    struct Image<'a> {
        #[serde(rename = "Id", borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    let image: Image<'_> = serde_json::from_slice(&out).map_err(|e| Error::Json {
        call: "GET /images/{name}/json".into(),
        message: e.to_string(),
    })?;
    Ok(Some(image.id.into_owned()))
}

/// Pulls `reference` with the credentials of its registry, reporting `pulling_image` progress
/// (throttled as the update's layer events, spec 3.8.1).
async fn pull(
    client: &Client,
    reference: &str,
    credentials: &[Credential],
    progress: Progress<'_>,
) -> Result<(), Error> {
    let registry = registry_of(reference);
    let auth = credentials
        .iter()
        .find(|c| c.registry == registry)
        .map(|c| c.auth.as_str());
    progress("pulling_image", &format!("Pulling image {reference}"));
    let started = Instant::now();
    let mut layers = Layers::new();
    let mut throttle = Throttle::default();
    let mut each = |line: &crate::docker::pull::Line<'_>| {
        let applied = layers.apply(line);
        let now_ms = started.elapsed().as_millis() as u64;
        if throttle.due(now_ms, layers.overall(), applied.completed) {
            let total = layers.layers().len();
            progress(
                "pulling_image",
                &format!(
                    "Pulling image {reference}: {}% ({} of {total} layers done)",
                    layers.overall(),
                    total - layers.remaining()
                ),
            );
        }
        Ok(())
    };
    client.pull(reference, auth, &mut each).await?;
    progress("pulling_image", &format!("Pulled image {reference}"));
    Ok(())
}

/// Every distinct image of the active services → its ID on the host, pulled first when missing
/// or when `pull_images` asks for it; or why it is not available (the error of its services).
async fn images(
    client: &Client,
    req: &Up<'_>,
    progress: Progress<'_>,
) -> Vec<(String, Result<String, String>)> {
    let mut out: Vec<(String, Result<String, String>)> = Vec::new();
    for s in &req.project.services {
        if out.iter().any(|(n, _)| *n == s.image) {
            continue;
        }
        let reference = s.image.as_str();
        let have = if req.pull_images {
            Ok(None)
        } else {
            image_id(client, reference).await
        };
        let result = match have {
            Ok(Some(id)) => Ok(id),
            Ok(None) => match pull(client, reference, req.credentials, progress).await {
                Ok(()) => match image_id(client, reference).await {
                    Ok(Some(id)) => Ok(id),
                    Ok(None) => Err(format!("image {reference} is missing after its pull")),
                    Err(e) => Err(format!("image {reference}: {}", text(&e))),
                },
                Err(e) => {
                    let why = format!("failed to pull image {reference}: {}", text(&e));
                    // `pull_images` on an image the host has (built or tagged locally, or the
                    // registry is down): deploy what is there, and say so.
                    match image_id(client, reference).await {
                        Ok(Some(id)) if req.pull_images => {
                            progress("pulling_image", &format!("{why}; using the local image"));
                            Ok(id)
                        }
                        _ => Err(why),
                    }
                }
            },
            Err(e) => Err(format!("image {reference}: {}", text(&e))),
        };
        out.push((s.image.clone(), result));
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn up_one(
    client: &Client,
    req: &Up<'_>,
    i: usize,
    image: Result<&str, &str>,
    existing: &[Existing],
    ids: &[(String, String)],
    results: &[ServiceResult],
    health_deadline: Instant,
    progress: Progress<'_>,
) -> Result<String, String> {
    let p = req.project;
    let s = &p.services[i];
    let image_id = image.map_err(str::to_string)?;
    // Dependencies first: a failed one fails this service.
    for (dep, cond, required) in &s.depends_on {
        let Some((_, id)) = ids.iter().find(|(n, _)| n == dep) else {
            if !required {
                continue;
            }
            let why = results
                .iter()
                .find(|r| r.name == *dep)
                .map(|r| r.error.clone())
                .unwrap_or_default();
            return Err(format!("dependency {dep} failed to start: {why}"));
        };
        if *cond != Condition::Started {
            progress("health_check", &format!("Waiting for {dep}"));
            wait_for(client, dep, id, *cond, health_deadline).await?;
        }
    }
    let container_of = |svc: &str| ids.iter().find(|(n, _)| n == svc).map(|(_, id)| id.clone());
    let (body, hash) = plan::create_body(p, s, &req.at, &container_of);
    let name = plan::container_name(&p.name, s);
    let mine: Vec<&Existing> = existing.iter().filter(|e| e.service == s.name).collect();
    if let [one] = mine.as_slice() {
        if one.hash == hash && one.image_id == image_id && !req.force_recreate && one.name == name {
            if one.state != "running" {
                progress("starting", &format!("Starting {}", s.name));
                client
                    .start(&one.id)
                    .await
                    .map_err(|e| format!("failed to start {name}: {}", text(&e)))?;
            }
            return Ok(one.id.clone());
        }
    }
    for old in &mine {
        progress("creating", &format!("Recreating {}", s.name));
        remove_container(client, &old.id, false)
            .await
            .map_err(|e| {
                format!(
                    "failed to remove the old container {}: {}",
                    old.name,
                    text(&e)
                )
            })?;
    }
    progress("creating", &format!("Creating {name}"));
    let created = call_json(
        client,
        "POST",
        &format!("/containers/create?name={}", enc(&name)),
        Some(&body),
    )
    .await
    .map_err(|e| format!("failed to create {name}: {}", text(&e)))?;
    let id = created["Id"].as_str().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(format!("failed to create {name}: no ID in Docker's answer"));
    }
    if s.network_mode.is_none() {
        for (net, n) in plan::service_networks(p, s).iter().skip(1) {
            let b = plan::connect_body(&id, s, n);
            if let Err(e) = call_json(
                client,
                "POST",
                &format!("/networks/{}/connect", enc(net)),
                Some(&b),
            )
            .await
            {
                let _ = remove_container(client, &id, false).await;
                return Err(format!("failed to connect {name} to {net}: {}", text(&e)));
            }
        }
    }
    progress("starting", &format!("Starting {name}"));
    client
        .start(&id)
        .await
        .map_err(|e| format!("failed to start {name}: {}", text(&e)))?;
    Ok(id)
}

async fn list_labelled(client: &Client, kind: &str, project: &str) -> Result<Vec<String>, Error> {
    let target = format!("/{kind}?filters={}", project_filter(project));
    let mut out = Vec::new();
    client
        .call(
            "GET",
            &target,
            None,
            &mut out,
            COMPOSE_LIST_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await?;
    let v: Value = serde_json::from_slice(&out).map_err(|e| Error::Json {
        call: format!("GET /{kind}"),
        message: e.to_string(),
    })?;
    let list = if kind == "volumes" { &v["Volumes"] } else { &v };
    Ok(list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// `down`: every container of the project stopped and removed (with its anonymous volumes when
/// `remove_volumes`), then its networks, then (when `remove_volumes`) its named volumes. External
/// resources carry no project label and are never touched.
pub async fn down(
    client: &Client,
    project: &str,
    remove_volumes: bool,
    progress: Progress<'_>,
) -> Outcome {
    let existing = list_project(client, project)
        .await
        .map_err(|e| format!("failed to list the project's containers: {}", text(&e)))?;
    let mut results = Vec::new();
    for c in &existing {
        progress("stopping", &format!("Removing {}", c.name));
        let mut r = ServiceResult {
            name: c.service.clone(),
            container_id: c.id.chars().take(12).collect(),
            container_name: c.name.clone(),
            status: "removed".into(),
            ..Default::default()
        };
        if let Err(e) = client.stop(&c.id, 10).await {
            if !e.is_not_found() {
                r.error = format!("failed to stop: {}", text(&e));
            }
        }
        if let Err(e) = remove_container(client, &c.id, remove_volumes).await {
            r.error = format!("failed to remove: {}", text(&e));
            r.status = "failed".into();
        }
        results.push(r);
    }
    let nets = list_labelled(client, "networks", project)
        .await
        .map_err(|e| format!("failed to list the project's networks: {}", text(&e)))?;
    let mut failures = Vec::new();
    for n in nets {
        if let Err(e) = call_json(client, "DELETE", &format!("/networks/{}", enc(&n)), None).await {
            if !e.is_not_found() {
                failures.push(format!("network {n}: {}", text(&e)));
            }
        }
    }
    if remove_volumes {
        let vols = list_labelled(client, "volumes", project)
            .await
            .map_err(|e| format!("failed to list the project's volumes: {}", text(&e)))?;
        for v in vols {
            if let Err(e) =
                call_json(client, "DELETE", &format!("/volumes/{}", enc(&v)), None).await
            {
                if !e.is_not_found() {
                    failures.push(format!("volume {v}: {}", text(&e)));
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    Ok(results)
}

/// `restart`: every container of the project restarted (10 s grace, as `docker compose restart`).
pub async fn restart(client: &Client, project: &str, progress: Progress<'_>) -> Outcome {
    let existing = list_project(client, project)
        .await
        .map_err(|e| format!("failed to list the project's containers: {}", text(&e)))?;
    if existing.is_empty() {
        return Err(format!("no containers found for project {project}"));
    }
    let mut results = Vec::new();
    for c in &existing {
        progress("starting", &format!("Restarting {}", c.name));
        let mut r = ServiceResult {
            name: c.service.clone(),
            container_id: c.id.chars().take(12).collect(),
            container_name: c.name.clone(),
            ..Default::default()
        };
        match client.restart(&c.id, 10).await {
            Ok(()) => match state(client, &c.id).await {
                Ok((status, _, code, policy)) => {
                    r.status = status;
                    r.exit_code = code;
                    r.restart_policy = policy;
                }
                Err(e) => r.error = text(&e),
            },
            Err(e) => {
                r.status = "failed".into();
                r.error = format!("failed to restart: {}", text(&e));
            }
        }
        results.push(r);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_references_and_credentials() {
        assert_eq!(registry_of("nginx:1"), "docker.io");
        assert_eq!(registry_of("library/nginx"), "docker.io");
        assert_eq!(registry_of("me/app:2"), "docker.io");
        assert_eq!(registry_of("ghcr.io/me/app:2"), "ghcr.io");
        assert_eq!(registry_of("127.0.0.1:5000/app"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(normalize_registry("https://ghcr.io/"), "ghcr.io");
        assert_eq!(
            normalize_registry("http://127.0.0.1:5000"),
            "127.0.0.1:5000"
        );
        assert_eq!(
            normalize_registry("Registry.Example.com/v2/"),
            "registry.example.com"
        );
        for hub in [
            "",
            "docker.io",
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
        ] {
            assert_eq!(normalize_registry(hub), "docker.io", "{hub}");
        }
    }
}
