//! DockMon message shapes (spec section 3), one serde type per frame kind. Wire only: no I/O, no
//! Docker calls. Outgoing frames are written into a caller buffer; incoming frames borrow theirs.
//!
//! Shapes: (A) the envelope `{"type","id"?,"command"?,"payload"?,"error"?,"timestamp"}` for responses
//! and events, (B) the flat container-operation result `{"correlation_id","success",…}`, (C) the flat
//! host stats frame `{"type":"stats","stats":{…}}` (spec 3.1). Events never carry `id` or
//! `correlation_id` (spec 3.2 rule 1: the backend would take them for replies).
use crate::rfc3339::Stamp;
use crate::stats::Computed;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Any frame from the backend: the union of the fields of every kind we handle.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    /// `command`, `container_operation`, `auth_success`, `auth_error`, `health_check_*`, `shell_session`.
    #[serde(rename = "type", borrow, default)]
    pub kind: Cow<'a, str>,
    /// Command name for `command` frames.
    #[serde(borrow, default)]
    pub command: Option<Cow<'a, str>>,
    /// Correlation ID of a command or operation.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// Same as `id` on backend frames.
    #[serde(borrow, default)]
    pub correlation_id: Option<Cow<'a, str>>,
    /// Command or operation arguments, kept raw until the handler parses them.
    #[serde(borrow, default)]
    pub payload: Option<&'a RawValue>,
    /// `auth_error` text.
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
    /// `auth_success`: the agent's ID.
    #[serde(borrow, default)]
    pub agent_id: Option<Cow<'a, str>>,
    /// `auth_success`: the host's ID.
    #[serde(borrow, default)]
    pub host_id: Option<Cow<'a, str>>,
    /// `auth_success`: the token to persist (equal to `agent_id`).
    #[serde(borrow, default)]
    pub permanent_token: Option<Cow<'a, str>>,
}

impl<'a> Incoming<'a> {
    /// Parses one text frame.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The ID to answer with: `id`, else `correlation_id`.
    pub fn reply_id(&self) -> Option<&str> {
        self.id
            .as_deref()
            .or(self.correlation_id.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// `{"type":"response","id":…,"payload":…,"timestamp":…}` (spec 3.3).
#[derive(Serialize)]
struct Response<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    timestamp: &'a str,
}

/// Starts a successful command response, `{"type":"response","id":…,"payload":`; the caller
/// appends the payload (JSON) and finishes with [`end_response`]. The container list, the largest
/// reply (about 1.6 KiB per container), is written straight into the frame this way instead of
/// being built apart and copied in, which halves the heap a `list_containers` needs.
pub fn begin_response(out: &mut Vec<u8>, id: &str) {
    out.clear();
    out.extend_from_slice(br#"{"type":"response","id":"#);
    // Serializing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, id);
    out.extend_from_slice(br#","payload":"#);
}

/// Finishes what [`begin_response`] started, after the payload: the same keys, in the same order,
/// as a `Response` serialized whole.
pub fn end_response(out: &mut Vec<u8>, now: &Stamp) {
    out.extend_from_slice(br#","timestamp":"#);
    let _ = serde_json::to_writer(&mut *out, now.as_str());
    out.push(b'}');
}

/// Writes a failed command response.
pub fn write_response_error(out: &mut Vec<u8>, id: &str, error: &str, now: &Stamp) {
    write(
        out,
        &Response {
            kind: "response",
            id,
            payload: None,
            error: Some(error),
            timestamp: now,
        },
    );
}

/// The flat container-operation result (spec 3.4, shape B). Success fields depend on the action.
#[derive(Serialize, Default)]
pub struct OpResult<'a> {
    /// The request's `id`.
    pub correlation_id: &'a str,
    /// Whether the operation succeeded.
    pub success: bool,
    /// Error text on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// The container ID as sent (start, stop, restart, kill, rename, remove).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<&'a str>,
    /// `started`, `stopped`, `restarted`, `killed`, `renamed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    /// `remove`: always true on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<bool>,
    /// `get_logs`: the log text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<&'a str>,
    /// `inspect`: Docker's inspect JSON as it came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<&'a RawValue>,
}

/// Writes an operation result.
pub fn write_op_result(out: &mut Vec<u8>, result: &OpResult<'_>) {
    write(out, result);
}

/// `{"type":"event","command":…,"payload":…,"timestamp":…}` (spec 3.5).
#[derive(Serialize)]
struct EventFrame<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    command: &'a str,
    payload: P,
    timestamp: &'a str,
}

/// Writes an event envelope around `payload`.
pub fn write_event<P: Serialize>(out: &mut Vec<u8>, name: &str, payload: P, now: &Stamp) {
    write(
        out,
        &EventFrame {
            kind: "event",
            command: name,
            payload,
            timestamp: now,
        },
    );
}

/// The `container_event` payload (spec 3.5.1).
#[derive(Debug, Serialize)]
pub struct ContainerEvent<'a> {
    /// Full container ID.
    pub container_id: &'a str,
    /// `Actor.Attributes.name`.
    pub container_name: &'a str,
    /// `Actor.Attributes.image`.
    pub image: &'a str,
    /// Docker's `Action`.
    pub action: &'a str,
    /// Event time, RFC 3339.
    pub timestamp: &'a str,
    /// All of `Actor.Attributes`, as Docker sent them (`{}` when absent).
    pub attributes: &'a RawValue,
}

/// The host stats frame (spec 4.4, shape C).
#[derive(Debug, Serialize)]
struct HostStatsFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    stats: HostStats,
}

/// The numbers of the host stats frame.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct HostStats {
    /// Whole-host CPU busy %, not rounded.
    pub cpu_percent: f64,
    /// `(MemTotal - MemAvailable) / MemTotal × 100`.
    pub mem_percent: f64,
    /// Bytes per second over the host's physical interfaces.
    pub net_bytes_per_sec: f64,
}

