//! The `register` frame (spec 2.3) and what the backend's answer means (spec 2.4, 2.5). Pure.
//!
//! Compatibility (spec section 6): the backend refuses unknown keys, and older backends know fewer.
//! We send the v2.2.0 key set and add the newer keys only when they carry something: `host_ips` when
//! there is more than one address, `force_unique_registration` and `hostname_source` only with
//! `FORCE_UNIQUE_REGISTRATION=true` (the backend then requires `hostname_source: agent_name`). When an
//! `auth_error` says `Extra inputs are not permitted (field: X)`, the session drops X and registers
//! again; required keys are never dropped.
use serde::Serialize;

/// Keys the backend requires; never dropped (spec 2.4 rule 5).
pub const REQUIRED_KEYS: [&str; 6] = [
    "type",
    "token",
    "engine_id",
    "version",
    "proto_version",
    "capabilities",
];

/// Optional keys a backend refused, remembered across reconnects. At most every optional key of 2.4
/// rule 4 (14 of them).
pub type Dropped = heapless::Vec<&'static str, 16>;

/// What this agent really implements (spec 2.3 capabilities). Stored and shown by the backend; only
/// `self_update` and `multi_env_files` change its behaviour: `self_update` is set per registration
/// (container mode only); `multi_env_files` true: the backend sends `env_files`, which
/// `dockmon::deploy` writes beside the compose file.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Capabilities {
    /// start, stop, restart, kill, rename, remove, logs, inspect.
    pub container_operations: bool,
    /// `update_container` (spec 3.8.1, `dockmon::update`).
    pub container_updates: bool,
    /// `container_event`.
    pub event_streaming: bool,
    /// `container_stats`.
    pub stats_collection: bool,
    /// `self_update`: true in container mode only, as the Go agent (spec 1.5: the backend reads it as
    /// "container mode"); native mode answers `self_update` too (`dockmon::selfupdate::native`).
    pub self_update: bool,
    /// `deploy_compose` (`dockmon::deploy`, with image pulls).
    pub compose_deployments: bool,
    /// The web shell (`shell_session`, spec 3.8.6).
    pub shell_access: bool,
    /// Deploys with several env files (`env_files`).
    pub multi_env_files: bool,
}

/// The capabilities of this build.
pub const CAPABILITIES: Capabilities = Capabilities {
    container_operations: true,
    container_updates: true,
    event_streaming: true,
    stats_collection: true,
    self_update: false,
    compose_deployments: true,
    shell_access: true,
    multi_env_files: true,
};

/// Host facts from `/info` and `/version`; absent when either call failed (spec 2.3).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `/info` OSType.
    pub os_type: String,
    /// `/info` OperatingSystem.
    pub os_version: String,
    /// `/info` KernelVersion.
    pub kernel_version: String,
    /// `/version` Version.
    pub docker_version: String,
    /// Creation time of the `bridge` network ("" when none).
    pub daemon_started_at: String,
    /// `/info` MemTotal; left out when 0 (the backend refuses 0).
    pub total_memory: u64,
    /// `/info` NCPU; left out when 0.
    pub num_cpus: u32,
}

/// Everything the frame is built from.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Docker's engine ID.
    pub engine_id: String,
    /// The display name and which tier it came from (`agent_name`, `daemon`, `os`, `engine_id`).
    pub hostname: (String, &'static str),
    /// Agent version.
    pub version: String,
    /// `PROTO_VERSION`.
    pub proto_version: String,
    /// `FORCE_UNIQUE_REGISTRATION`.
    pub force_unique: bool,
    /// `linux`.
    pub agent_os: &'static str,
    /// Go spelling: amd64, arm64, arm.
    pub agent_arch: &'static str,
    /// Host facts, if both calls succeeded.
    pub facts: Option<Facts>,
    /// Host IPv4 addresses (spec 2.3 `host_ips`).
    pub host_ips: Vec<String>,
    /// Container mode: `self_update` works (spec 1.5, `dockmon::selfupdate`).
    pub self_update: bool,
}

#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    token: &'a str,
    engine_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname_source: Option<&'a str>,
    version: &'a str,
    proto_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    force_unique_registration: Option<bool>,
    capabilities: Capabilities,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_os: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_arch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    docker_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon_started_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_cpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_ips: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_ip: Option<&'a str>,
}

/// Writes the register frame for `token` into `out`, leaving out the keys in `dropped`.
pub fn write(out: &mut Vec<u8>, reg: &Registration, token: &str, dropped: &Dropped) {
    let keep = |key: &str| !dropped.contains(&key);
    let some = |key: &str, s: &'_ str| -> bool { keep(key) && !s.is_empty() };
    let facts = reg.facts.as_ref();
    let frame = Frame {
        kind: "register",
        token,
        engine_id: &reg.engine_id,
        hostname: some("hostname", &reg.hostname.0).then_some(reg.hostname.0.as_str()),
        hostname_source: (reg.force_unique && keep("hostname_source")).then_some(reg.hostname.1),
        version: &reg.version,
        proto_version: &reg.proto_version,
        force_unique_registration: (reg.force_unique && keep("force_unique_registration"))
            .then_some(true),
        capabilities: Capabilities {
            self_update: reg.self_update,
            ..CAPABILITIES
        },
        agent_os: keep("agent_os").then_some(reg.agent_os),
        agent_arch: keep("agent_arch").then_some(reg.agent_arch),
        os_type: facts
            .filter(|f| some("os_type", &f.os_type))
            .map(|f| f.os_type.as_str()),
        os_version: facts
            .filter(|f| some("os_version", &f.os_version))
            .map(|f| f.os_version.as_str()),
        kernel_version: facts
            .filter(|f| some("kernel_version", &f.kernel_version))
            .map(|f| f.kernel_version.as_str()),
        docker_version: facts
            .filter(|f| some("docker_version", &f.docker_version))
            .map(|f| f.docker_version.as_str()),
        daemon_started_at: facts
            .filter(|_| keep("daemon_started_at"))
            .map(|f| f.daemon_started_at.as_str()),
        total_memory: facts
            .filter(|f| keep("total_memory") && f.total_memory > 0)
            .map(|f| f.total_memory),
        num_cpus: facts
            .filter(|f| keep("num_cpus") && f.num_cpus > 0)
            .map(|f| f.num_cpus),
        host_ips: (reg.host_ips.len() > 1 && keep("host_ips")).then_some(&reg.host_ips[..]),
        host_ip: reg
            .host_ips
            .first()
            .filter(|_| keep("host_ip"))
            .map(String::as_str),
    };
    out.clear();
    // Plain strings, numbers and bools into a Vec: serialization cannot fail.
    let _ = serde_json::to_writer(&mut *out, &frame);
}

