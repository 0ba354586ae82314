//! A service of a [`Project`] → the body of Docker's `POST /containers/create`, its labels and its
//! config hash, pure. Bodies are written straight to bytes by [`super::json::Json`].
//!
//! The config hash (label `com.docker.compose.config-hash`) is the SHA-1 of the create body as
//! written before the last two labels (`com.docker.compose.version` and the hash itself, which
//! close the body): `up` compares it with the running container's label to decide whether to
//! recreate, and an agent upgrade alone recreates nothing. It is our own digest, not compose v2's
//! (the SHA-256 of compose-go's JSON form of the service, README, known differences), so the
//! host's compose CLI sees a different hash and would recreate once.
use super::json::Json;
use super::model::{Condition, MountKind, Project, Resource, Service, ServiceNetwork};
use crate::ws::sha1::Sha1;

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

fn version_label() -> String {
    format!("dockmon-agent-{}", crate::VERSION)
}

/// The networks of `s` (engine name, entry) in the order they are attached: the first one at
/// create (Docker's `NetworkMode`), the others connected before start. Sorted by engine name, as
/// compose does when no priority is given.
pub fn service_networks<'a>(p: &'a Project, s: &'a Service) -> Vec<(&'a str, &'a ServiceNetwork)> {
    let mut nets: Vec<(&str, &ServiceNetwork)> = s
        .networks
        .iter()
        .map(|n| (net_name(p, &n.name), n))
        .collect();
    super::sort_by(&mut nets, &|a, b| a.0 < b.0);
    nets
}

/// Docker's `EndpointSettings` of `s` on network entry `n`: the service name and the extra
/// aliases, and the static addresses.
pub fn write_endpoint(w: &mut Json<'_>, s: &Service, n: &ServiceNetwork) {
    w.open().key("Aliases").open_list().str(&s.name);
    for a in &n.aliases {
        w.str(a);
    }
    w.close_list();
    if !n.ipv4_address.is_empty() || !n.ipv6_address.is_empty() {
        w.key("IPAMConfig").open();
        if !n.ipv4_address.is_empty() {
            w.kv("IPv4Address", &n.ipv4_address);
        }
        if !n.ipv6_address.is_empty() {
            w.kv("IPv6Address", &n.ipv6_address);
        }
        w.close();
    }
    w.close();
}

/// The body of `POST /networks/{name}/connect` for container `id`.
pub fn connect_body(id: &str, s: &Service, n: &ServiceNetwork) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Json::new(&mut out);
    w.open().kv("Container", id).key("EndpointConfig");
    write_endpoint(&mut w, s, n);
    w.close();
    out
}

