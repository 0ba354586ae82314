//! The compose model: a parsed, interpolated YAML tree → a [`Project`] of services, networks and
//! volumes, validated strictly, pure (files are handed in, nothing is read here).
//!
//! Read this first: the compose specification (compose-spec.io), the subset listed in issue 16.
//! Any key this agent does not implement stops the deployment with an error naming the key and
//! its line: a silently different container is worse than no container. `x-` extension keys are
//! allowed and ignored, as compose does; `version` is obsolete and ignored; `build` is refused
//! (the agent does not build images).
use super::interp::{self, interpolate};
use super::yaml::{self, Line, Node};
use crate::limits::COMPOSE_SERVICES_MAX;
use std::fmt;

/// Why a compose file cannot be deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The YAML itself.
    Yaml(yaml::Error),
    /// A key this agent does not implement.
    Unsupported {
        /// Where: `services.web.secrets`.
        path: String,
        /// 1-based line.
        line: u32,
        /// Why, when there is more to say (`build`).
        note: &'static str,
    },
    /// A value of the wrong shape or an invalid one.
    Invalid {
        /// Where.
        path: String,
        /// 1-based line.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// Interpolation failed.
    Interpolation {
        /// Where.
        path: String,
        /// 1-based line.
        line: u32,
        /// The interpolation error.
        error: interp::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Yaml(e) => e.fmt(f),
            Error::Unsupported { path, line, note } => {
                write!(f, "line {line}: `{path}` is not supported by this agent")?;
                if !note.is_empty() {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Error::Invalid {
                path,
                line,
                message,
            } => {
                write!(f, "line {line}: `{path}`: {message}")
            }
            Error::Interpolation { path, line, error } => {
                write!(f, "line {line}: `{path}`: {error}")
            }
        }
    }
}

impl From<yaml::Error> for Error {
    fn from(e: yaml::Error) -> Error {
        Error::Yaml(e)
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Host address, empty for all.
    pub host_ip: String,
    /// Host port or range, empty for an ephemeral one.
    pub published: String,
    /// Container port.
    pub target: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// What a `volumes` entry mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host path.
    Bind,
    /// A named volume (a top-level `volumes` key) or, with an empty source, an anonymous one.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Bind, volume or tmpfs.
    pub kind: MountKind,
    /// Host path (absolute after resolution) or the volume's key in the file; empty for anonymous
    /// volumes and tmpfs.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
    /// Whether it came in short syntax (`a:b:ro`): compose then creates a missing host path.
    pub short: bool,
    /// tmpfs size in bytes (0: Docker's default).
    pub tmpfs_size: i64,
    /// `volume.nocopy`.
    pub nocopy: bool,
}

/// A network a service joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// The key in the top-level `networks` (`default` for the implicit one).
    pub name: String,
    /// Extra aliases.
    pub aliases: Vec<String>,
    /// Static IPv4 address.
    pub ipv4_address: String,
    /// Static IPv6 address.
    pub ipv6_address: String,
}

/// A `depends_on` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Started.
    Started,
    /// Healthy (its healthcheck passed).
    Healthy,
    /// Exited with code 0.
    CompletedSuccessfully,
}

/// A healthcheck (durations in nanoseconds, as Docker wants them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["NONE"]` when disabled, `["CMD", …]` or `["CMD-SHELL", "…"]`; empty: the image's test.
    pub test: Vec<String>,
    /// Interval.
    pub interval_ns: i64,
    /// Timeout.
    pub timeout_ns: i64,
    /// Retries.
    pub retries: i64,
    /// Start period.
    pub start_period_ns: i64,
    /// Start interval.
    pub start_interval_ns: i64,
}

/// One `ulimits` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// `nofile`, `nproc`, ….
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// One service, with every value resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// The key under `services`.
    pub name: String,
    /// `image`.
    pub image: String,
    /// `container_name`.
    pub container_name: Option<String>,
    /// `command`: `None` keeps the image's.
    pub command: Option<Vec<String>>,
    /// `entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` values then `environment`, as `KEY=VALUE`, sorted by key.
    pub environment: Vec<String>,
    /// `env_file` paths (relative to the project directory), read by the caller.
    pub env_files: Vec<(String, bool)>,
    /// `ports`.
    pub ports: Vec<Port>,
    /// `expose` (`80`, `80/udp`).
    pub expose: Vec<String>,
    /// `volumes`.
    pub mounts: Vec<Mount>,
    /// `networks` (empty with `network_mode`).
    pub networks: Vec<ServiceNetwork>,
    /// `network_mode`.
    pub network_mode: Option<String>,
    /// `depends_on`: service, condition, required.
    pub depends_on: Vec<(String, Condition, bool)>,
    /// `restart`: Docker's policy name and retry count.
    pub restart: Option<(String, i64)>,
    /// `labels`, sorted.
    pub labels: Vec<(String, String)>,
    /// `healthcheck`.
    pub healthcheck: Option<Healthcheck>,
    /// `user`.
    pub user: Option<String>,
    /// `working_dir`.
    pub working_dir: Option<String>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `cap_add`.
    pub cap_add: Vec<String>,
    /// `cap_drop`.
    pub cap_drop: Vec<String>,
    /// `devices`: host, container, permissions.
    pub devices: Vec<(String, String, String)>,
    /// `privileged`.
    pub privileged: bool,
    /// `extra_hosts` as `host:ip`.
    pub extra_hosts: Vec<String>,
    /// `dns`.
    pub dns: Vec<String>,
    /// `logging`: driver and options.
    pub logging: Option<(String, Vec<(String, String)>)>,
    /// `stop_grace_period` in seconds.
    pub stop_grace_period_s: Option<i64>,
    /// `stop_signal`.
    pub stop_signal: Option<String>,
    /// `init`.
    pub init: Option<bool>,
    /// `tty`.
    pub tty: bool,
    /// `stdin_open`.
    pub stdin_open: bool,
    /// `ulimits`.
    pub ulimits: Vec<Ulimit>,
    /// `sysctls`, sorted.
    pub sysctls: Vec<(String, String)>,
    /// `shm_size` in bytes.
    pub shm_size: Option<i64>,
    /// `mem_limit` or `deploy.resources.limits.memory`, bytes.
    pub memory: Option<i64>,
    /// `cpus` or `deploy.resources.limits.cpus`, in 1e-9 CPUs.
    pub nano_cpus: Option<i64>,
    /// `deploy.resources.limits.pids`.
    pub pids_limit: Option<i64>,
    /// `profiles`.
    pub profiles: Vec<String>,
}

