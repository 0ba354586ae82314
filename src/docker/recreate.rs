//! A container's configuration cloned with a new image (DockMon spec 3.8.1), and the calls that build a
//! container from it: create, connect the extra networks, find the containers sharing its network
//! namespace. Used by `update_container` and, next, by the agent's self-update.
//!
//! [`clone_config`] is pure: old inspect + the old image's `Config` → a [`Plan`]. The rules, after
//! Docker's own merge at create time (an empty field of the container config takes the image's):
//! - what the old container got from its old image is left out, so the new image's values apply:
//!   `Env` entries and `Labels` (key and value) found in the old image, `Cmd`, `Entrypoint`,
//!   `Healthcheck`, `WorkingDir`, `User`, `StopSignal` equal to the old image's, and the image's
//!   `ExposedPorts` and `Volumes` keys;
//! - the rest of `Config` and the whole `HostConfig` are kept (ports, binds, mounts, restart policy,
//!   resources); an anonymous volume the container used is kept as a named bind of the same volume, so
//!   its data carries over;
//! - a `Hostname` Docker made from the old ID is left out (the new container gets its own);
//! - networks: the primary one (`HostConfig.NetworkMode`) goes into the create body with its endpoint
//!   settings (aliases without the old short ID, static IPAM addresses, links); each other network is
//!   connected after create with the same settings ([`Client::create_from`]).
//!   `host`, `none` and `container:<x>` modes carry no endpoint settings.
//!
//! The JSON values come from inspect answers capped at `INSPECT_BODY_MAX_BYTES` and
//! `IMAGE_INSPECT_BODY_MAX_BYTES`, so a plan is bounded by them.
use super::{Client, Error};
use crate::http::request;
use crate::limits::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// How to create the clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The container's name (no leading `/`).
    pub name: String,
    /// The `POST /containers/create` body: `Config` fields, `HostConfig`, `NetworkingConfig`.
    pub body: Value,
    /// Networks to connect after create, with their endpoint settings.
    pub extra_networks: Vec<(String, Value)>,
}

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInspect(pub &'static str);

impl std::fmt::Display for BadInspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container inspect has no {}", self.0)
    }
}

/// Config fields dropped when equal to the old image's (Docker then takes the new image's).
const FROM_IMAGE_IF_EQUAL: [&str; 6] = [
    "Cmd",
    "Entrypoint",
    "Healthcheck",
    "WorkingDir",
    "User",
    "StopSignal",
];

