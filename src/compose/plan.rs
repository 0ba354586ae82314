//! A service of a [`Project`] → the body of Docker's `POST /containers/create`, its labels and its
//! config hash, pure.
//!
//! The config hash (label `com.docker.compose.config-hash`) is the SHA-1 of the create body (keys
//! sorted, as `serde_json::Map` keeps them) before the hash label is added: `up` compares it with
//! the running container's label to decide whether to recreate. It is our own digest, not compose
//! v2's (a SHA-256 of its internal service JSON), so the host's compose CLI sees a different hash
//! and would recreate once (README, known differences).
use super::model::{MountKind, Project, Resource, Service};
use crate::ws::sha1::Sha1;
use serde_json::{json, Map, Value};

/// Compose's label keys (docker/compose `api/labels.go`).
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// The service a container belongs to.
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// 1-based replica number.
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
/// Hash of the configuration the container was created from.
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
/// `False` for service containers (`True` for `compose run`).
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
/// The project directory.
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The compose files, comma-separated.
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The tool that created the object.
pub const LABEL_VERSION: &str = "com.docker.compose.version";
/// `service:condition:restart` list (compose v2).
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// A network's key in the file.
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
/// A volume's key in the file.
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";

/// What the plan needs besides the project.
pub struct Where<'a> {
    /// The project directory (label `working_dir`).
    pub working_dir: &'a str,
    /// The compose file's path (label `config_files`).
    pub config_file: &'a str,
}

/// The container name: `container_name`, else `<project>-<service>-1` (compose v2).
pub fn container_name(project: &str, s: &Service) -> String {
    s.container_name
        .clone()
        .unwrap_or_else(|| format!("{project}-{}-1", s.name))
}

fn net_name<'a>(p: &'a Project, key: &'a str) -> &'a str {
    p.networks
        .iter()
        .find(|n| n.key == key)
        .map(|n| n.name.as_str())
        .unwrap_or(key)
}

/// The networks of `s` in the order they are attached: the first one at create (Docker's
/// `NetworkMode`), the others connected before start. Sorted by engine name, as compose does
/// when no priority is given.
pub fn service_networks(p: &Project, s: &Service) -> Vec<(String, Value)> {
    let mut nets: Vec<(String, Value)> = s
        .networks
        .iter()
        .map(|n| {
            let mut aliases = vec![s.name.clone()];
            aliases.extend(n.aliases.iter().cloned());
            let mut ep = json!({ "Aliases": aliases });
            if !n.ipv4_address.is_empty() || !n.ipv6_address.is_empty() {
                let mut ipam = Map::new();
                if !n.ipv4_address.is_empty() {
                    ipam.insert("IPv4Address".into(), n.ipv4_address.clone().into());
                }
                if !n.ipv6_address.is_empty() {
                    ipam.insert("IPv6Address".into(), n.ipv6_address.clone().into());
                }
                ep["IPAMConfig"] = Value::Object(ipam);
            }
            (net_name(p, &n.name).to_string(), ep)
        })
        .collect();
    nets.sort_by(|a, b| a.0.cmp(&b.0));
    nets
}