/// A top-level network or volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resource {
    /// The key in the file.
    pub key: String,
    /// The engine's name: `name:`, else `<project>_<key>` (or the key itself when external).
    pub name: String,
    /// `external`: must exist, never created or removed.
    pub external: bool,
    /// `driver` (empty: the engine's default).
    pub driver: String,
    /// `driver_opts`, sorted.
    pub driver_opts: Vec<(String, String)>,
    /// `labels`, sorted.
    pub labels: Vec<(String, String)>,
    /// Networks: `ipam.driver`.
    pub ipam_driver: String,
    /// Networks: `ipam.config` entries (subnet, ip_range, gateway).
    pub ipam_config: Vec<(String, String, String)>,
    /// Networks: `internal`.
    pub internal: bool,
    /// Networks: `attachable`.
    pub attachable: bool,
    /// Networks: `enable_ipv6`.
    pub enable_ipv6: bool,
}

/// A whole project.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Project {
    /// The project name (normalised).
    pub name: String,
    /// Active services (profiles applied), in file order.
    pub services: Vec<Service>,
    /// Every service name in the file, active or not.
    pub all_services: Vec<String>,
    /// Networks, the implicit `default` included when a service uses it.
    pub networks: Vec<Resource>,
    /// Volumes.
    pub volumes: Vec<Resource>,
}

/// A project name as compose normalises it: lowercase, only `[a-z0-9_-]`, starting with a letter
/// or digit. `None` when nothing is left.
pub fn normalize_project_name(name: &str) -> Option<String> {
    let n: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let n = n.trim_start_matches(['_', '-']).to_string();
    (!n.is_empty()).then_some(n)
}

/// Reads an `env_file`: its pairs, `None` when it does not exist, or a message.
pub type ReadEnvFile<'a> = dyn Fn(&str) -> Result<Option<Vec<(String, String)>>, String> + 'a;

/// What [`load`] needs besides the YAML.
pub struct Input<'a> {
    /// The project name (already normalised).
    pub project: &'a str,
    /// Variables for interpolation (the env files, `.env` first, later files win).
    pub vars: &'a [(String, String)],
    /// Active profiles (`*` activates all).
    pub profiles: &'a [String],
    /// The project directory: relative bind sources resolve against it.
    pub project_dir: &'a str,
    /// Reads an `env_file` (path relative to the project directory) → its pairs, or a message.
    pub read_env_file: &'a ReadEnvFile<'a>,
}