/// Builds the clone of the container `inspect` with `new_image`; `old_image` is the `Config` of the
/// image the container was created from (`None` when that image is gone: then nothing is left out).
///
/// Takes the inspect by value: its parts move into the plan instead of being copied (the inspect is
/// the largest value an update holds).
pub fn clone_config(
    mut inspect: Value,
    old_image: Option<&Value>,
    new_image: &str,
) -> Result<Plan, BadInspect> {
    let name = inspect
        .get("Name")
        .and_then(Value::as_str)
        .ok_or(BadInspect("Name"))?
        .trim_start_matches('/')
        .to_string();
    let id = inspect
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut host = match inspect.get_mut("HostConfig").map(Value::take) {
        Some(Value::Object(h)) => h,
        _ => return Err(BadInspect("HostConfig")),
    };
    keep_anonymous_volumes(&inspect, &mut host);
    let mut config = match inspect.get_mut("Config").map(Value::take) {
        Some(Value::Object(c)) => c,
        _ => return Err(BadInspect("Config")),
    };
    let empty = Map::new();
    let image = old_image.and_then(Value::as_object).unwrap_or(&empty);

    config.insert("Image".into(), Value::String(new_image.to_string()));
    for key in FROM_IMAGE_IF_EQUAL {
        if let (Some(mine), Some(theirs)) = (config.get(key), image.get(key)) {
            if mine == theirs {
                config.remove(key);
            }
        }
    }
    if let Some(Value::Array(env)) = config.get_mut("Env") {
        let image_env = image.get("Env").and_then(Value::as_array);
        env.retain(|e| !image_env.is_some_and(|ie| ie.contains(e)));
    }
    if let Some(Value::Object(labels)) = config.get_mut("Labels") {
        if let Some(Value::Object(image_labels)) = image.get("Labels") {
            labels.retain(|k, v| image_labels.get(k) != Some(v));
        }
    }
    for key in ["ExposedPorts", "Volumes"] {
        if let (Some(Value::Object(mine)), Some(Value::Object(theirs))) =
            (config.get_mut(key), image.get(key))
        {
            mine.retain(|k, _| !theirs.contains_key(k));
        }
    }
    let mode = host
        .get("NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let shares_namespace = mode.starts_with("container:");
    let hostname_is_id = config
        .get("Hostname")
        .and_then(Value::as_str)
        .is_some_and(|h| !h.is_empty() && id.starts_with(h));
    if hostname_is_id || shares_namespace {
        config.remove("Hostname");
    }
    if shares_namespace {
        // Docker refuses these with a container network mode ("conflicting options").
        for key in ["Domainname", "ExposedPorts", "MacAddress"] {
            config.remove(key);
        }
    }

    // Networks: the primary one in the create body, the others connected after create.
    let short_id = short_id(&id);
    let networks = match inspect
        .pointer_mut("/NetworkSettings/Networks")
        .map(Value::take)
    {
        Some(Value::Object(n)) => n,
        _ => Map::new(),
    };
    let primary = if mode == "default" { "bridge" } else { &mode };
    let mut body = config;
    let mut extra_networks = Vec::new();
    let mut endpoints = Map::new();
    let own_network = !matches!(primary, "host" | "none") && !shares_namespace;
    for (net, settings) in &networks {
        let ep = endpoint_settings(net, settings, short_id);
        if own_network && net == primary {
            endpoints.insert(net.clone(), ep);
        } else if own_network {
            extra_networks.push((net.clone(), ep));
        }
    }
    if !endpoints.is_empty() {
        let mut nc = Map::new();
        nc.insert("EndpointsConfig".into(), Value::Object(endpoints));
        body.insert("NetworkingConfig".into(), Value::Object(nc));
    }
    body.insert("HostConfig".into(), Value::Object(host));
    Ok(Plan {
        name,
        body: Value::Object(body),
        extra_networks,
    })
}

/// The plan of a container that shares the network namespace of another (`network_mode:
/// container:<x>`), pointed at `container` (the recreated one).
pub fn share_namespace_of(plan: &mut Plan, container: &str) {
    if let Some(Value::Object(host)) = plan.body.get_mut("HostConfig") {
        host.insert(
            "NetworkMode".into(),
            Value::String(format!("container:{container}")),
        );
    }
}

/// The endpoint settings worth carrying over: user aliases, static addresses, links, driver options.
fn endpoint_settings(network: &str, settings: &Value, short_id: &str) -> Value {
    let mut ep = Map::new();
    let user_defined = !matches!(network, "bridge" | "host" | "none");
    if let Some(Value::Array(aliases)) = settings.get("Aliases") {
        let kept: Vec<Value> = aliases
            .iter()
            .filter(|a| a.as_str().is_some_and(|s| s != short_id))
            .cloned()
            .collect();
        if user_defined && !kept.is_empty() {
            ep.insert("Aliases".into(), Value::Array(kept));
        }
    }
    for key in ["IPAMConfig", "Links", "DriverOpts"] {
        if let Some(v) = settings.get(key).filter(|v| !v.is_null()) {
            ep.insert(key.into(), v.clone());
        }
    }
    Value::Object(ep)
}

/// Adds `volume:destination[:ro]` binds for the anonymous volumes the container has mounted and its
/// `Binds`/`Mounts` do not name, so the clone mounts the same volumes instead of fresh ones.
fn keep_anonymous_volumes(inspect: &Value, host: &mut Map<String, Value>) {
    let Some(mounts) = inspect.get("Mounts").and_then(Value::as_array) else {
        return;
    };
    let covered = |dest: &str, host: &Map<String, Value>| {
        let in_binds = host
            .get("Binds")
            .and_then(Value::as_array)
            .is_some_and(|b| {
                b.iter().filter_map(Value::as_str).any(|s| {
                    let mut parts = s.split(':');
                    parts.next();
                    parts.next() == Some(dest)
                })
            });
        let in_mounts = host
            .get("Mounts")
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter()
                    .any(|m| m.get("Target").and_then(Value::as_str) == Some(dest))
            });
        in_binds || in_mounts
    };
    let mut add = Vec::new();
    for m in mounts {
        let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
        if field("Type") != "volume" || field("Name").is_empty() || field("Destination").is_empty()
        {
            continue;
        }
        if covered(field("Destination"), host) {
            continue;
        }
        let ro = m.get("RW").and_then(Value::as_bool) == Some(false);
        let mut bind = format!("{}:{}", field("Name"), field("Destination"));
        if ro {
            bind.push_str(":ro");
        }
        add.push(Value::String(bind));
    }
    if add.is_empty() {
        return;
    }
    match host.get_mut("Binds") {
        Some(Value::Array(binds)) => binds.extend(add),
        _ => {
            host.insert("Binds".into(), Value::Array(add));
        }
    }
}