/// Writes a host stats frame.
pub fn write_host_stats(out: &mut Vec<u8>, stats: HostStats) {
    write(
        out,
        &HostStatsFrame {
            kind: "stats",
            stats,
        },
    );
}

fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    out.clear();
    // Serializing these types into a Vec cannot fail: no maps with non-string keys, no I/O.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The `container_stats` event payload (spec 4.2): the numbers are [`Computed`]'s own fields (it
/// serializes as them, in the spec's order), framed by the container and the time.
///
/// `pids` is not part of DockMon's payload: it is set only by the local modes (`snapshot`, `watch`),
/// and left out of the JSON when `None`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStats<'a> {
    /// Full container ID.
    pub container_id: &'a str,
    /// Name without the leading slash.
    pub container_name: &'a str,
    /// CPU %, memory, network and disk, as spec 4.2 names them.
    #[serde(flatten)]
    pub numbers: Computed,
    /// Processes and threads in the container (local modes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Agent wall clock, UTC, RFC 3339 seconds.
    pub timestamp: &'a str,
}

impl<'a> ContainerStats<'a> {
    /// The payload for `c`, measured at `timestamp`.
    pub fn new(id: &'a str, name: &'a str, c: &Computed, timestamp: &'a Stamp, pids: bool) -> Self {
        ContainerStats {
            container_id: id,
            container_name: name,
            numbers: *c,
            pids: pids.then_some(c.pids),
            timestamp: timestamp.as_str(),
        }
    }
}