/// Parses, interpolates and validates a compose file.
pub fn load(text: &str, input: &Input<'_>) -> Result<Project, Error> {
    let tree = yaml::parse(text)?;
    let get = |k: &str| {
        input
            .vars
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let root = Line { v: tree, line: 1 };
    let root = interpolate_tree(root, "", &get)?;
    let top = V::new(&root, String::new());
    let top = top.map()?;
    let mut project = Project {
        name: input.project.to_string(),
        ..Default::default()
    };
    let mut services_node = None;
    for (k, v) in &top {
        match k.as_str() {
            "version" | "name" => {}
            "services" => services_node = Some(v),
            "networks" | "volumes" => {}
            k if k.starts_with("x-") => {}
            _ => return Err(v.unsupported("")),
        }
    }
    for (k, v) in &top {
        match k.as_str() {
            "networks" => {
                for (key, n) in v.map_or_empty()? {
                    project
                        .networks
                        .push(resource(&key, &n, input.project, true)?);
                }
            }
            "volumes" => {
                for (key, n) in v.map_or_empty()? {
                    project
                        .volumes
                        .push(resource(&key, &n, input.project, false)?);
                }
            }
            _ => {}
        }
    }
    let services_node = services_node.ok_or(Error::Invalid {
        path: "services".into(),
        line: 1,
        message: "the file has no services".into(),
    })?;
    let services = services_node.map()?;
    if services.is_empty() {
        return Err(services_node.invalid("the file has no services"));
    }
    if services.len() > COMPOSE_SERVICES_MAX {
        return Err(services_node.invalid(&format!(
            "{} services, more than {COMPOSE_SERVICES_MAX}",
            services.len()
        )));
    }
    let all = |p: &str| p == "*" || input.profiles.iter().any(|q| q == p || q == "*");
    for (name, node) in &services {
        project.all_services.push(name.clone());
        let s = service(name, node, input, &get)?;
        if s.profiles.is_empty() || s.profiles.iter().any(|p| all(p)) {
            project.services.push(s);
        }
    }
    // References: depends_on, networks, volumes, network_mode service:x.
    let active: Vec<String> = project.services.iter().map(|s| s.name.clone()).collect();
    let mut uses_default = false;
    for s in &project.services {
        for (d, _, required) in &s.depends_on {
            if !active.contains(d) && *required {
                let why = if project.all_services.contains(d) {
                    "is not enabled by the active profiles"
                } else {
                    "is not defined"
                };
                return Err(Error::Invalid {
                    path: format!("services.{}.depends_on", s.name),
                    line: 0,
                    message: format!("service `{d}` {why}"),
                });
            }
        }
        if let Some(m) = &s.network_mode {
            if let Some(other) = m.strip_prefix("service:") {
                if !active.contains(&other.to_string()) {
                    return Err(Error::Invalid {
                        path: format!("services.{}.network_mode", s.name),
                        line: 0,
                        message: format!("service `{other}` is not defined or not enabled"),
                    });
                }
            }
        }
        for n in &s.networks {
            if n.name == "default" && !project.networks.iter().any(|r| r.key == "default") {
                uses_default = true;
            } else if !project.networks.iter().any(|r| r.key == n.name) {
                return Err(Error::Invalid {
                    path: format!("services.{}.networks", s.name),
                    line: 0,
                    message: format!(
                        "network `{}` is not declared under top-level networks",
                        n.name
                    ),
                });
            }
        }
        for m in &s.mounts {
            if m.kind == MountKind::Volume
                && !m.source.is_empty()
                && !project.volumes.iter().any(|v| v.key == m.source)
            {
                return Err(Error::Invalid {
                    path: format!("services.{}.volumes", s.name),
                    line: 0,
                    message: format!(
                        "volume `{}` is not declared under top-level volumes",
                        m.source
                    ),
                });
            }
        }
    }
    if uses_default {
        project.networks.insert(
            0,
            Resource {
                key: "default".into(),
                name: format!("{}_default", input.project),
                ..Default::default()
            },
        );
    }
    check_cycles(&project)?;
    Ok(project)
}

fn check_cycles(p: &Project) -> Result<(), Error> {
    // Depth-first over depends_on; a service met again on the current path is a cycle.
    fn visit(p: &Project, name: &str, path: &mut Vec<String>) -> Result<(), Error> {
        if path.iter().any(|n| n == name) {
            return Err(Error::Invalid {
                path: format!("services.{name}.depends_on"),
                line: 0,
                message: format!("dependency cycle: {} -> {name}", path.join(" -> ")),
            });
        }
        let Some(s) = p.services.iter().find(|s| s.name == name) else {
            return Ok(());
        };
        path.push(name.to_string());
        for (d, _, _) in &s.depends_on {
            visit(p, d, path)?;
        }
        if let Some(other) = s
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            visit(p, other, path)?;
        }
        path.pop();
        Ok(())
    }
    for s in &p.services {
        visit(p, &s.name, &mut Vec::new())?;
    }
    Ok(())
}

fn interpolate_tree(
    node: Line<Node>,
    path: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Line<Node>, Error> {
    let line = node.line;
    let v = match node.v {
        Node::Scalar(s, plain) => {
            let s = if s.contains('$') {
                interpolate(&s, get).map_err(|error| Error::Interpolation {
                    path: path.trim_start_matches('.').to_string(),
                    line,
                    error,
                })?
            } else {
                s
            };
            Node::Scalar(s, plain)
        }
        Node::Seq(items) => Node::Seq(
            items
                .into_iter()
                .enumerate()
                .map(|(i, n)| interpolate_tree(n, &format!("{path}[{i}]"), get))
                .collect::<Result<_, _>>()?,
        ),
        Node::Map(items) => Node::Map(
            items
                .into_iter()
                .map(|(k, n)| {
                    // Extension fields are not interpolated (they are never used by us).
                    if k.starts_with("x-") {
                        return Ok((k, n));
                    }
                    let p = format!("{path}.{k}");
                    Ok((k, interpolate_tree(n, &p, get)?))
                })
                .collect::<Result<_, Error>>()?,
        ),
    };
    Ok(Line { v, line })
}

/// A node with its path, for error messages.
#[derive(Clone)]
struct V<'a> {
    n: &'a Line<Node>,
    path: String,
}