/// The 12-character short form of an ID (spec 3.8.1 `update_complete`).
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(rename = "Id", borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Summary<'a> {
    #[serde(rename = "Id", borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "HostConfig", default, borrow)]
    host: Option<SummaryHost<'a>>,
}

#[derive(Deserialize)]
struct SummaryHost<'a> {
    #[serde(rename = "NetworkMode", default, borrow)]
    network_mode: Cow<'a, str>,
}

fn json_err(call: &str, e: serde_json::Error) -> Error {
    Error::Json {
        call: call.to_string(),
        message: e.to_string(),
    }
}

impl Client {
    /// `GET /containers/{id}/json` as a JSON value.
    pub async fn inspect_value(&self, id: &str) -> Result<Value, Error> {
        let mut buf = Vec::new();
        self.inspect_raw(id, &mut buf).await?;
        serde_json::from_slice(&buf).map_err(|e| json_err("GET /containers/{id}/json", e))
    }

    /// `GET /images/{id}/json` → its `Config` (`None` when the image is gone).
    pub async fn image_config(&self, image: &str) -> Result<Option<Value>, Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/images/");
        request::push_encoded(&mut target, image);
        target.push_str("/json");
        let mut buf = Vec::new();
        match self
            .call(
                "GET",
                &target,
                None,
                &mut buf,
                IMAGE_INSPECT_BODY_MAX_BYTES,
                CALL_TIMEOUT_MS,
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut v: Value =
            serde_json::from_slice(&buf).map_err(|e| json_err("GET /images/{id}/json", e))?;
        Ok(v.get_mut("Config").map(Value::take))
    }

    /// `POST /containers/create?name=…` with `body`; returns the new ID.
    pub async fn create_container(&self, name: &str, body: &Value) -> Result<String, Error> {
        let mut target = String::with_capacity(64);
        target.push_str("/containers/create?name=");
        request::push_encoded(&mut target, name);
        let bytes = serde_json::to_vec(body).map_err(|e| json_err("POST /containers/create", e))?;
        let mut out = Vec::new();
        self.call(
            "POST",
            &target,
            Some(("application/json", &bytes)),
            &mut out,
            CREATE_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await?;
        let created: Created =
            serde_json::from_slice(&out).map_err(|e| json_err("POST /containers/create", e))?;
        Ok(created.id.into_owned())
    }

    /// `POST /networks/{network}/connect` of `container` with endpoint settings `endpoint`.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        endpoint: &Value,
    ) -> Result<(), Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/networks/");
        request::push_encoded(&mut target, network);
        target.push_str("/connect");
        let body = serde_json::json!({"Container": container, "EndpointConfig": endpoint});
        let bytes = serde_json::to_vec(&body).map_err(|e| json_err("POST /networks/connect", e))?;
        let mut out = Vec::new();
        self.call(
            "POST",
            &target,
            Some(("application/json", &bytes)),
            &mut out,
            CREATE_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await
    }

    /// Creates the container of `plan` and connects its extra networks; returns the new ID. If a
    /// connect fails the new container is removed again and the error returned.
    pub async fn create_from(&self, plan: &Plan) -> Result<String, Error> {
        let id = self.create_container(&plan.name, &plan.body).await?;
        for (net, ep) in &plan.extra_networks {
            if let Err(e) = self.connect_network(net, &id, ep).await {
                let _ = self.remove(&id, true).await;
                return Err(e);
            }
        }
        Ok(id)
    }

