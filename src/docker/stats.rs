//! Container stats: one Docker stats document → [`Sample`]; two samples → [`Computed`](crate::stats::Computed).
//!
//! Read this first: DockMon protocol spec §4.2 (`container_stats` payload and computation). Where this
//! module departs from DockMon's Go agent it says so beside the line, with the reason.
//!
//! Owns: [`parse`], which turns the body of `GET /containers/{id}/stats?stream=false&one-shot=true` into
//! the cumulative counters of one [`Sample`], and [`compute`](crate::stats::compute), which turns the previous and the current
//! sample into the numbers of one payload.
//!
//! Must not: do I/O, read a clock, log, or allocate (see below). Both functions are pure; the caller keeps the
//! previous sample (one-shot answers carry no `precpu_stats`, so the agent's own last sample is the
//! reference for CPU %).
//!
//! Invariants:
//! - `parse` never panics on any input and never allocates for the documents Docker sends: fixed fields
//!   are read into small `Copy` structs, and the parts of arbitrary size (`networks`,
//!   `memory_stats.stats`, `percpu_usage`, the blkio lists) are folded into sums and counts by visitors
//!   as they stream past. Values we do not use are skipped by `Skip` rather than `IgnoredAny`,
//!   because serde_json's `IgnoredAny` keeps a heap stack for values nested two levels deep
//!   (`precpu_stats`, `blkio_stats.io_serviced_recursive`). Only fields this module does not know that
//!   nest two deep, and strings with escapes, can make serde_json use its scratch buffer.
//! - Nothing is stored, so there is no capacity and no policy when full: a map or list of any length
//!   becomes one number. Sums saturate at `u64::MAX`; the CPU count saturates at `u32::MAX`.
//! - A missing or `null` field reads as 0 (or as absent, where absence changes a rule). The document
//!   itself must be a JSON object with a `read` time stamp; nesting is bounded by serde_json's recursion
//!   limit (128), so deep input fails cleanly instead of exhausting the stack.
//! - `compute` is total: no division by zero, no NaN, counters that go backwards give 0.

use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::stats::working_set;
use crate::stats::Sample;