impl<'a> V<'a> {
    fn new(n: &'a Line<Node>, path: String) -> Self {
        V { n, path }
    }
    fn invalid(&self, message: &str) -> Error {
        Error::Invalid {
            path: self.path.clone(),
            line: self.n.line,
            message: message.to_string(),
        }
    }
    fn unsupported(&self, note: &'static str) -> Error {
        Error::Unsupported {
            path: self.path.clone(),
            line: self.n.line,
            note,
        }
    }
    fn child(&self, key: &str, n: &'a Line<Node>) -> V<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        V::new(n, path)
    }
    fn is_null(&self) -> bool {
        matches!(&self.n.v, Node::Scalar(s, true) if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    }
    fn map(&self) -> Result<Vec<(String, V<'a>)>, Error> {
        match &self.n.v {
            Node::Map(m) => Ok(m
                .iter()
                .map(|(k, n)| (k.clone(), self.child(k, n)))
                .collect()),
            _ => Err(self.invalid("must be a mapping")),
        }
    }
    fn map_or_empty(&self) -> Result<Vec<(String, V<'a>)>, Error> {
        if self.is_null() {
            return Ok(Vec::new());
        }
        self.map()
    }
    fn seq(&self) -> Result<Vec<V<'a>>, Error> {
        match &self.n.v {
            Node::Seq(l) => Ok(l
                .iter()
                .enumerate()
                .map(|(i, n)| V::new(n, format!("{}[{i}]", self.path)))
                .collect()),
            _ => Err(self.invalid("must be a list")),
        }
    }
    fn str(&self) -> Result<String, Error> {
        match &self.n.v {
            Node::Scalar(s, _) => Ok(s.clone()),
            _ => Err(self.invalid("must be a string")),
        }
    }
    fn opt_str(&self) -> Result<Option<String>, Error> {
        if self.is_null() {
            return Ok(None);
        }
        self.str().map(Some)
    }
    fn bool(&self) -> Result<bool, Error> {
        match &self.n.v {
            Node::Scalar(s, _) => match s.as_str() {
                "true" | "True" | "TRUE" => Ok(true),
                "false" | "False" | "FALSE" => Ok(false),
                _ => Err(self.invalid("must be true or false")),
            },
            _ => Err(self.invalid("must be true or false")),
        }
    }
    fn int(&self) -> Result<i64, Error> {
        self.str()?
            .parse()
            .map_err(|_| self.invalid("must be an integer"))
    }
    /// A string or a list of strings.
    fn str_list(&self) -> Result<Vec<String>, Error> {
        match &self.n.v {
            Node::Scalar(..) if self.is_null() => Ok(Vec::new()),
            Node::Scalar(s, _) => Ok(vec![s.clone()]),
            Node::Seq(_) => self.seq()?.iter().map(|v| v.str()).collect(),
            _ => Err(self.invalid("must be a string or a list of strings")),
        }
    }
    /// A list only.
    fn list(&self) -> Result<Vec<String>, Error> {
        if self.is_null() {
            return Ok(Vec::new());
        }
        self.seq()?.iter().map(|v| v.str()).collect()
    }
    /// `KEY=VALUE` list or `KEY: VALUE` map → pairs (`None` value: `KEY` alone or `KEY: null`).
    fn pairs(&self, sep: char) -> Result<Vec<(String, Option<String>)>, Error> {
        match &self.n.v {
            Node::Map(_) => self
                .map()?
                .into_iter()
                .map(|(k, v)| Ok((k, v.opt_str()?)))
                .collect(),
            Node::Seq(_) => self
                .seq()?
                .iter()
                .map(|v| {
                    let s = v.str()?;
                    Ok(match s.split_once(sep) {
                        Some((k, val)) => (k.to_string(), Some(val.to_string())),
                        None => (s, None),
                    })
                })
                .collect(),
            _ if self.is_null() => Ok(Vec::new()),
            _ => Err(self.invalid("must be a list or a mapping")),
        }
    }
    /// Like [`V::pairs`] with every value present (`None` → empty), sorted by key.
    fn labels(&self) -> Result<Vec<(String, String)>, Error> {
        let mut l: Vec<(String, String)> = self
            .pairs('=')?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
        super::sort(&mut l);
        l.dedup_by(|a, b| a.0 == b.0);
        Ok(l)
    }
    fn bytes(&self) -> Result<i64, Error> {
        parse_bytes(&self.str()?).ok_or_else(|| self.invalid("must be a byte size like 512m or 1g"))
    }
    fn duration_ns(&self) -> Result<i64, Error> {
        parse_duration_ns(&self.str()?)
            .ok_or_else(|| self.invalid("must be a duration like 30s, 1m30s or 500ms"))
    }
    fn cpus(&self) -> Result<i64, Error> {
        let f: f64 = self
            .str()?
            .parse()
            .map_err(|_| self.invalid("must be a number of CPUs"))?;
        if !(0.0..=1024.0).contains(&f) {
            return Err(self.invalid("must be between 0 and 1024"));
        }
        Ok((f * 1e9).round() as i64)
    }
}

/// `512`, `512b`, `64k`, `512m`, `1g` (also `kb`, `mb`, `gb`, any case) → bytes.
pub fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && (0.0..9.0e18).contains(&v)).then_some(v as i64)
}

/// Go duration syntax (`1h2m3s`, `500ms`, `1.5s`, `10us`) → nanoseconds.
pub fn parse_duration_ns(s: &str) -> Option<i64> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    (total < 9.0e18).then_some(total as i64)
}

