//! The fields we read from Docker's JSON, and nothing more. Strings borrow the caller's response
//! buffer (`Cow` copies only when Docker escaped a character); unknown fields are skipped by serde
//! without being stored.
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// `GET /info` (the parts we show or register with).
#[derive(Debug, Deserialize)]
pub struct Info<'a> {
    /// Engine ID: a UUID on current Docker, `XXXX:XXXX:…` on older engines.
    #[serde(rename = "ID", borrow, default)]
    pub id: Cow<'a, str>,
    /// The daemon's host name.
    #[serde(rename = "Name", borrow, default)]
    pub name: Cow<'a, str>,
    /// Docker version, e.g. `20.10.24+dfsg1`.
    #[serde(rename = "ServerVersion", borrow, default)]
    pub server_version: Cow<'a, str>,
    /// e.g. `Debian GNU/Linux 12 (bookworm)`.
    #[serde(rename = "OperatingSystem", borrow, default)]
    pub operating_system: Cow<'a, str>,
    /// `linux` or `windows`.
    #[serde(rename = "OSType", borrow, default)]
    pub os_type: Cow<'a, str>,
    /// Kernel release.
    #[serde(rename = "KernelVersion", borrow, default)]
    pub kernel_version: Cow<'a, str>,
    /// CPUs the engine sees.
    #[serde(rename = "NCPU", default)]
    pub ncpu: u32,
    /// Memory in bytes.
    #[serde(rename = "MemTotal", default)]
    pub mem_total: u64,
    /// `1` or `2`; absent before API 1.41.
    #[serde(rename = "CgroupVersion", borrow, default)]
    pub cgroup_version: Cow<'a, str>,
    /// Containers running now.
    #[serde(rename = "ContainersRunning", default)]
    pub containers_running: u32,
}

/// `GET /version`.
#[derive(Debug, Deserialize)]
pub struct Version<'a> {
    /// Docker version.
    #[serde(rename = "Version", borrow, default)]
    pub version: Cow<'a, str>,
    /// Newest API version of the engine.
    #[serde(rename = "ApiVersion", borrow, default)]
    pub api_version: Cow<'a, str>,
    /// Oldest API version the engine accepts.
    #[serde(rename = "MinAPIVersion", borrow, default)]
    pub min_api_version: Cow<'a, str>,
}

/// One element of `GET /containers/json`.
#[derive(Debug, Deserialize)]
pub struct ContainerSummary<'a> {
    /// Full 64-hex ID.
    #[serde(rename = "Id", borrow)]
    pub id: Cow<'a, str>,
    /// Names, each with a leading `/`.
    #[serde(rename = "Names", borrow, default)]
    pub names: Vec<Cow<'a, str>>,
    /// Image as given at creation.
    #[serde(rename = "Image", borrow, default)]
    pub image: Cow<'a, str>,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    #[serde(rename = "State", borrow, default)]
    pub state: Cow<'a, str>,
    /// Human status, e.g. `Up 2 minutes`.
    #[serde(rename = "Status", borrow, default)]
    pub status: Cow<'a, str>,
}

impl ContainerSummary<'_> {
    /// The first name without its leading slash (Docker's own display name).
    pub fn name(&self) -> &str {
        self.names
            .first()
            .map(|n| n.trim_start_matches('/'))
            .unwrap_or("")
    }
}

/// One message of `GET /events`.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    /// `container`, `image`, `network`, …
    #[serde(rename = "Type", borrow, default)]
    pub kind: Cow<'a, str>,
    /// `start`, `die`, `exec_create: sh`, `health_status: healthy`, …
    #[serde(rename = "Action", borrow, default)]
    pub action: Cow<'a, str>,
    /// What the event is about.
    #[serde(rename = "Actor", borrow, default)]
    pub actor: Actor<'a>,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

/// The object of an event.
#[derive(Debug, Default, Deserialize)]
pub struct Actor<'a> {
    /// Container ID for container events.
    #[serde(rename = "ID", borrow, default)]
    pub id: Cow<'a, str>,
    /// Labels plus `name`, `image` and action-specific keys (`exitCode`, `signal`), passed through.
    #[serde(rename = "Attributes", borrow, default)]
    pub attributes: Option<&'a RawValue>,
}

/// `{"message": "..."}`, the body of Docker's error answers.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    /// The text.
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
}

/// `{"Warnings": [...]}` answers and others we only need to be JSON.
#[derive(Debug, Deserialize)]
pub struct Ignored {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_container_event() {
        let line = br#"{"status":"die","id":"abc","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137","image":"busybox","name":"web"}},"scope":"local","time":1764380207,"timeNano":1764380207000651000}"#;
        let e: Event = serde_json::from_slice(line).unwrap();
        assert_eq!(e.kind, "container");
        assert_eq!(e.action, "die");
        assert_eq!(e.actor.id, "abc");
        assert_eq!(
            e.actor.attributes.unwrap().get(),
            r#"{"exitCode":"137","image":"busybox","name":"web"}"#
        );
        assert_eq!(e.time, 1764380207);
    }

    #[test]
    fn escaped_names_are_copied_not_refused() {
        let s: ContainerSummary =
            serde_json::from_slice(br#"{"Id":"x","Names":["/a\u00e9"],"State":"running"}"#)
                .unwrap();
        assert_eq!(s.name(), "a\u{e9}");
    }
}