fn sha1_hex(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(bytes);
    let mut s = String::with_capacity(40);
    for b in h.finish() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// The create body of `s` with every label, and its config hash. `container_of` gives the
/// container ID of another service (for `network_mode: service:x`).
pub fn create_body(
    p: &Project,
    s: &Service,
    at: &Where<'_>,
    container_of: &dyn Fn(&str) -> Option<String>,
) -> (Vec<u8>, String) {
    let mut out = Vec::with_capacity(1024);
    let mut w = Json::new(&mut out);
    w.open()
        .kv("Image", &s.image)
        .kv_list("Env", &s.environment);
    if let Some(c) = &s.command {
        w.kv_list("Cmd", c);
    }
    if let Some(e) = &s.entrypoint {
        w.kv_list("Entrypoint", e);
    }
    w.kv_opt("User", s.user.as_ref())
        .kv_opt("WorkingDir", s.working_dir.as_ref())
        .kv_opt("Hostname", s.hostname.as_ref())
        .kv_opt("StopSignal", s.stop_signal.as_ref());
    if let Some(t) = s.stop_grace_period_s {
        w.kv_int("StopTimeout", t);
    }
    w.kv_bool("Tty", s.tty)
        .kv_bool("OpenStdin", s.stdin_open)
        .kv_bool("AttachStdin", false);
    if let Some(h) = &s.healthcheck {
        w.key("Healthcheck").open();
        w.kv_list_nonempty("Test", &h.test);
        for (k, v) in [
            ("Interval", h.interval_ns),
            ("Timeout", h.timeout_ns),
            ("Retries", h.retries),
            ("StartPeriod", h.start_period_ns),
            ("StartInterval", h.start_interval_ns),
        ] {
            if v != 0 {
                w.kv_int(k, v);
            }
        }
        w.close();
    }
    // Exposed ports: ports' targets and `expose` (Docker keeps a map, so duplicates are harmless).
    if !s.expose.is_empty() || !s.ports.is_empty() {
        w.key("ExposedPorts").open();
        for e in &s.expose {
            if e.contains('/') {
                w.key(e);
            } else {
                w.key(&format!("{e}/tcp"));
            }
            w.open().close();
        }
        for port in &s.ports {
            w.key(&format!("{}/{}", port.target, port.protocol))
                .open()
                .close();
        }
        w.close();
    }
    // Anonymous short volumes as `Volumes`.
    let anon =
        |m: &&super::model::Mount| m.kind == MountKind::Volume && m.source.is_empty() && m.short;
    if s.mounts.iter().any(|m| anon(&m)) {
        w.key("Volumes").open();
        for m in s.mounts.iter().filter(anon) {
            w.key(&m.target).open().close();
        }
        w.close();
    }
    // Networking: the first network at create, the others connected before start (`up`).
    let nets = service_networks(p, s);
    if s.network_mode.is_none() {
        if let Some((first, n)) = nets.first() {
            w.key("NetworkingConfig")
                .open()
                .key("EndpointsConfig")
                .open()
                .key(first);
            write_endpoint(&mut w, s, n);
            w.close().close();
        }
    }
    w.key("HostConfig").open();
    write_host_config(&mut w, p, s, nets.first().map(|n| n.0), container_of);
    w.close();
    // Labels last: everything up to the version and hash labels is hashed.
    w.key("Labels").open();
    for (k, v) in &s.labels {
        w.kv(k, v);
    }
    w.kv(LABEL_PROJECT, &p.name)
        .kv(LABEL_SERVICE, &s.name)
        .kv(LABEL_NUMBER, "1")
        .kv(LABEL_ONEOFF, "False")
        .kv(LABEL_WORKING_DIR, at.working_dir)
        .kv(LABEL_CONFIG_FILES, at.config_file);
    if !s.depends_on.is_empty() {
        let mut d = String::new();
        for (n, c, _) in &s.depends_on {
            if !d.is_empty() {
                d.push(',');
            }
            let c = match c {
                Condition::Started => "service_started",
                Condition::Healthy => "service_healthy",
                Condition::CompletedSuccessfully => "service_completed_successfully",
            };
            d.push_str(n);
            d.push(':');
            d.push_str(c);
            d.push_str(":false");
        }
        w.kv(LABEL_DEPENDS_ON, &d);
    }
    let hash = sha1_hex(w.out);
    w.kv(LABEL_VERSION, &version_label())
        .kv(LABEL_HASH, &hash)
        .close()
        .close();
    (out, hash)
}

fn write_host_config(
    w: &mut Json<'_>,
    p: &Project,
    s: &Service,
    first_net: Option<&str>,
    container_of: &dyn Fn(&str) -> Option<String>,
) {
    if !s.ports.is_empty() {
        w.key("PortBindings").open();
        // One key per container port, with every binding of it (a map key may appear once).
        for (i, port) in s.ports.iter().enumerate() {
            let same =
                |q: &super::model::Port| q.target == port.target && q.protocol == port.protocol;
            if s.ports[..i].iter().any(same) {
                continue;
            }
            w.key(&format!("{}/{}", port.target, port.protocol))
                .open_list();
            for q in s.ports[i..].iter().filter(|q| same(q)) {
                w.open()
                    .kv("HostIp", &q.host_ip)
                    .kv("HostPort", &q.published)
                    .close();
            }
            w.close_list();
        }
        w.close();
    }
    // Mounts: short binds and named volumes as `Binds` (as compose does: a missing host path is
    // created), the long syntax and tmpfs as `Mounts`.
    let vol_name = |key: &str| -> String {
        p.volumes
            .iter()
            .find(|v| v.key == key)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| key.to_string())
    };
    let bind_like = |m: &&super::model::Mount| {
        m.short
            && (m.kind == MountKind::Bind || (m.kind == MountKind::Volume && !m.source.is_empty()))
    };
    if s.mounts.iter().any(|m| bind_like(&m)) {
        w.key("Binds").open_list();
        for m in s.mounts.iter().filter(bind_like) {
            let src = if m.kind == MountKind::Bind {
                m.source.clone()
            } else {
                vol_name(&m.source)
            };
            let mode = if m.read_only { "ro" } else { "rw" };
            w.str(&format!("{src}:{}:{mode}", m.target));
        }
        w.close_list();
    }
    let long = |m: &&super::model::Mount| !m.short;
    if s.mounts.iter().any(|m| long(&m)) {
        w.key("Mounts").open_list();
        for m in s.mounts.iter().filter(long) {
            w.open();
            match m.kind {
                MountKind::Bind => {
                    w.kv("Type", "bind").kv("Source", &m.source);
                }
                MountKind::Volume => {
                    w.kv("Type", "volume");
                    if !m.source.is_empty() {
                        w.kv("Source", &vol_name(&m.source));
                    }
                    if m.nocopy {
                        w.key("VolumeOptions")
                            .open()
                            .kv_bool("NoCopy", true)
                            .close();
                    }
                }
                MountKind::Tmpfs => {
                    w.kv("Type", "tmpfs");
                    if m.tmpfs_size > 0 {
                        w.key("TmpfsOptions")
                            .open()
                            .kv_int("SizeBytes", m.tmpfs_size)
                            .close();
                    }
                }
            }
            w.kv("Target", &m.target)
                .kv_bool("ReadOnly", m.read_only)
                .close();
        }
        w.close_list();
    }
    match &s.network_mode {
        Some(m) => match m.strip_prefix("service:") {
            Some(other) => {
                let id = container_of(other).unwrap_or_else(|| other.to_string());
                w.kv("NetworkMode", &format!("container:{id}"));
            }
            None => {
                w.kv("NetworkMode", m);
            }
        },
        None => {
            if let Some(first) = first_net {
                w.kv("NetworkMode", first);
            }
        }
    }
    if let Some((name, n)) = &s.restart {
        w.key("RestartPolicy")
            .open()
            .kv("Name", name)
            .kv_int("MaximumRetryCount", *n)
            .close();
    }
    w.kv_list_nonempty("CapAdd", &s.cap_add)
        .kv_list_nonempty("CapDrop", &s.cap_drop)
        .kv_list_nonempty("Dns", &s.dns)
        .kv_list_nonempty("ExtraHosts", &s.extra_hosts);
    if s.privileged {
        w.kv_bool("Privileged", true);
    }
    if let Some(i) = s.init {
        w.kv_bool("Init", i);
    }
    for (k, v) in [
        ("ShmSize", s.shm_size),
        ("Memory", s.memory),
        ("NanoCpus", s.nano_cpus),
        ("PidsLimit", s.pids_limit),
    ] {
        if let Some(v) = v {
            w.kv_int(k, v);
        }
    }
    if !s.sysctls.is_empty() {
        w.kv_map("Sysctls", &s.sysctls);
    }
    if !s.ulimits.is_empty() {
        w.key("Ulimits").open_list();
        for u in &s.ulimits {
            w.open()
                .kv("Name", &u.name)
                .kv_int("Soft", u.soft)
                .kv_int("Hard", u.hard)
                .close();
        }
        w.close_list();
    }
    if !s.devices.is_empty() {
        w.key("Devices").open_list();
        for (h, c, perm) in &s.devices {
            w.open()
                .kv("PathOnHost", h)
                .kv("PathInContainer", c)
                .kv("CgroupPermissions", perm)
                .close();
        }
        w.close_list();
    }
    if let Some((driver, opts)) = &s.logging {
        w.key("LogConfig")
            .open()
            .kv("Type", driver)
            .kv_map("Config", opts)
            .close();
    }
}

