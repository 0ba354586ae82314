//! DockMon message shapes, one serde type per frame kind. Wire only: no I/O, no Docker calls.
use crate::docker::stats::Computed;
use crate::rfc3339::Stamp;
use serde::Serialize;

/// The `container_stats` event payload (spec 4.2), field for field and unit for unit.
///
/// `pids` is not part of DockMon's payload: it is set only by the local modes (`snapshot`, `watch`),
/// and left out of the JSON when `None`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStats<'a> {
    /// Full container ID.
    pub container_id: &'a str,
    /// Name without the leading slash.
    pub container_name: &'a str,
    /// Percent of one core (100 = one core busy), one decimal.
    pub cpu_percent: f64,
    /// Working set in bytes.
    pub memory_usage: u64,
    /// Limit in bytes (host memory when unlimited).
    pub memory_limit: u64,
    /// `memory_usage / memory_limit × 100`, one decimal.
    pub memory_percent: f64,
    /// Bytes received, cumulative.
    pub network_rx: u64,
    /// Bytes sent, cumulative.
    pub network_tx: u64,
    /// Bytes read from block devices, cumulative.
    pub disk_read: u64,
    /// Bytes written to block devices, cumulative.
    pub disk_write: u64,
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
            cpu_percent: c.cpu_percent,
            memory_usage: c.memory_usage,
            memory_limit: c.memory_limit,
            memory_percent: c.memory_percent,
            network_rx: c.network_rx,
            network_tx: c.network_tx,
            disk_read: c.disk_read,
            disk_write: c.disk_write,
            pids: pids.then_some(c.pids),
            timestamp: timestamp.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_stats_has_the_exact_keys_of_spec_4_2() {
        let stamp = crate::rfc3339::seconds(1_795_911_240);
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
}