/// Why a stats body gave no [`Sample`].
#[derive(Debug)]
pub enum Error {
    /// The body is not valid JSON, or a field we read has the wrong type.
    Json(serde_json::Error),
    /// The body ends inside the JSON document (`len` bytes were given). The HTTP layer hands over whole
    /// bodies, so this means the engine or the transport cut the body short.
    Truncated {
        /// Bytes in the body that was given.
        len: usize,
    },
    /// Valid JSON, but not a stats document: it has no `read` time stamp (for instance an error body
    /// `{"message": ...}` passed here by mistake).
    NotStats,
    /// The engine answered for a container that is not running. Docker 20.10 (API 1.41) answers 200 with
    /// an all-zero document whose `read` is Go's zero time `0001-01-01T00:00:00Z`, with or without
    /// one-shot; its counters are not readings and must not become a sample.
    NotRunning,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Json(e) => write!(f, "stats json: {e}"),
            Error::Truncated { len } => {
                write!(f, "stats json: document ends early, after {len} bytes")
            }
            Error::NotStats => {
                f.write_str("stats json: not a stats document (no \"read\" time stamp)")
            }
            Error::NotRunning => {
                f.write_str("stats: container not running (engine sent a zero \"read\" time)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Parses one Docker stats document (the whole body of
/// `GET /containers/{id}/stats?stream=false&one-shot=true`, or one line of a stream).
///
/// Trailing whitespace is accepted, anything else after the document is an error. Fields other than
/// those listed on [`Sample`] are skipped, including `precpu_stats` (see [`compute`](crate::stats::compute)). Never panics.
///
/// Errors: [`Error::Truncated`] when the body stops inside the document, [`Error::Json`] for any other
/// malformed input, [`Error::NotStats`] for a JSON object without `read`, [`Error::NotRunning`] for
/// the zero-time document Docker sends for a stopped container.
pub fn parse(json: &[u8]) -> Result<Sample, Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let doc = de
        .deserialize_map(DocVisitor)
        .and_then(|doc| de.end().map(|()| doc))
        .map_err(|e| {
            if e.is_eof() {
                Error::Truncated { len: json.len() }
            } else {
                Error::Json(e)
            }
        })?;
    match doc.read {
        None => Err(Error::NotStats),
        Some(Stamp::Zero) => Err(Error::NotRunning),
        Some(Stamp::Set) => Ok(doc.sample()),
    }
}

// ---- The document, as much of it as we read ---------------------------------------------------------

/// The fields of a stats document that make a [`Sample`]. Everything else is skipped.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Doc {
    read: Option<Stamp>,
    #[serde(deserialize_with = "nullable")]
    cpu_stats: CpuStats,
    #[serde(deserialize_with = "nullable")]
    memory_stats: MemoryStats,
    #[serde(deserialize_with = "nullable")]
    networks: Networks,
    #[serde(deserialize_with = "nullable")]
    blkio_stats: Blkio,
    #[serde(deserialize_with = "nullable")]
    pids_stats: Pids,
    /// Filled only without one-shot; we use our own previous sample (see [`compute`](crate::stats::compute)). Named so that it
    /// is skipped by [`Skip`] rather than by serde_json's allocating `IgnoredAny`.
    #[serde(rename = "precpu_stats")]
    _precpu_stats: Option<Skip>,
}

impl Doc {
    fn sample(&self) -> Sample {
        let cpu = &self.cpu_stats;
        let online_cpus = if cpu.online_cpus > 0 {
            u32::try_from(cpu.online_cpus).unwrap_or(u32::MAX)
        } else if cpu.cpu_usage.percpu_usage.0 > 0 {
            cpu.cpu_usage.percpu_usage.0
        } else {
            1
        };
        let mem = &self.memory_stats;
        Sample {
            cpu_total_ns: cpu.cpu_usage.total_usage,
            system_cpu_ns: cpu.system_cpu_usage,
            online_cpus,
            memory_usage: working_set(
                mem.usage,
                mem.stats.total_inactive_file,
                mem.stats.inactive_file,
            ),
            memory_limit: mem.limit,
            network_rx: self.networks.rx,
            network_tx: self.networks.tx,
            disk_read: self.blkio_stats.read,
            disk_write: self.blkio_stats.write,
            pids: self.pids_stats.current,
        }
    }
}

/// The top level must be a JSON object (a derived struct would also accept an array).
struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a docker stats document (a json object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Doc, A::Error> {
        Doc::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CpuStats {
    #[serde(deserialize_with = "nullable")]
    cpu_usage: CpuUsage,
    #[serde(deserialize_with = "nullable")]
    system_cpu_usage: u64,
    /// Read as u64 and saturated into the u32 of [`Sample`], so an absurd count is not a parse error.
    #[serde(deserialize_with = "nullable")]
    online_cpus: u64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CpuUsage {
    #[serde(deserialize_with = "nullable")]
    total_usage: u64,
    #[serde(deserialize_with = "nullable")]
    percpu_usage: Count,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MemoryStats {
    #[serde(deserialize_with = "nullable")]
    usage: u64,
    #[serde(deserialize_with = "nullable")]
    limit: u64,
    #[serde(deserialize_with = "nullable")]
    stats: MemStat,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Pids {
    #[serde(deserialize_with = "nullable")]
    current: u64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NetIface {
    #[serde(deserialize_with = "nullable")]
    rx_bytes: u64,
    #[serde(deserialize_with = "nullable")]
    tx_bytes: u64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct BlkioEntry {
    #[serde(deserialize_with = "nullable")]
    op: Op,
    #[serde(deserialize_with = "nullable")]
    value: u64,
}

/// A value that may be `null`: `null` (like an absent field, through `#[serde(default)]`) gives the default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// ---- Visitors for the parts of arbitrary size -------------------------------------------------------

/// `read`: only whether it is Go's zero time, the mark of a container that is not running.
enum Stamp {
    Zero,
    Set,
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Stamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an rfc 3339 time stamp")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Stamp, E> {
                // Go's zero `time.Time` marshals as `0001-01-01T00:00:00Z`.
                Ok(if v.starts_with("0001-01-01T00:00:00") {
                    Stamp::Zero
                } else {
                    Stamp::Set
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// The length of a list whose elements we don't need (`percpu_usage`).
#[derive(Default)]
struct Count(u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0u32;
                while seq.next_element::<Skip>()?.is_some() {
                    n = n.saturating_add(1);
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `networks`: interface name → counters, folded into two sums. Names are not kept.
#[derive(Default)]
struct Networks {
    rx: u64,
    tx: u64,
}

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Networks, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Networks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of network interfaces")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Networks, A::Error> {
                let mut out = Networks::default();
                while let Some((Skip, iface)) = map.next_entry::<Skip, Option<NetIface>>()? {
                    let iface = iface.unwrap_or_default();
                    out.rx = out.rx.saturating_add(iface.rx_bytes);
                    out.tx = out.tx.saturating_add(iface.tx_bytes);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// `memory_stats.stats`: the only two keys the working set needs. Absent and present matter (see
/// [`working_set`]); a `null` value counts as present with 0, as Go's map decoding does.
#[derive(Default)]
struct MemStat {
    total_inactive_file: Option<u64>,
    inactive_file: Option<u64>,
}

impl<'de> Deserialize<'de> for MemStat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MemStat, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MemStat;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of memory counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MemStat, A::Error> {
                const KEYS: &[&str] = &["total_inactive_file", "inactive_file"];
                let mut out = MemStat::default();
                while let Some(key) = map.next_key_seed(KeyIn(KEYS))? {
                    match key {
                        Some("total_inactive_file") => {
                            out.total_inactive_file =
                                Some(map.next_value::<Option<u64>>()?.unwrap_or(0));
                        }
                        Some("inactive_file") => {
                            out.inactive_file = Some(map.next_value::<Option<u64>>()?.unwrap_or(0));
                        }
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// `blkio_stats`: only `io_service_bytes_recursive`, folded into read and write sums. The seven other
/// lists (cgroup v1 only) are skipped.
#[derive(Default)]
struct Blkio {
    read: u64,
    write: u64,
}

impl<'de> Deserialize<'de> for Blkio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blkio, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Blkio;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a blkio stats object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Blkio, A::Error> {
                const KEYS: &[&str] = &["io_service_bytes_recursive"];
                let mut out = Blkio::default();
                while let Some(key) = map.next_key_seed(KeyIn(KEYS))? {
                    if key.is_some() {
                        // `null` on a stopped container and on cgroup v2 hosts that did no I/O yet.
                        let IoBytes(sums) =
                            map.next_value::<Option<IoBytes>>()?.unwrap_or_default();
                        out = sums;
                    } else {
                        map.next_value::<Skip>()?;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// `io_service_bytes_recursive`: `{major, minor, op, value}` entries, one per device and op, summed by op.
#[derive(Default)]
struct IoBytes(Blkio);

impl<'de> Deserialize<'de> for IoBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IoBytes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IoBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of blkio entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IoBytes, A::Error> {
                let mut out = Blkio::default();
                while let Some(entry) = seq.next_element::<Option<BlkioEntry>>()? {
                    let entry = entry.unwrap_or_default();
                    match entry.op {
                        Op::Read => out.read = out.read.saturating_add(entry.value),
                        Op::Write => out.write = out.write.saturating_add(entry.value),
                        Op::Other => {}
                    }
                }
                Ok(IoBytes(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A blkio `op`. Docker writes `Read`/`Write` (with `Sync`, `Async`, `Discard`, `Total`) on cgroup v1 and
/// `read`/`write` on cgroup v2, so the match ignores case. DockMon's Go agent matches `Read`/`Write`
/// exactly and so reports 0 on every cgroup v2 host (spec §4.2); no backend logic depends on the value.
#[derive(Default)]
enum Op {
    Read,
    Write,
    #[default]
    Other,
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Op;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a blkio op name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Op, E> {
                Ok(if v.eq_ignore_ascii_case("read") {
                    Op::Read
                } else if v.eq_ignore_ascii_case("write") {
                    Op::Write
                } else {
                    Op::Other
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A map key compared with a fixed list of names and not kept: the matching name, or `None`.
struct KeyIn(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIn {
    type Value = Option<&'static str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIn {
    type Value = Option<&'static str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().copied().find(|name| *name == v))
    }
}

/// Any JSON value, read and dropped. Unlike `serde::de::IgnoredAny` it descends through serde's own
/// visitor calls, so serde_json needs no heap stack for nested values; depth stays bounded by
/// serde_json's recursion limit.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{compute, round1, Computed};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/stats/", $name)).as_slice()
        };
    }

    /// Every fixture that parses to a sample, for the whole-corpus properties.
    const GOOD: &[(&str, &[u8])] = &[
        ("v1-idle.json", fixture!("v1-idle.json")),
        ("v1-burner-1.json", fixture!("v1-burner-1.json")),
        ("v1-burner-2.json", fixture!("v1-burner-2.json")),
        ("v1-burner-precpu.json", fixture!("v1-burner-precpu.json")),
        ("v1-memory.json", fixture!("v1-memory.json")),
        ("v1-page-cache.json", fixture!("v1-page-cache.json")),
        ("v1-blkio.json", fixture!("v1-blkio.json")),
        ("v1-network-none.json", fixture!("v1-network-none.json")),
        ("v1-two-networks.json", fixture!("v1-two-networks.json")),
        ("v2-reference.json", fixture!("v2-reference.json")),
        ("v2-shm.json", fixture!("v2-shm.json")),
        ("sparse-nulls.json", fixture!("sparse-nulls.json")),
    ];

    /// Host facts shared by every v1 recording (Docker 20.10.24, 2 CPUs, 23.54 GiB, no memory limit).
    const V1_LIMIT: u64 = 25_276_502_016;

    fn v1(cpu_total_ns: u64, system_cpu_ns: u64, memory_usage: u64, rx: u64) -> Sample {
        Sample {
            cpu_total_ns,
            system_cpu_ns,
            online_cpus: 2,
            memory_usage,
            memory_limit: V1_LIMIT,
            network_rx: rx,
            pids: 1,
            ..Sample::default()
        }
    }

    #[test]
    fn parse_recorded_fixtures_gives_hand_checked_samples() {
        // Values read off each file by hand; memory is usage − total_inactive_file, which is what
        // `docker stats` showed at the same moment (tests/fixtures/stats/README.md).
        let table: &[(&str, &[u8], Sample)] = &[
            // usage 1740800 − total_inactive_file 159744 = 1581056 = 1.508MiB.
            (
                "v1-idle",
                fixture!("v1-idle.json"),
                v1(37_366_209, 1_905_710_000_000, 1_581_056, 946),
            ),
            (
                "v1-burner-1",
                fixture!("v1-burner-1.json"),
                v1(26_477_747_074, 1_930_060_000_000, 331_776, 726),
            ),
            (
                "v1-burner-2",
                fixture!("v1-burner-2.json"),
                v1(27_000_949_190, 1_932_140_000_000, 331_776, 726),
            ),
            // cpu_stats only; precpu_stats is skipped.
            (
                "v1-burner-precpu",
                fixture!("v1-burner-precpu.json"),
                v1(29_027_294_513, 1_940_250_000_000, 331_776, 726),
            ),
            // 50 MiB in /dev/shm: counted (cache, on the anon LRU), total_inactive_file 0.
            (
                "v1-memory",
                fixture!("v1-memory.json"),
                v1(446_470_613, 1_911_780_000_000, 52_879_360, 726),
            ),
            // 32 MiB written once: page cache in total_inactive_file, not in the working set.
            // 34963456 − 33554432 = 1409024 = 1.344MiB. Buffered writes land on the root cgroup on v1: only
            // the 12288 bytes of synchronous metadata writes count.
            (
                "v1-page-cache",
                fixture!("v1-page-cache.json"),
                Sample {
                    disk_write: 12_288,
                    ..v1(36_646_298, 2_153_630_000_000, 1_409_024, 516)
                },
            ),
            (
                "v1-blkio",
                fixture!("v1-blkio.json"),
                Sample {
                    disk_read: 8_454_144,
                    disk_write: 8_400_896,
                    ..v1(43_025_085, 1_923_860_000_000, 638_976, 656)
                },
            ),
            // No `networks` key at all.
            (
                "v1-network-none",
                fixture!("v1-network-none.json"),
                v1(33_492_513, 1_917_850_000_000, 319_488, 0),
            ),
            // eth0 + eth1: rx 3796 + 2168, tx 3210 + 1252; 122880 bytes read loading busybox for `ping`.
            (
                "v1-two-networks",
                fixture!("v1-two-networks.json"),
                Sample {
                    network_tx: 4_462,
                    disk_read: 122_880,
                    ..v1(72_735_525, 2_646_800_000_000, 516_096, 5_964)
                },
            ),
        ];
        for (name, bytes, want) in table {
            assert_eq!(parse(bytes).unwrap(), *want, "{name}");
        }
    }

    #[test]
    fn parse_v2_reference_fixtures_without_percpu() {
        // Written from the Engine API reference (README.md): no percpu_usage, online_cpus 4,
        // lower-case blkio ops, v2 memory.stat keys.
        let want = Sample {
            cpu_total_ns: 100_215_355,
            system_cpu_ns: 739_306_590_000_000,
            online_cpus: 4,
            // usage 6881280 − inactive_file 2433024.
            memory_usage: 4_448_256,
            memory_limit: 8_217_579_520,
            network_rx: 5_338 + 4_641,
            network_tx: 648 + 690,
            disk_read: 7_593_984,
            disk_write: 100,
            pids: 5,
        };
        assert_eq!(parse(fixture!("v2-reference.json")).unwrap(), want);

        let shm = parse(fixture!("v2-shm.json")).unwrap();
        assert_eq!(
            shm.memory_usage, 52_654_080,
            "usage − inactive_file (0) keeps the 50 MiB of shmem"
        );
        assert_eq!(
            (shm.online_cpus, shm.disk_read, shm.disk_write, shm.pids),
            (2, 0, 0, 1)
        );
        assert_eq!(compute(None, &shm).memory_percent, 4.9, "52654080 / 1 GiB");
    }

    #[test]
    fn parse_sparse_and_null_fields_default_to_zero() {
        let want = Sample {
            cpu_total_ns: 1_500_000_000,
            system_cpu_ns: 0,
            online_cpus: 1,
            memory_usage: 2_097_152,
            memory_limit: 0,
            network_rx: 10,
            network_tx: 0,
            disk_read: 0,
            // `{"op": null, "value": 7}` and `{"value": 3}` have no op; `Write` with a null value adds 0.
            disk_write: 9,
            pids: 0,
        };
        assert_eq!(parse(fixture!("sparse-nulls.json")).unwrap(), want);

        let bare = parse(br#"{"read":"2026-11-29T00:00:00Z"}"#).unwrap();
        assert_eq!(
            bare,
            Sample {
                online_cpus: 1,
                ..Sample::default()
            }
        );
        let nulls = br#"{"read":"2026-11-29T00:00:00Z","cpu_stats":null,"memory_stats":null,"networks":null,
            "blkio_stats":null,"pids_stats":null,"precpu_stats":null}"#;
        assert_eq!(parse(nulls).unwrap(), bare);
        let empty_lists =
            br#"{"read":"x","networks":{},"blkio_stats":{"io_service_bytes_recursive":[]},
            "cpu_stats":{"cpu_usage":{"percpu_usage":[]},"online_cpus":null}}"#;
        assert_eq!(parse(empty_lists).unwrap(), bare);
    }

    #[test]
    fn parse_online_cpus_falls_back_to_percpu_length_then_one() {
        let cases: &[(&[u8], u32)] = &[
            (br#"{"read":"x","cpu_stats":{"online_cpus":3,"cpu_usage":{"percpu_usage":[1,2]}}}"#, 3),
            (br#"{"read":"x","cpu_stats":{"online_cpus":0,"cpu_usage":{"percpu_usage":[1,2,3,4,5]}}}"#, 5),
            (br#"{"read":"x","cpu_stats":{"cpu_usage":{"percpu_usage":[0,0]}}}"#, 2),
            (br#"{"read":"x","cpu_stats":{"online_cpus":0}}"#, 1),
            (br#"{"read":"x","cpu_stats":{"online_cpus":99999999999}}"#, u32::MAX),
        ];
        for (json, want) in cases {
            assert_eq!(
                parse(json).unwrap().online_cpus,
                *want,
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn parse_stopped_container_is_not_running() {
        // Recorded: Docker 20.10 answers 200 with this zero document for an exited container.
        assert!(matches!(
            parse(fixture!("v1-stopped.json")),
            Err(Error::NotRunning)
        ));
        assert!(matches!(
            parse(br#"{"read":"0001-01-01T00:00:00Z"}"#),
            Err(Error::NotRunning)
        ));
    }

    #[test]
    fn parse_rejects_documents_that_are_not_stats() {
        let not_stats: &[&[u8]] = &[
            br#"{"message":"No such container: stx-nonexist"}"#,
            b"{}",
            br#"{"read":null}"#,
        ];
        for json in not_stats {
            assert!(
                matches!(parse(json), Err(Error::NotStats)),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        let malformed: &[&[u8]] = &[
            b"[]",
            br#"["2026-11-29T00:00:00Z"]"#,
            b"null",
            b"42",
            br#"{"read":"x"} {}"#,
            br#"{"read":"x","cpu_stats":{"online_cpus":-1}}"#,
            br#"{"read":"x","memory_stats":{"usage":"12"}}"#,
            br#"{"read":"x","memory_stats":{"usage":1.5}}"#,
            br#"{"read":"x","networks":[1]}"#,
            br#"{"read":"x","pids_stats":{"current":18446744073709551616}}"#,
            br#"{"read":1}"#,
            br#"{"read":"x","read":"y"}"#,
            b"{\"read\":\"x\"\xff}",
        ];
        for json in malformed {
            assert!(
                matches!(parse(json), Err(Error::Json(_))),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        // Trailing whitespace (Docker ends the body with a newline) is fine.
        assert!(parse(b" {\"read\":\"x\"}\n\r\t ").is_ok());
    }

    #[test]
    fn parse_every_truncation_of_every_fixture_is_truncated() {
        for (name, bytes) in GOOD
            .iter()
            .chain([("v1-stopped.json", fixture!("v1-stopped.json"))].iter())
        {
            let end = bytes.iter().rposition(|b| *b == b'}').unwrap(); // every fixture ends with `}`
            for cut in 0..=end {
                match parse(&bytes[..cut]) {
                    Err(Error::Truncated { len }) => assert_eq!(len, cut),
                    other => panic!("{name} cut at {cut}: {other:?}"),
                }
            }
            assert!(parse(&bytes[..=end]).is_ok() || *name == "v1-stopped.json");
        }
    }

    #[test]
    fn parse_arbitrary_bytes_never_panics() {
        // Corruptions of real documents: each byte replaced by characters that break JSON in
        // different ways, plus a small deterministic xorshift stream of random buffers.
        for (_, bytes) in GOOD {
            let mut buf = bytes.to_vec();
            for i in 0..buf.len() {
                let keep = buf[i];
                for b in [b'"', b'{', b']', b'-', b'9', b'\\', 0xff, b'n'] {
                    buf[i] = b;
                    let _ = parse(&buf);
                }
                buf[i] = keep;
            }
        }
        const ALPHABET: &[u8] = b"{}[]\":,0123456789-.eEtrufalsn \\u";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2_000usize {
            let buf: Vec<u8> = (0..len % 257)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ALPHABET[(state % ALPHABET.len() as u64) as usize]
                })
                .collect();
            let _ = parse(&buf);
        }
        // Nesting beyond serde_json's recursion limit fails cleanly, in fields we read and in fields we skip.
        let deep = |field: &str| {
            let mut s = format!("{{\"read\":\"x\",\"{field}\":");
            s.push_str(&"[".repeat(100_000));
            s.into_bytes()
        };
        for field in ["precpu_stats", "unknown", "networks", "blkio_stats"] {
            assert!(parse(&deep(field)).is_err(), "{field}");
        }
    }

    #[test]
    fn parse_sums_saturate_instead_of_overflowing() {
        let json = br#"{"read":"x","networks":{"a":{"rx_bytes":18446744073709551615,"tx_bytes":1},
            "b":{"rx_bytes":5,"tx_bytes":2}},"blkio_stats":{"io_service_bytes_recursive":[
            {"op":"Read","value":18446744073709551615},{"op":"read","value":1}]}}"#;
        let s = parse(json).unwrap();
        assert_eq!(
            (s.network_rx, s.network_tx, s.disk_read),
            (u64::MAX, 3, u64::MAX)
        );
    }

    #[test]
    fn blkio_ops_match_case_insensitively() {
        let json = br#"{"read":"x","blkio_stats":{"io_service_bytes_recursive":[
            {"major":8,"minor":0,"op":"Read","value":1},{"major":8,"minor":0,"op":"read","value":10},
            {"major":8,"minor":16,"op":"READ","value":100},{"major":8,"minor":0,"op":"Write","value":2},
            {"major":8,"minor":0,"op":"write","value":20},{"major":8,"minor":0,"op":"Sync","value":1000},
            {"major":8,"minor":0,"op":"Total","value":1000},{"major":8,"minor":0,"op":"readahead","value":1000}],
            "io_serviced_recursive":[{"major":8,"minor":0,"op":"Read","value":5000}]}}"#;
        let s = parse(json).unwrap();
        assert_eq!((s.disk_read, s.disk_write), (111, 22));
        // cgroup v1 recording: Capitalised; v2 reference: lower case. Both count.
        assert_eq!(
            parse(fixture!("v1-blkio.json")).unwrap().disk_read,
            8_454_144
        );
        assert_eq!(
            parse(fixture!("v2-reference.json")).unwrap().disk_read,
            7_593_984
        );
    }

    #[test]
    fn memory_working_set_per_cgroup_version() {
        let mem = |stats: &str| {
            let json = format!(
                r#"{{"read":"x","memory_stats":{{"usage":1000,"limit":4000,"stats":{stats}}}}}"#
            );
            parse(json.as_bytes()).unwrap().memory_usage
        };
        // cgroup v1: total_inactive_file wins over inactive_file.
        assert_eq!(
            mem(r#"{"cache":900,"total_inactive_file":300,"inactive_file":100}"#),
            700
        );
        // cgroup v2 (or v1 without total_): inactive_file.
        assert_eq!(
            mem(r#"{"anon":100,"active_file":200,"inactive_file":300}"#),
            700
        );
        // No file keys at all: usage as is.
        assert_eq!(mem(r#"{"anon":100}"#), 1000);
        assert_eq!(mem("null"), 1000);
        // inactive ≥ usage: never below zero, usage as is.
        assert_eq!(mem(r#"{"inactive_file":1000}"#), 1000);
        assert_eq!(mem(r#"{"inactive_file":5000}"#), 1000);
        // The docker CLI falls through to inactive_file when total_inactive_file ≥ usage.
        assert_eq!(
            mem(r#"{"total_inactive_file":1200,"inactive_file":400}"#),
            600
        );
        assert_eq!(mem(r#"{"total_inactive_file":1200}"#), 1000);
        // A null counts as present with 0 (Go decodes it so): usage − 0.
        assert_eq!(
            mem(r#"{"total_inactive_file":null,"inactive_file":400}"#),
            1000
        );
        // Recorded v1 and written v2 shared-memory containers keep their /dev/shm bytes.
        assert_eq!(
            parse(fixture!("v1-memory.json")).unwrap().memory_usage,
            52_879_360
        );
        assert_eq!(
            parse(fixture!("v2-shm.json")).unwrap().memory_usage,
            52_654_080
        );
    }

    #[test]
    fn compute_burner_samples_give_fifty_percent() {
        // Recorded one second apart from a `--cpus 0.5` busy loop on 2 CPUs:
        // Δcpu = 27000949190 − 26477747074 = 523202116 ns, Δsys = 1932140000000 − 1930060000000 =
        // 2080000000 ns; 523202116 / 2080000000 × 2 × 100 = 50.3079 → 50.3. (`docker stats`: 50.11%.)
        let a = parse(fixture!("v1-burner-1.json")).unwrap();
        let b = parse(fixture!("v1-burner-2.json")).unwrap();
        let c = compute(Some(&a), &b);
        assert_eq!(c.cpu_percent, 50.3);
        assert_eq!(
            c,
            Computed {
                cpu_percent: 50.3,
                memory_usage: 331_776,
                memory_limit: V1_LIMIT,
                memory_percent: 0.0,
                network_rx: 726,
                pids: 1,
                ..Computed::default()
            }
        );
        // The same formula over the precpu_stats Docker filled without one-shot (read by hand from the
        // fixture): Δcpu 500267798 / Δsys 2030000000 × 2 × 100 = 49.287 → 49.3.
        let pre = Sample {
            cpu_total_ns: 28_527_026_715,
            system_cpu_ns: 1_938_220_000_000,
            ..a
        };
        let now = parse(fixture!("v1-burner-precpu.json")).unwrap();
        assert_eq!(compute(Some(&pre), &now).cpu_percent, 49.3);
    }

    #[test]
    fn compute_without_previous_or_with_counters_going_backwards_is_zero_cpu() {
        let a = parse(fixture!("v1-burner-1.json")).unwrap();
        let b = parse(fixture!("v1-burner-2.json")).unwrap();
        assert_eq!(compute(None, &b).cpu_percent, 0.0);
        // Container restarted: its CPU counter starts again from 0.
        assert_eq!(compute(Some(&b), &a).cpu_percent, 0.0);
        let restarted = Sample {
            cpu_total_ns: 5,
            ..b
        };
        assert_eq!(compute(Some(&a), &restarted).cpu_percent, 0.0);
        // System counter not moving (or going back) with container CPU moving: 0, not infinity.
        let stuck = Sample {
            system_cpu_ns: a.system_cpu_ns,
            ..b
        };
        assert_eq!(compute(Some(&a), &stuck).cpu_percent, 0.0);
        let back = Sample {
            system_cpu_ns: 0,
            ..b
        };
        assert_eq!(compute(Some(&a), &back).cpu_percent, 0.0);
        // Same sample twice.
        assert_eq!(compute(Some(&a), &a).cpu_percent, 0.0);
    }

    #[test]
    fn compute_memory_percent_is_rounded_and_zero_without_limit() {
        let s = |usage, limit| Sample {
            memory_usage: usage,
            memory_limit: limit,
            ..Sample::default()
        };
        assert_eq!(compute(None, &s(512, 1024)).memory_percent, 50.0);
        assert_eq!(compute(None, &s(1, 3)).memory_percent, 33.3);
        assert_eq!(compute(None, &s(2, 3)).memory_percent, 66.7);
        assert_eq!(compute(None, &s(123, 0)).memory_percent, 0.0);
        assert_eq!(compute(None, &s(0, 0)).memory_percent, 0.0);
        assert_eq!(
            compute(None, &s(u64::MAX, 1)).memory_percent,
            round1(u64::MAX as f64 * 100.0)
        );
        // The idle recording: 1581056 / 25276502016 = 0.0063 % → 0.0 (`docker stats`: 0.01%, 2 decimals).
        let idle = parse(fixture!("v1-idle.json")).unwrap();
        assert_eq!(compute(None, &idle).memory_percent, 0.0);
        let shm = parse(fixture!("v1-memory.json")).unwrap();
        assert_eq!(compute(None, &shm).memory_percent, 0.2); // 0.2092 (`docker stats`: 0.21%)
        assert!(compute(Some(&idle), &shm).cpu_percent.is_finite());
    }

    #[test]
    fn error_messages_are_one_lowercase_line() {
        let errors = [
            parse(b"{").unwrap_err(),
            parse(b"[]").unwrap_err(),
            parse(b"{}").unwrap_err(),
            parse(fixture!("v1-stopped.json")).unwrap_err(),
        ];
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(texts[0], "stats json: document ends early, after 1 bytes");
        assert!(
            texts[1].starts_with(
                "stats json: invalid type: sequence, expected a docker stats document"
            ),
            "{}",
            texts[1]
        );
        assert_eq!(
            texts[2],
            "stats json: not a stats document (no \"read\" time stamp)"
        );
        assert_eq!(
            texts[3],
            "stats: container not running (engine sent a zero \"read\" time)"
        );
        for t in &texts {
            assert!(
                !t.contains('\n') && t.starts_with(|c: char| c.is_ascii_lowercase()),
                "{t}"
            );
        }
        assert!(std::error::Error::source(&errors[1]).is_some());
        assert!(std::error::Error::source(&errors[2]).is_none());
    }
}