fn write_resource_labels(w: &mut Json<'_>, project: &str, r: &Resource, key_label: &str) {
    w.key("Labels").open();
    for (k, v) in &r.labels {
        w.kv(k, v);
    }
    w.kv(LABEL_PROJECT, project)
        .kv(key_label, &r.key)
        .kv(LABEL_VERSION, &version_label())
        .close();
}

/// `POST /networks/create` body of a (non-external) network.
pub fn network_body(project: &str, n: &Resource) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Json::new(&mut out);
    w.open()
        .kv("Name", &n.name)
        .kv_bool("CheckDuplicate", true)
        .kv(
            "Driver",
            if n.driver.is_empty() {
                "bridge"
            } else {
                &n.driver
            },
        )
        .kv_map("Options", &n.driver_opts)
        .kv_bool("Internal", n.internal)
        .kv_bool("Attachable", n.attachable)
        .kv_bool("EnableIPv6", n.enable_ipv6);
    if !n.ipam_driver.is_empty() || !n.ipam_config.is_empty() {
        let driver = if n.ipam_driver.is_empty() {
            "default"
        } else {
            &n.ipam_driver
        };
        w.key("IPAM")
            .open()
            .kv("Driver", driver)
            .key("Config")
            .open_list();
        for (subnet, range, gateway) in &n.ipam_config {
            w.open();
            for (k, v) in [("Subnet", subnet), ("IPRange", range), ("Gateway", gateway)] {
                if !v.is_empty() {
                    w.kv(k, v);
                }
            }
            w.close();
        }
        w.close_list().close();
    }
    write_resource_labels(&mut w, project, n, LABEL_NETWORK);
    w.close();
    out
}

/// `POST /volumes/create` body of a (non-external) volume.
pub fn volume_body(project: &str, v: &Resource) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Json::new(&mut out);
    w.open()
        .kv("Name", &v.name)
        .kv(
            "Driver",
            if v.driver.is_empty() {
                "local"
            } else {
                &v.driver
            },
        )
        .kv_map("DriverOpts", &v.driver_opts);
    write_resource_labels(&mut w, project, v, LABEL_VOLUME);
    w.close();
    out
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
    use serde_json::json;

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
        let b: serde_json::Value = serde_json::from_slice(&b).unwrap();
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