/// The optional key a backend refused, from an `auth_error` text such as
/// `Invalid registration data: Extra inputs are not permitted (field: host_ips)`. Only keys we can
/// drop are returned, as `'static` names.
pub fn refused_key(error: &str) -> Option<&'static str> {
    const OPTIONAL: [&str; 14] = [
        "hostname",
        "hostname_source",
        "force_unique_registration",
        "os_type",
        "os_version",
        "kernel_version",
        "docker_version",
        "daemon_started_at",
        "total_memory",
        "num_cpus",
        "agent_os",
        "agent_arch",
        "host_ip",
        "host_ips",
    ];
    let rest = error.split("Extra inputs are not permitted").nth(1)?;
    let field = rest.split("(field:").nth(1)?;
    let name = field.trim_start().split([')', ' ', ',']).next()?;
    OPTIONAL.iter().copied().find(|k| *k == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn reg() -> Registration {
        Registration {
            engine_id: "IFO2:3MUH:VFNQ".into(),
            hostname: ("vm".into(), "daemon"),
            version: "0.1.0".into(),
            proto_version: "1.1".into(),
            force_unique: false,
            agent_os: "linux",
            agent_arch: "amd64",
            facts: Some(Facts {
                os_type: "linux".into(),
                os_version: "Debian GNU/Linux 12 (bookworm)".into(),
                kernel_version: "6.18.44".into(),
                docker_version: "20.10.24+dfsg1".into(),
                daemon_started_at: "2026-11-28T23:58:11.123456789Z".into(),
                total_memory: 25_276_063_744,
                num_cpus: 2,
            }),
            host_ips: vec!["192.0.2.2".into()],
            self_update: false,
        }
    }

    fn keys(out: &[u8]) -> Vec<String> {
        let v: Value = serde_json::from_slice(out).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn default_frame_is_the_v2_2_0_key_set() {
        let mut out = Vec::new();
        write(&mut out, &reg(), "tok", &Dropped::new());
        let mut k = keys(&out);
        k.sort();
        let mut expected = vec![
            "type",
            "token",
            "engine_id",
            "hostname",
            "version",
            "proto_version",
            "capabilities",
            "agent_os",
            "agent_arch",
            "os_type",
            "os_version",
            "kernel_version",
            "docker_version",
            "daemon_started_at",
            "total_memory",
            "num_cpus",
            "host_ip",
        ];
        expected.sort();
        assert_eq!(k, expected);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["capabilities"]["container_operations"], true);
        assert_eq!(v["capabilities"]["self_update"], false);
        assert_eq!(v["capabilities"].as_object().unwrap().len(), 8);
    }

    #[test]
    fn newer_keys_only_when_needed() {
        let mut r = reg();
        r.force_unique = true;
        r.hostname = ("edge-1".into(), "agent_name");
        r.host_ips = vec!["192.0.2.2".into(), "198.51.100.7".into()];
        let mut out = Vec::new();
        write(&mut out, &r, "tok", &Dropped::new());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["force_unique_registration"], true);
        assert_eq!(v["hostname_source"], "agent_name");
        assert_eq!(v["host_ips"][1], "198.51.100.7");
        assert_eq!(v["host_ip"], "192.0.2.2");
    }

    #[test]
    fn zero_memory_and_missing_facts_are_left_out() {
        let mut r = reg();
        r.facts.as_mut().unwrap().total_memory = 0;
        r.facts.as_mut().unwrap().num_cpus = 0;
        let mut out = Vec::new();
        write(&mut out, &r, "tok", &Dropped::new());
        let k = keys(&out);
        assert!(!k.contains(&"total_memory".to_string()) && !k.contains(&"num_cpus".to_string()));
        r.facts = None;
        r.host_ips.clear();
        write(&mut out, &r, "tok", &Dropped::new());
        assert_eq!(keys(&out).len(), 9, "{}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn refused_keys_are_dropped() {
        let err = "Invalid registration data: Extra inputs are not permitted (field: host_ips)";
        assert_eq!(refused_key(err), Some("host_ips"));
        assert_eq!(
            refused_key("Invalid registration data: Extra inputs are not permitted (field: token)"),
            None,
            "required keys are never dropped"
        );
        assert_eq!(refused_key("Invalid registration token"), None);
        let mut dropped = Dropped::new();
        dropped.push("host_ip").unwrap();
        dropped.push("agent_arch").unwrap();
        let mut out = Vec::new();
        write(&mut out, &reg(), "tok", &dropped);
        let k = keys(&out);
        assert!(!k.contains(&"host_ip".to_string()) && !k.contains(&"agent_arch".to_string()));
        for required in REQUIRED_KEYS {
            assert!(k.contains(&required.to_string()));
        }
    }
}