fn resource(key: &str, v: &V<'_>, project: &str, network: bool) -> Result<Resource, Error> {
    let mut r = Resource {
        key: key.to_string(),
        ..Default::default()
    };
    let mut name = None;
    for (k, c) in v.map_or_empty()? {
        match k.as_str() {
            "name" => name = Some(c.str()?),
            "external" => {
                r.external = match &c.n.v {
                    Node::Map(_) => {
                        for (ek, ev) in c.map()? {
                            match ek.as_str() {
                                "name" => name = Some(ev.str()?),
                                _ => return Err(ev.unsupported("")),
                            }
                        }
                        true
                    }
                    _ => c.bool()?,
                }
            }
            "driver" => r.driver = c.str()?,
            "driver_opts" => {
                r.driver_opts = c
                    .map_or_empty()?
                    .into_iter()
                    .map(|(k, v)| Ok((k, v.str()?)))
                    .collect::<Result<_, Error>>()?;
                super::sort(&mut r.driver_opts);
            }
            "labels" => r.labels = c.labels()?,
            "ipam" if network => {
                for (ik, iv) in c.map()? {
                    match ik.as_str() {
                        "driver" => r.ipam_driver = iv.str()?,
                        "config" => {
                            for e in iv.seq()? {
                                let (mut s, mut rng, mut g) =
                                    (String::new(), String::new(), String::new());
                                for (ck, cv) in e.map()? {
                                    match ck.as_str() {
                                        "subnet" => s = cv.str()?,
                                        "ip_range" => rng = cv.str()?,
                                        "gateway" => g = cv.str()?,
                                        _ => return Err(cv.unsupported("")),
                                    }
                                }
                                r.ipam_config.push((s, rng, g));
                            }
                        }
                        _ => return Err(iv.unsupported("")),
                    }
                }
            }
            "internal" if network => r.internal = c.bool()?,
            "attachable" if network => r.attachable = c.bool()?,
            "enable_ipv6" if network => r.enable_ipv6 = c.bool()?,
            k if k.starts_with("x-") => {}
            _ => return Err(c.unsupported("")),
        }
    }
    if r.external
        && (!r.driver.is_empty() || !r.driver_opts.is_empty() || !r.ipam_config.is_empty())
    {
        return Err(v.invalid("an external resource takes no driver, driver_opts or ipam"));
    }
    r.name = match name {
        Some(n) => n,
        None if r.external => key.to_string(),
        None => format!("{project}_{key}"),
    };
    Ok(r)
}