    /// IDs of the containers (any state) whose network mode is `container:<id>` or
    /// `container:<name>` of the given container. The list is read one element at a time
    /// ([`Client::list_reader`]), never held whole.
    pub async fn namespace_dependants(&self, id: &str, name: &str) -> Result<Vec<String>, Error> {
        let mut reader = self.list_reader(true, CALL_TIMEOUT_MS).await?;
        let mut found = Vec::new();
        while let Some(element) = reader.next().await? {
            let c: Summary =
                serde_json::from_slice(element).map_err(|e| json_err("GET /containers/json", e))?;
            let shares = c.host.as_ref().is_some_and(|h| {
                h.network_mode
                    .strip_prefix("container:")
                    .is_some_and(|t| !t.is_empty() && (id.starts_with(t) || t == name))
            });
            if shares {
                found.push(c.id.into_owned());
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inspect() -> Value {
        json!({
            "Id": "0123456789abcdef0000",
            "Name": "/web",
            "Config": {
                "Hostname": "0123456789ab",
                "Image": "reg/app:v1",
                "Env": ["PATH=/bin", "FROM_IMAGE=1", "MINE=x"],
                "Labels": {"img.label": "v1", "mine": "yes", "img.overridden": "user"},
                "Cmd": ["sleep", "1000"],
                "Entrypoint": null,
                "Healthcheck": {"Test": ["CMD", "true"]},
                "ExposedPorts": {"80/tcp": {}, "8080/tcp": {}},
                "WorkingDir": "/srv"
            },
            "HostConfig": {
                "NetworkMode": "appnet",
                "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "18080"}]},
                "Binds": ["/data:/data"]
            },
            "Mounts": [
                {"Type": "bind", "Source": "/data", "Destination": "/data", "RW": true},
                {"Type": "volume", "Name": "abc123", "Destination": "/cache", "RW": true}
            ],
            "NetworkSettings": {"Networks": {
                "appnet": {"Aliases": ["web-alias", "0123456789ab"], "IPAMConfig": null},
                "other": {"Aliases": ["o1"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}
            }}
        })
    }

    fn image() -> Value {
        json!({
            "Env": ["PATH=/bin", "FROM_IMAGE=1"],
            "Labels": {"img.label": "v1", "img.overridden": "image"},
            "Cmd": ["sleep", "1000"],
            "Healthcheck": {"Test": ["CMD", "true"]},
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/cache": {}},
            "WorkingDir": "/"
        })
    }

    #[test]
    fn the_clone_leaves_out_what_came_from_the_old_image() {
        let plan = clone_config(inspect(), Some(&image()), "reg/app:v2").unwrap();
        let b = &plan.body;
        assert_eq!(plan.name, "web");
        assert_eq!(b["Image"], "reg/app:v2");
        assert_eq!(b["Env"], json!(["MINE=x"]));
        assert_eq!(
            b["Labels"],
            json!({"mine": "yes", "img.overridden": "user"})
        );
        assert!(
            b.get("Cmd").is_none(),
            "the image's command is the new image's to give"
        );
        assert!(b.get("Healthcheck").is_none());
        assert_eq!(
            b["WorkingDir"], "/srv",
            "differs from the image: the user's"
        );
        assert_eq!(b["ExposedPorts"], json!({"8080/tcp": {}}));
        assert!(b.get("Hostname").is_none(), "made from the old ID");
        assert_eq!(b["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
        assert_eq!(
            b["HostConfig"]["Binds"],
            json!(["/data:/data", "abc123:/cache"]),
            "the anonymous volume is kept"
        );
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"],
            json!({"appnet": {"Aliases": ["web-alias"]}})
        );
        assert_eq!(
            plan.extra_networks,
            vec![(
                "other".to_string(),
                json!({"Aliases": ["o1"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}})
            )]
        );
    }

    #[test]
    fn without_the_old_image_everything_is_kept() {
        let plan = clone_config(inspect(), None, "x").unwrap();
        assert_eq!(plan.body["Env"].as_array().unwrap().len(), 3);
        assert!(plan.body.get("Cmd").is_some());
    }

    #[test]
    fn shared_namespaces_and_builtin_networks_carry_no_endpoints() {
        let mut i = inspect();
        i["HostConfig"]["NetworkMode"] = json!("container:feedbeef");
        i["NetworkSettings"]["Networks"] = json!({});
        let mut plan = clone_config(i, Some(&image()), "x").unwrap();
        assert!(plan.body.get("NetworkingConfig").is_none());
        assert!(plan.body.get("ExposedPorts").is_none());
        share_namespace_of(&mut plan, "newid");
        assert_eq!(plan.body["HostConfig"]["NetworkMode"], "container:newid");

        let mut i = inspect();
        i["HostConfig"]["NetworkMode"] = json!("default");
        i["NetworkSettings"]["Networks"] = json!({"bridge": {"Aliases": ["x"]}});
        let plan = clone_config(i, None, "x").unwrap();
        assert_eq!(
            plan.body["NetworkingConfig"]["EndpointsConfig"],
            json!({"bridge": {}})
        );
    }

    #[test]
    fn a_broken_inspect_is_an_error() {
        assert_eq!(
            clone_config(json!({"Config": {}}), None, "x"),
            Err(BadInspect("Name"))
        );
        assert_eq!(
            clone_config(json!({"Name": "/a", "HostConfig": {}}), None, "x"),
            Err(BadInspect("Config"))
        );
    }
}