/// The create body of `s` with every label, and its config hash. `container_of` gives the
/// container ID of another service (for `network_mode: service:x`).
pub fn create_body(
    p: &Project,
    s: &Service,
    at: &Where<'_>,
    container_of: &dyn Fn(&str) -> Option<String>,
) -> (Value, String) {
    let mut labels: Map<String, Value> = s
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    labels.insert(LABEL_PROJECT.into(), p.name.clone().into());
    labels.insert(LABEL_SERVICE.into(), s.name.clone().into());
    labels.insert(LABEL_NUMBER.into(), "1".into());
    labels.insert(LABEL_ONEOFF.into(), "False".into());
    labels.insert(LABEL_WORKING_DIR.into(), at.working_dir.into());
    labels.insert(LABEL_CONFIG_FILES.into(), at.config_file.into());
    labels.insert(
        LABEL_VERSION.into(),
        format!("dockmon-agent-{}", crate::VERSION).into(),
    );
    if !s.depends_on.is_empty() {
        let d: Vec<String> = s
            .depends_on
            .iter()
            .map(|(n, c, _)| {
                let c = match c {
                    super::model::Condition::Started => "service_started",
                    super::model::Condition::Healthy => "service_healthy",
                    super::model::Condition::CompletedSuccessfully => {
                        "service_completed_successfully"
                    }
                };
                format!("{n}:{c}:false")
            })
            .collect();
        labels.insert(LABEL_DEPENDS_ON.into(), d.join(",").into());
    }

    let mut cfg = Map::new();
    let mut host = Map::new();
    cfg.insert("Image".into(), s.image.clone().into());
    cfg.insert("Labels".into(), Value::Object(labels));
    cfg.insert("Env".into(), json!(s.environment));
    if let Some(c) = &s.command {
        cfg.insert("Cmd".into(), json!(c));
    }
    if let Some(e) = &s.entrypoint {
        cfg.insert("Entrypoint".into(), json!(e));
    }
    if let Some(u) = &s.user {
        cfg.insert("User".into(), u.clone().into());
    }
    if let Some(w) = &s.working_dir {
        cfg.insert("WorkingDir".into(), w.clone().into());
    }
    if let Some(h) = &s.hostname {
        cfg.insert("Hostname".into(), h.clone().into());
    }
    if let Some(sig) = &s.stop_signal {
        cfg.insert("StopSignal".into(), sig.clone().into());
    }
    if let Some(t) = s.stop_grace_period_s {
        cfg.insert("StopTimeout".into(), t.into());
    }
    cfg.insert("Tty".into(), s.tty.into());
    cfg.insert("OpenStdin".into(), s.stdin_open.into());
    cfg.insert("AttachStdin".into(), false.into());
    if let Some(h) = &s.healthcheck {
        let mut hc = Map::new();
        if !h.test.is_empty() {
            hc.insert("Test".into(), json!(h.test));
        }
        for (k, v) in [
            ("Interval", h.interval_ns),
            ("Timeout", h.timeout_ns),
            ("Retries", h.retries),
            ("StartPeriod", h.start_period_ns),
            ("StartInterval", h.start_interval_ns),
        ] {
            if v != 0 {
                hc.insert(k.into(), v.into());
            }
        }
        cfg.insert("Healthcheck".into(), Value::Object(hc));
    }
    // Ports: exposed (ports' targets and `expose`) and bindings.
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for e in &s.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    for port in &s.ports {
        let key = format!("{}/{}", port.target, port.protocol);
        exposed.insert(key.clone(), json!({}));
        let b = bindings.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(a) = b {
            a.push(json!({ "HostIp": port.host_ip, "HostPort": port.published }));
        }
    }
    if !exposed.is_empty() {
        cfg.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if !bindings.is_empty() {
        host.insert("PortBindings".into(), Value::Object(bindings));
    }
    // Mounts: short binds and named volumes as `Binds` (as compose does: a missing host path is
    // created), the long syntax and tmpfs as `Mounts`, anonymous short volumes as `Volumes`.
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    let mut anon = Map::new();
    for m in &s.mounts {
        let vol_name = || {
            p.volumes
                .iter()
                .find(|v| v.key == m.source)
                .map(|v| v.name.clone())
                .unwrap_or_else(|| m.source.clone())
        };
        match m.kind {
            MountKind::Volume if m.source.is_empty() && m.short => {
                anon.insert(m.target.clone(), json!({}));
            }
            MountKind::Bind | MountKind::Volume if m.short => {
                let src = if m.kind == MountKind::Bind {
                    m.source.clone()
                } else {
                    vol_name()
                };
                let mode = if m.read_only { "ro" } else { "rw" };
                binds.push(format!("{src}:{}:{mode}", m.target));
            }
            MountKind::Bind => mounts.push(json!({
                "Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only,
            })),
            MountKind::Volume => {
                let mut v = json!({
                    "Type": "volume", "Target": m.target, "ReadOnly": m.read_only,
                });
                if !m.source.is_empty() {
                    v["Source"] = vol_name().into();
                }
                if m.nocopy {
                    v["VolumeOptions"] = json!({ "NoCopy": true });
                }
                mounts.push(v);
            }
            MountKind::Tmpfs => {
                let mut v = json!({ "Type": "tmpfs", "Target": m.target, "ReadOnly": m.read_only });
                if m.tmpfs_size > 0 {
                    v["TmpfsOptions"] = json!({ "SizeBytes": m.tmpfs_size });
                }
                mounts.push(v);
            }
        }
    }
    if !anon.is_empty() {
        cfg.insert("Volumes".into(), Value::Object(anon));
    }
    if !binds.is_empty() {
        host.insert("Binds".into(), json!(binds));
    }
    if !mounts.is_empty() {
        host.insert("Mounts".into(), Value::Array(mounts));
    }
    // Networking.
    let nets = service_networks(p, s);
    match &s.network_mode {
        Some(m) => {
            let mode = match m.strip_prefix("service:") {
                Some(other) => format!(
                    "container:{}",
                    container_of(other).unwrap_or_else(|| other.to_string())
                ),
                None => m.clone(),
            };
            host.insert("NetworkMode".into(), mode.into());
        }
        None => {
            if let Some((first, ep)) = nets.first() {
                host.insert("NetworkMode".into(), first.clone().into());
                cfg.insert(
                    "NetworkingConfig".into(),
                    json!({ "EndpointsConfig": { first.clone(): ep } }),
                );
            }
        }
    }
    if let Some((name, n)) = &s.restart {
        host.insert(
            "RestartPolicy".into(),
            json!({ "Name": name, "MaximumRetryCount": n }),
        );
    }
    let list = |v: &Vec<String>| json!(v);
    if !s.cap_add.is_empty() {
        host.insert("CapAdd".into(), list(&s.cap_add));
    }
    if !s.cap_drop.is_empty() {
        host.insert("CapDrop".into(), list(&s.cap_drop));
    }
    if !s.dns.is_empty() {
        host.insert("Dns".into(), list(&s.dns));
    }
    if !s.extra_hosts.is_empty() {
        host.insert("ExtraHosts".into(), list(&s.extra_hosts));
    }
    if s.privileged {
        host.insert("Privileged".into(), true.into());
    }
    if let Some(i) = s.init {
        host.insert("Init".into(), i.into());
    }
    if let Some(v) = s.shm_size {
        host.insert("ShmSize".into(), v.into());
    }
    if let Some(v) = s.memory {
        host.insert("Memory".into(), v.into());
    }
    if let Some(v) = s.nano_cpus {
        host.insert("NanoCpus".into(), v.into());
    }
    if let Some(v) = s.pids_limit {
        host.insert("PidsLimit".into(), v.into());
    }
    if !s.sysctls.is_empty() {
        let m: Map<String, Value> = s
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        host.insert("Sysctls".into(), Value::Object(m));
    }
    if !s.ulimits.is_empty() {
        let u: Vec<Value> = s
            .ulimits
            .iter()
            .map(|u| json!({ "Name": u.name, "Soft": u.soft, "Hard": u.hard }))
            .collect();
        host.insert("Ulimits".into(), Value::Array(u));
    }
    if !s.devices.is_empty() {
        let d: Vec<Value> = s
            .devices
            .iter()
            .map(|(h, c, perm)| json!({ "PathOnHost": h, "PathInContainer": c, "CgroupPermissions": perm }))
            .collect();
        host.insert("Devices".into(), Value::Array(d));
    }
    if let Some((driver, opts)) = &s.logging {
        let c: Map<String, Value> = opts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        host.insert("LogConfig".into(), json!({ "Type": driver, "Config": c }));
    }
    cfg.insert("HostConfig".into(), Value::Object(host));
    let mut body = Value::Object(cfg);
    let hash = hash(&body);
    body["Labels"][LABEL_HASH] = hash.clone().into();
    (body, hash)
}

fn hash(v: &Value) -> String {
    let mut h = Sha1::new();
    h.update(v.to_string().as_bytes());
    h.finish().iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /networks/create` body of a (non-external) network.
pub fn network_body(project: &str, n: &Resource) -> Value {
    let mut labels: Map<String, Value> = n
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    labels.insert(LABEL_PROJECT.into(), project.into());
    labels.insert(LABEL_NETWORK.into(), n.key.clone().into());
    labels.insert(
        LABEL_VERSION.into(),
        format!("dockmon-agent-{}", crate::VERSION).into(),
    );
    let opts: Map<String, Value> = n
        .driver_opts
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let mut body = json!({
        "Name": n.name,
        "CheckDuplicate": true,
        "Driver": if n.driver.is_empty() { "bridge" } else { n.driver.as_str() },
        "Options": opts,
        "Labels": labels,
        "Internal": n.internal,
        "Attachable": n.attachable,
        "EnableIPv6": n.enable_ipv6,
    });
    if !n.ipam_driver.is_empty() || !n.ipam_config.is_empty() {
        let config: Vec<Value> = n
            .ipam_config
            .iter()
            .map(|(s, r, g)| {
                let mut c = Map::new();
                for (k, v) in [("Subnet", s), ("IPRange", r), ("Gateway", g)] {
                    if !v.is_empty() {
                        c.insert(k.into(), v.clone().into());
                    }
                }
                Value::Object(c)
            })
            .collect();
        body["IPAM"] = json!({
            "Driver": if n.ipam_driver.is_empty() { "default" } else { n.ipam_driver.as_str() },
            "Config": config,
        });
    }
    body
}

/// `POST /volumes/create` body of a (non-external) volume.
pub fn volume_body(project: &str, v: &Resource) -> Value {
    let mut labels: Map<String, Value> = v
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    labels.insert(LABEL_PROJECT.into(), project.into());
    labels.insert(LABEL_VOLUME.into(), v.key.clone().into());
    labels.insert(
        LABEL_VERSION.into(),
        format!("dockmon-agent-{}", crate::VERSION).into(),
    );
    let opts: Map<String, Value> = v
        .driver_opts
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    json!({
        "Name": v.name,
        "Driver": if v.driver.is_empty() { "local" } else { v.driver.as_str() },
        "DriverOpts": opts,
        "Labels": labels,
    })
}

/// Services in start order: every service after what it depends on (`depends_on`,
/// `network_mode: service:x`), otherwise in file order. The model refused cycles.
pub fn start_order(p: &Project) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    fn visit(p: &Project, i: usize, order: &mut Vec<usize>, depth: usize) {
        if order.contains(&i) || depth > p.services.len() {
            return;
        }
        let s = &p.services[i];
        let deps = s.depends_on.iter().map(|(d, _, _)| d.as_str()).chain(
            s.network_mode
                .as_deref()
                .and_then(|m| m.strip_prefix("service:")),
        );
        for d in deps {
            if let Some(j) = p.services.iter().position(|o| o.name == d) {
                visit(p, j, order, depth + 1);
            }
        }
        if !order.contains(&i) {
            order.push(i);
        }
    }
    for i in 0..p.services.len() {
        visit(p, i, &mut order, 0);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::super::model::{load, Input};
    use super::*;

    fn project(t: &str) -> Project {
        let read = |_: &str| Ok(None);
        load(
            t,
            &Input {
                project: "p",
                vars: &[],
                profiles: &[],
                project_dir: "/s/p",
                read_env_file: &read,
            },
        )
        .unwrap()
    }
    const AT: Where = Where {
        working_dir: "/s/p",
        config_file: "/s/p/docker-compose.yml",
    };

    #[test]
    fn body_labels_and_stable_hash() {
        let p = project("services:\n  web:\n    image: busybox\n    ports: ['8080:80']\n    volumes: ['./d:/d:ro', 'v:/v', '/anon']\n    restart: always\nvolumes:\n  v:\n");
        let (b, h) = create_body(&p, &p.services[0], &AT, &|_| None);
        assert_eq!(b["Labels"][LABEL_PROJECT], "p");
        assert_eq!(b["Labels"][LABEL_HASH], h.as_str());
        assert_eq!(
            b["HostConfig"]["Binds"],
            json!(["/s/p/d:/d:ro", "p_v:/v:rw"])
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "8080"
        );
        assert_eq!(b["HostConfig"]["NetworkMode"], "p_default");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["p_default"]["Aliases"],
            json!(["web"])
        );
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        let (_, h2) = create_body(&p, &p.services[0], &AT, &|_| None);
        assert_eq!(h, h2);
        let p2 = project("services:\n  web:\n    image: busybox\n    ports: ['8081:80']\n    volumes: ['./d:/d:ro', 'v:/v', '/anon']\n    restart: always\nvolumes:\n  v:\n");
        assert_ne!(create_body(&p2, &p2.services[0], &AT, &|_| None).1, h);
        assert_eq!(container_name("p", &p.services[0]), "p-web-1");
    }

    #[test]
    fn order_follows_dependencies() {
        let p = project("services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on: {db: {condition: service_healthy}}\n  db:\n    image: x\n");
        let names: Vec<&str> = start_order(&p)
            .iter()
            .map(|&i| p.services[i].name.as_str())
            .collect();
        assert_eq!(names, ["db", "api", "web"]);
    }
}