fn service(
    name: &str,
    node: &V<'_>,
    input: &Input<'_>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Service, Error> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(node.invalid("a service name takes only letters, digits, `_`, `-` and `.`"));
    }
    let mut s = Service {
        name: name.to_string(),
        ..Default::default()
    };
    let mut env_pairs: Vec<(String, Option<String>)> = Vec::new();
    let mut networks_seen = false;
    for (k, v) in node.map()? {
        match k.as_str() {
            "image" => s.image = v.str()?,
            "build" => return Err(v.unsupported(
                "the agent does not build images; push the image to a registry and use `image:`",
            )),
            "container_name" => s.container_name = v.opt_str()?,
            "command" => s.command = command(&v)?,
            "entrypoint" => s.entrypoint = command(&v)?,
            "environment" => env_pairs = v.pairs('=')?,
            "env_file" => {
                s.env_files = match &v.n.v {
                    Node::Seq(_) => v
                        .seq()?
                        .iter()
                        .map(|e| match &e.n.v {
                            Node::Map(_) => {
                                let (mut p, mut req) = (String::new(), true);
                                for (ek, ev) in e.map()? {
                                    match ek.as_str() {
                                        "path" => p = ev.str()?,
                                        "required" => req = ev.bool()?,
                                        _ => return Err(ev.unsupported("")),
                                    }
                                }
                                Ok((p, req))
                            }
                            _ => Ok((e.str()?, true)),
                        })
                        .collect::<Result<_, Error>>()?,
                    _ => vec![(v.str()?, true)],
                }
            }
            "ports" => {
                for p in v.seq()? {
                    s.ports.extend(port(&p)?);
                }
            }
            "expose" => s.expose = v.list()?,
            "volumes" => {
                for m in v.seq()? {
                    s.mounts.push(mount(&m, input.project_dir)?);
                }
            }
            "networks" => {
                networks_seen = true;
                s.networks = match &v.n.v {
                    Node::Seq(_) => v
                        .list()?
                        .into_iter()
                        .map(|n| ServiceNetwork {
                            name: n,
                            aliases: vec![],
                            ipv4_address: String::new(),
                            ipv6_address: String::new(),
                        })
                        .collect(),
                    _ => {
                        let mut l = Vec::new();
                        for (nk, nv) in v.map()? {
                            let mut sn = ServiceNetwork {
                                name: nk,
                                aliases: vec![],
                                ipv4_address: String::new(),
                                ipv6_address: String::new(),
                            };
                            for (ak, av) in nv.map_or_empty()? {
                                match ak.as_str() {
                                    "aliases" => sn.aliases = av.list()?,
                                    "ipv4_address" => sn.ipv4_address = av.str()?,
                                    "ipv6_address" => sn.ipv6_address = av.str()?,
                                    _ => return Err(av.unsupported("")),
                                }
                            }
                            l.push(sn);
                        }
                        l
                    }
                };
            }
            "network_mode" => s.network_mode = Some(v.str()?),
            "depends_on" => {
                s.depends_on = match &v.n.v {
                    Node::Seq(_) => v
                        .list()?
                        .into_iter()
                        .map(|d| (d, Condition::Started, true))
                        .collect(),
                    _ => {
                        let mut l = Vec::new();
                        for (dk, dv) in v.map()? {
                            let (mut cond, mut req) = (Condition::Started, true);
                            for (ck, cv) in dv.map_or_empty()? {
                                match ck.as_str() {
                                    "condition" => {
                                        cond = match cv.str()?.as_str() {
                                            "service_started" => Condition::Started,
                                            "service_healthy" => Condition::Healthy,
                                            "service_completed_successfully" => {
                                                Condition::CompletedSuccessfully
                                            }
                                            _ => return Err(cv.invalid("must be service_started, service_healthy or service_completed_successfully")),
                                        }
                                    }
                                    "required" => req = cv.bool()?,
                                    _ => return Err(cv.unsupported("")),
                                }
                            }
                            l.push((dk, cond, req));
                        }
                        l
                    }
                }
            }
            "restart" => s.restart = Some(restart(&v)?),
            "labels" => s.labels = v.labels()?,
            "healthcheck" => s.healthcheck = Some(healthcheck(&v)?),
            "user" => s.user = v.opt_str()?,
            "working_dir" => s.working_dir = v.opt_str()?,
            "hostname" => s.hostname = v.opt_str()?,
            "cap_add" => s.cap_add = v.list()?,
            "cap_drop" => s.cap_drop = v.list()?,
            "devices" => {
                for d in v.list()? {
                    let mut parts = d.splitn(3, ':');
                    let host = parts.next().unwrap_or_default().to_string();
                    let cont = parts
                        .next()
                        .map(str::to_string)
                        .unwrap_or_else(|| host.clone());
                    let perm = parts.next().unwrap_or("rwm").to_string();
                    s.devices.push((host, cont, perm));
                }
            }
            "privileged" => s.privileged = v.bool()?,
            "extra_hosts" => {
                s.extra_hosts = match &v.n.v {
                    Node::Map(_) => v
                        .map()?
                        .into_iter()
                        .map(|(h, ip)| Ok(format!("{h}:{}", ip.str()?)))
                        .collect::<Result<_, Error>>()?,
                    _ => v
                        .list()?
                        .into_iter()
                        .map(|e| match e.split_once('=') {
                            Some((h, ip)) => format!("{h}:{ip}"),
                            None => e,
                        })
                        .collect(),
                }
            }
            "dns" => s.dns = v.str_list()?,
            "logging" => {
                let (mut driver, mut opts) = (String::new(), Vec::new());
                for (lk, lv) in v.map()? {
                    match lk.as_str() {
                        "driver" => driver = lv.str()?,
                        "options" => {
                            opts = lv
                                .map_or_empty()?
                                .into_iter()
                                .map(|(k, v)| Ok((k, v.str()?)))
                                .collect::<Result<_, Error>>()?
                        }
                        _ => return Err(lv.unsupported("")),
                    }
                }
                super::sort(&mut opts);
                s.logging = Some((driver, opts));
            }
            "stop_grace_period" => s.stop_grace_period_s = Some(v.duration_ns()? / 1_000_000_000),
            "stop_signal" => s.stop_signal = v.opt_str()?,
            "init" => s.init = Some(v.bool()?),
            "tty" => s.tty = v.bool()?,
            "stdin_open" => s.stdin_open = v.bool()?,
            "ulimits" => {
                for (uk, uv) in v.map()? {
                    let (soft, hard) = match &uv.n.v {
                        Node::Scalar(..) => {
                            let n = uv.int()?;
                            (n, n)
                        }
                        _ => {
                            let (mut soft, mut hard) = (None, None);
                            for (lk, lv) in uv.map()? {
                                match lk.as_str() {
                                    "soft" => soft = Some(lv.int()?),
                                    "hard" => hard = Some(lv.int()?),
                                    _ => return Err(lv.unsupported("")),
                                }
                            }
                            match (soft, hard) {
                                (Some(s), Some(h)) => (s, h),
                                _ => return Err(uv.invalid("needs soft and hard")),
                            }
                        }
                    };
                    s.ulimits.push(Ulimit {
                        name: uk,
                        soft,
                        hard,
                    });
                }
            }
            "sysctls" => s.sysctls = v.labels()?,
            "shm_size" => s.shm_size = Some(v.bytes()?),
            "mem_limit" => s.memory = Some(v.bytes()?),
            "cpus" => s.nano_cpus = Some(v.cpus()?),
            "deploy" => {
                for (dk, dv) in v.map()? {
                    match dk.as_str() {
                        "resources" => {
                            for (rk, rv) in dv.map()? {
                                match rk.as_str() {
                                    "limits" => {
                                        for (lk, lv) in rv.map()? {
                                            match lk.as_str() {
                                                "cpus" => s.nano_cpus = Some(lv.cpus()?),
                                                "memory" => s.memory = Some(lv.bytes()?),
                                                "pids" => s.pids_limit = Some(lv.int()?),
                                                _ => return Err(lv.unsupported("")),
                                            }
                                        }
                                    }
                                    _ => return Err(rv.unsupported("")),
                                }
                            }
                        }
                        _ => return Err(dv.unsupported("")),
                    }
                }
            }
            "profiles" => s.profiles = v.list()?,
            k if k.starts_with("x-") => {}
            _ => return Err(v.unsupported("")),
        }
    }
    if s.image.is_empty() {
        return Err(node.invalid("`image` is required (the agent does not build images)"));
    }
    if s.network_mode.is_some() && networks_seen {
        return Err(node.invalid("`network_mode` and `networks` cannot be used together"));
    }
    if s.network_mode.is_none() && !networks_seen {
        s.networks.push(ServiceNetwork {
            name: "default".into(),
            aliases: vec![],
            ipv4_address: String::new(),
            ipv6_address: String::new(),
        });
    }
    // Environment: env_file values first, then `environment`; a key without value takes the
    // interpolation variables' value, or is left out (compose: unset → not set).
    let mut env: Vec<(String, String)> = Vec::new();
    for (path, required) in &s.env_files {
        match (input.read_env_file)(path) {
            Ok(Some(pairs)) => {
                for (k, v) in pairs {
                    env.retain(|(have, _)| *have != k);
                    env.push((k, v));
                }
            }
            Ok(None) if !required => {}
            Ok(None) => {
                return Err(Error::Invalid {
                    path: format!("services.{name}.env_file"),
                    line: node.n.line,
                    message: format!("env file {path} not found"),
                })
            }
            Err(message) => {
                return Err(Error::Invalid {
                    path: format!("services.{name}.env_file"),
                    line: node.n.line,
                    message,
                })
            }
        }
    }
    for (k, v) in env_pairs {
        env.retain(|(have, _)| *have != k);
        if let Some(v) = v.or_else(|| get(&k)) {
            env.push((k, v));
        }
    }
    super::sort(&mut env);
    s.environment = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(s)
}