/// The `timestamp` every envelope carries: the agent's wall clock now, UTC, with nanoseconds
/// (spec 3.1).
pub fn now_stamp() -> Stamp {
    let (s, n) = crate::rfc3339::now();
    crate::rfc3339::nanos(s, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        crate::rfc3339::seconds(1_795_911_240)
    }

    #[test]
    fn container_stats_has_the_exact_keys_of_spec_4_2() {
        let stamp = stamp();
        let c = Computed {
            cpu_percent: 1.5,
            memory_usage: 10_485_760,
            memory_limit: 8_589_934_592,
            memory_percent: 0.1,
            network_rx: 1000,
            network_tx: 2000,
            ..Default::default()
        };
        let json =
            serde_json::to_string(&ContainerStats::new("a1", "nginx", &c, &stamp, false)).unwrap();
        assert_eq!(
            json,
            r#"{"container_id":"a1","container_name":"nginx","cpu_percent":1.5,"memory_usage":10485760,"memory_limit":8589934592,"memory_percent":0.1,"network_rx":1000,"network_tx":2000,"disk_read":0,"disk_write":0,"timestamp":"2026-11-29T00:14:00Z"}"#
        );
        let local =
            serde_json::to_string(&ContainerStats::new("a1", "n", &c, &stamp, true)).unwrap();
        assert!(local.contains(r#""pids":0,"timestamp""#));
    }

    #[test]
    fn parses_backend_frames() {
        let f = Incoming::parse(
            r#"{"type":"command","command":"list_containers","id":"u1","correlation_id":"u1"}"#,
        )
        .unwrap();
        assert_eq!(
            (f.kind.as_ref(), f.command.as_deref(), f.reply_id()),
            ("command", Some("list_containers"), Some("u1"))
        );
        let f = Incoming::parse(r#"{"type":"container_operation","payload":{"action":"stop","container_id":"a1b2c3d4e5f6","timeout":10},"id":"d1","correlation_id":"d1"}"#).unwrap();
        assert_eq!(
            f.payload.unwrap().get(),
            r#"{"action":"stop","container_id":"a1b2c3d4e5f6","timeout":10}"#
        );
        let f = Incoming::parse(
            r#"{"type":"auth_success","agent_id":"a","host_id":"h","permanent_token":"a"}"#,
        )
        .unwrap();
        assert_eq!(f.permanent_token.as_deref(), Some("a"));
        assert!(Incoming::parse("[1,2]").is_err());
        assert!(Incoming::parse(r#"{"type":5}"#).is_err());
    }

    #[test]
    fn outgoing_shapes() {
        let mut out = Vec::new();
        begin_response(&mut out, "u\"1");
        out.extend_from_slice(br#"[{"Id":"x"}]"#);
        end_response(&mut out, &crate::rfc3339::nanos(1_795_911_240, 5));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"type":"response","id":"u\"1","payload":[{"Id":"x"}],"timestamp":"2026-11-29T00:14:00.000000005Z"}"#
        );
        // The same text as the whole struct serialized at once.
        let whole = serde_json::to_string(&Response {
            kind: "response",
            id: "u\"1",
            payload: Some(serde_json::from_str(r#"[{"Id":"x"}]"#).unwrap()),
            error: None,
            timestamp: "2026-11-29T00:14:00.000000005Z",
        })
        .unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), whole);
        write_response_error(&mut out, "u2", "unknown command: create_volume", &stamp());
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"type":"response","id":"u2","error":"unknown command: create_volume","timestamp":"2026-11-29T00:14:00Z"}"#
        );
        write_op_result(
            &mut out,
            &OpResult {
                correlation_id: "d1",
                success: true,
                container_id: Some("a1b2c3d4e5f6"),
                status: Some("stopped"),
                ..Default::default()
            },
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"correlation_id":"d1","success":true,"container_id":"a1b2c3d4e5f6","status":"stopped"}"#
        );
        write_op_result(
            &mut out,
            &OpResult {
                correlation_id: "d2",
                error: Some("unknown action: explode"),
                ..Default::default()
            },
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"correlation_id":"d2","success":false,"error":"unknown action: explode"}"#
        );
        write_host_stats(
            &mut out,
            HostStats {
                cpu_percent: 12.5,
                mem_percent: 40.0,
                net_bytes_per_sec: 1234.0,
            },
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"type":"stats","stats":{"cpu_percent":12.5,"mem_percent":40.0,"net_bytes_per_sec":1234.0}}"#
        );
        let attrs: &RawValue = serde_json::from_str(r#"{"exitCode":"0","name":"web"}"#).unwrap();
        write_event(
            &mut out,
            "container_event",
            ContainerEvent {
                container_id: "b1",
                container_name: "web",
                image: "nginx",
                action: "die",
                timestamp: "2026-11-29T00:16:47Z",
                attributes: attrs,
            },
            &stamp(),
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with(
            r#"{"type":"event","command":"container_event","payload":{"container_id":"b1""#
        ));
        assert!(!text.contains("\"id\"") && !text.contains("correlation_id"));
    }
}