fn command(v: &V<'_>) -> Result<Option<Vec<String>>, Error> {
    if v.is_null() {
        return Ok(None);
    }
    match &v.n.v {
        Node::Scalar(s, _) => Ok(Some(
            shell_words(s).ok_or_else(|| v.invalid("unbalanced quotes"))?,
        )),
        _ => v.list().map(Some),
    }
}

/// Splits a command string the way compose does (POSIX shell words: quotes and backslashes, no
/// expansion). `None` on an unbalanced quote.
pub fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            '\n' => {}
                            c => {
                                cur.push('\\');
                                cur.push(c)
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(c) => cur.push(c),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

fn restart(v: &V<'_>) -> Result<(String, i64), Error> {
    let s = v.str()?;
    match s.as_str() {
        "no" | "always" | "unless-stopped" | "on-failure" => Ok((s, 0)),
        _ => match s.strip_prefix("on-failure:").map(str::parse::<i64>) {
            Some(Ok(n)) if n >= 0 => Ok(("on-failure".into(), n)),
            _ => Err(v.invalid("must be no, always, unless-stopped or on-failure[:N]")),
        },
    }
}

fn healthcheck(v: &V<'_>) -> Result<Healthcheck, Error> {
    let mut h = Healthcheck::default();
    let mut disable = false;
    for (k, c) in v.map()? {
        match k.as_str() {
            "test" => {
                h.test = match &c.n.v {
                    Node::Scalar(s, _) => vec!["CMD-SHELL".into(), s.clone()],
                    _ => c.list()?,
                };
                if let Some(first) = h.test.first() {
                    if !["NONE", "CMD", "CMD-SHELL"].contains(&first.as_str()) {
                        return Err(c.invalid("a list must start with CMD, CMD-SHELL or NONE"));
                    }
                }
            }
            "interval" => h.interval_ns = c.duration_ns()?,
            "timeout" => h.timeout_ns = c.duration_ns()?,
            "retries" => h.retries = c.int()?,
            "start_period" => h.start_period_ns = c.duration_ns()?,
            "start_interval" => h.start_interval_ns = c.duration_ns()?,
            "disable" => disable = c.bool()?,
            _ => return Err(c.unsupported("")),
        }
    }
    if disable {
        h = Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
    }
    Ok(h)
}

fn port(v: &V<'_>) -> Result<Vec<Port>, Error> {
    let bad = || v.invalid("must be like 8080:80, 127.0.0.1:8080:80/udp or a mapping");
    if let Node::Map(_) = &v.n.v {
        let mut p = Port {
            host_ip: String::new(),
            published: String::new(),
            target: 0,
            protocol: "tcp".into(),
        };
        for (k, c) in v.map()? {
            match k.as_str() {
                "target" => p.target = c.str()?.parse().map_err(|_| c.invalid("must be a port"))?,
                "published" => p.published = c.str()?,
                "host_ip" => p.host_ip = c.str()?,
                "protocol" => p.protocol = c.str()?,
                "mode" if c.str()? == "ingress" || c.str()? == "host" => {}
                _ => return Err(c.unsupported("")),
            }
        }
        if p.target == 0 {
            return Err(v.invalid("`target` is required"));
        }
        return Ok(vec![p]);
    }
    let s = v.str()?;
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((a, p)) => (a.to_string(), p.to_string()),
        None => (s.clone(), "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
        return Err(bad());
    }
    // host_ip may be an IPv6 address in brackets.
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r.split_once("]:").ok_or_else(bad)?;
        (ip.to_string(), rest.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), spec.clone()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => return Err(bad()),
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (p.to_string(), t.to_string()),
        None => (String::new(), rest),
    };
    let range = |r: &str| -> Option<(u16, u16)> {
        match r.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => {
                let n = r.parse().ok()?;
                Some((n, n))
            }
        }
    };
    let (t0, t1) = range(&target)
        .filter(|(a, b)| a <= b && *a > 0)
        .ok_or_else(bad)?;
    let pubs = if published.is_empty() {
        None
    } else {
        Some(range(&published).filter(|(a, b)| a <= b).ok_or_else(bad)?)
    };
    let count = t1 - t0;
    let mut out = Vec::new();
    for i in 0..=count {
        let published = match pubs {
            None => String::new(),
            Some((p0, p1)) if p1 - p0 == count => (p0 + i).to_string(),
            Some((p0, p1)) if t0 == t1 => {
                if p0 == p1 {
                    p0.to_string()
                } else {
                    format!("{p0}-{p1}")
                }
            }
            _ => return Err(bad()),
        };
        out.push(Port {
            host_ip: host_ip.clone(),
            published,
            target: t0 + i,
            protocol: protocol.clone(),
        });
    }
    Ok(out)
}

fn resolve(dir: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), p)
    };
    // Lexical clean-up of `.` and `..` (as filepath.Clean).
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn mount(v: &V<'_>, dir: &str) -> Result<Mount, Error> {
    let mut m = Mount {
        kind: MountKind::Volume,
        source: String::new(),
        target: String::new(),
        read_only: false,
        short: false,
        tmpfs_size: 0,
        nocopy: false,
    };
    if let Node::Map(_) = &v.n.v {
        let mut kind = String::new();
        for (k, c) in v.map()? {
            match k.as_str() {
                "type" => kind = c.str()?,
                "source" => m.source = c.str()?,
                "target" => m.target = c.str()?,
                "read_only" => m.read_only = c.bool()?,
                "bind" => {
                    for (bk, bv) in c.map()? {
                        match bk.as_str() {
                            "create_host_path" => m.short = bv.bool()?,
                            _ => return Err(bv.unsupported("")),
                        }
                    }
                }
                "volume" => {
                    for (bk, bv) in c.map()? {
                        match bk.as_str() {
                            "nocopy" => m.nocopy = bv.bool()?,
                            _ => return Err(bv.unsupported("")),
                        }
                    }
                }
                "tmpfs" => {
                    for (bk, bv) in c.map()? {
                        match bk.as_str() {
                            "size" => m.tmpfs_size = bv.bytes()?,
                            _ => return Err(bv.unsupported("")),
                        }
                    }
                }
                _ => return Err(c.unsupported("")),
            }
        }
        m.kind = match kind.as_str() {
            "bind" => MountKind::Bind,
            "volume" => MountKind::Volume,
            "tmpfs" => MountKind::Tmpfs,
            "" => return Err(v.invalid("`type` is required")),
            _ => return Err(v.invalid("`type` must be bind, volume or tmpfs")),
        };
        if m.target.is_empty() {
            return Err(v.invalid("`target` is required"));
        }
        if m.kind == MountKind::Bind {
            if m.source.is_empty() {
                return Err(v.invalid("a bind mount needs `source`"));
            }
            m.source = resolve(dir, &m.source);
        }
        return Ok(m);
    }
    let s = v.str()?;
    m.short = true;
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [a, b] => (*a, *b, ""),
        [a, b, c] => (*a, *b, *c),
        _ => return Err(v.invalid("must be like ./data:/data, name:/data:ro or /data")),
    };
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => m.read_only = true,
            "rw" => {}
            "z" | "Z" | "nocopy" | "rprivate" | "private" | "rshared" | "shared" | "rslave"
            | "slave" => {
                return Err(Error::Unsupported {
                    path: format!("{} (mode {opt})", v.path),
                    line: v.n.line,
                    note: "",
                })
            }
            _ => return Err(v.invalid(&format!("unknown mode `{opt}`"))),
        }
    }
    m.target = dst.to_string();
    if !m.target.starts_with('/') {
        return Err(v.invalid("the container path must be absolute"));
    }
    if src.is_empty() {
        m.kind = MountKind::Volume;
    } else if src.starts_with('/') || src.starts_with('.') || src.starts_with('~') {
        if src.starts_with('~') {
            return Err(v.invalid("`~` paths are not supported: use an absolute path"));
        }
        m.kind = MountKind::Bind;
        m.source = resolve(dir, src);
    } else {
        m.kind = MountKind::Volume;
        m.source = src.to_string();
    }
    Ok(m)
}

#[cfg(test)]
mod tests;
