//! Who and where this agent is: its own container ID and the mode it decides (DockMon spec §1.5), the
//! registration hostname and its source (§2.3), `agent_os`/`agent_arch` (§2.3, §9 note 3) and the host
//! IPs (§2.3, capped by §2.4 rule 12).
//!
//! Read this first: spec §1.5 (own container ID, container mode vs systemd mode) and the `hostname`,
//! `hostname_source`, `agent_arch` and `host_ips` rows of the §2.3 table.
//!
//! Owns: pure functions over text ([`parse_container_id`], [`choose_hostname`], [`sanitize_hostname`],
//! [`FibTrieLocal`], [`parse_route_line`], [`container_ips_from_fib_trie`]) and thin readers that feed
//! them from procfs and sysfs ([`detect_mode`], [`read_os_hostname`], [`systemd_host_ips`],
//! [`container_host_ips`]). Every reader takes the directory it reads (`/proc`, `/host/proc`, `/sys`) so
//! tests point it at recorded trees.
//!
//! Must not: call libc (the crate forbids `unsafe`: the host IPs come from `/proc/net/fib_trie` and
//! `/proc/net/route` instead of `getifaddrs`), talk to Docker (the caller passes the daemon's name, the
//! engine ID and the Docker network subnets), log above `debug!`. Nothing here fails: a file that cannot
//! be read means "no answer from this source" (systemd mode, the next hostname tier, no host IPs), with a
//! `debug!` line saying why.
//!
//! I/O: these run once at startup or registration. `/proc` and `/sys` are generated from memory, so
//! `std::fs` reads do not wait for a disk. `/proc/self/cgroup` and the hostname are read with a size cap;
//! `fib_trie` and `route` are streamed line by line through one fixed buffer, because their size grows
//! with the routing table.
//!
//! Invariants: a container ID is exactly [`CONTAINER_ID_SHORT_BYTES`] lower-case hex characters; a
//! hostname is sanitised the way the backend does it and at most [`HOSTNAME_MAX_BYTES`] bytes; the host
//! IP list holds no loopback, no link-local and no duplicate address.
//!
//! When full: host IPs stop at [`HOST_IPS_MAX_COUNT`] (the backend's limit); later addresses are dropped
//! and counted in one `debug!` line. Routes beyond [`ROUTE_MAX_COUNT`] are ignored the same way (their
//! addresses then map to no interface and are left out). Lines longer than [`PROC_LINE_MAX_BYTES`] are
//! skipped whole.
//!
//! Capacities stay here rather than in `limits`: each caps one local file or field this module parses,
//! beside the parser it bounds.

use core::fmt;
use std::fs;
use std::io::{self, BufRead};
use std::net::Ipv4Addr;
use std::path::Path;

use crate::host::IFNAME_MAX_BYTES;

/// Docker's short container ID (spec §1.5: "the result is cut to 12 characters").
pub const CONTAINER_ID_SHORT_BYTES: usize = 12;
/// Longest registration hostname: the backend's `hostname` limit (spec §2.4 rules 6 and 14). We cut at
/// 255 bytes, which is never more than the backend's 255 characters.
pub const HOSTNAME_MAX_BYTES: usize = 255;
/// Longest kernel hostname: `HOST_NAME_MAX` (64, `include/uapi/linux/utsname.h`, `__NEW_UTS_LEN`).
pub const OS_HOSTNAME_MAX_BYTES: usize = 64;
/// Most host IPs reported: the backend keeps at most 50 (`host_ips`, spec §2.4 rule 12).
pub const HOST_IPS_MAX_COUNT: usize = 50;
/// Connected routes kept from `/proc/net/route` to map addresses to interfaces. There is one per IPv4
/// subnet the host is on: a Pi has two or three plus one per Docker network (Docker's default pools
/// give at most 31 bridge networks of /16 before it falls back to /20s); 128 covers every Docker
/// network a small host can usefully run.
pub const ROUTE_MAX_COUNT: usize = 128;
/// Longest `fib_trie` or `route` line kept. `route` pads its lines to 127 bytes; `fib_trie` lines are
/// indentation plus an address, under 80 bytes even at the deepest trie level.
pub const PROC_LINE_MAX_BYTES: usize = 256;
/// Most bytes of `/proc/self/cgroup` read: one line per cgroup v1 hierarchy (about 13), each a prefix
/// plus a path with one 64-character ID, about 1.3 KiB in all (fixture `cgroup/vm-container-v1.txt`).
const CGROUP_READ_MAX_BYTES: usize = 16 * 1024;
/// Read buffer for streaming `fib_trie` and `route`.
const STREAM_BUF_BYTES: usize = 4 * 1024;
/// A sysfs attribute we read (`address`, `operstate`, `type`): a few bytes; 64 holds any of them.
const SYSFS_ATTR_MAX_BYTES: usize = 64;

// ---- Own container ID and mode (spec §1.5) ---------------------------------------------------------

/// Where the own container ID came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSource {
    /// A `/docker/<id>`, `docker-<id>.scope` or `/libpod-<id>.scope` path in `/proc/self/cgroup`.
    Cgroup,
    /// The `HOSTNAME` environment variable (Docker sets it to the short ID unless `--hostname` is given).
    Hostname,
}

/// Finds the agent's own container ID (spec §1.5), cut to [`CONTAINER_ID_SHORT_BYTES`].
///
/// `cgroup` is the text of `/proc/self/cgroup`; `hostname_env` the value of `HOSTNAME`. Line by line,
/// the first of: the text after `/docker/` up to the next `/`; the `<id>` of `docker-<id>.scope`; the
/// `<id>` of `/libpod-<id>.scope`. Otherwise `HOSTNAME` when its first 12 characters are lower-case hex.
///
/// Deviation from the Go agent: a cgroup candidate counts only if its first 12 characters are lower-case
/// hex (Docker and Podman IDs always are). Go takes any text there and slices `[:12]`, which panics on
/// a shorter one (`/docker/buildkit/...` on a BuildKit builder) and accepts names that are not IDs; we
/// try the next pattern and line instead.
pub fn parse_container_id<'a>(
    cgroup: &'a str,
    hostname_env: Option<&'a str>,
) -> Option<(&'a str, IdSource)> {
    for line in cgroup.lines() {
        if let Some(id) = cgroup_line_id(line) {
            return Some((id, IdSource::Cgroup));
        }
    }
    let h = hostname_env?;
    short_id(h).map(|id| (id, IdSource::Hostname))
}

/// The three patterns of spec §1.5 on one line, in order.
fn cgroup_line_id(line: &str) -> Option<&str> {
    if let Some(i) = line.find("/docker/") {
        let rest = &line[i + "/docker/".len()..];
        let id = rest.split('/').next().unwrap_or_default();
        if let Some(id) = short_id(id) {
            return Some(id);
        }
    }
    for marker in ["docker-", "/libpod-"] {
        if let Some(i) = line.find(marker) {
            let rest = &line[i + marker.len()..];
            let end = rest.find('.').unwrap_or(rest.len());
            if rest[end..].starts_with(".scope") {
                if let Some(id) = short_id(&rest[..end]) {
                    return Some(id);
                }
            }
        }
    }
    None
}

/// The first 12 characters of `s` if they are lower-case hex.
fn short_id(s: &str) -> Option<&str> {
    let head = s.as_bytes().get(..CONTAINER_ID_SHORT_BYTES)?;
    // All ASCII, so byte 12 is a char boundary and the slice below cannot panic.
    head.iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .then(|| &s[..CONTAINER_ID_SHORT_BYTES])
}

/// Container mode (the agent runs in a container it can name) or systemd mode (spec §1.5). The mode
/// decides the `self_update` capability, how host IPs are gathered and whether host stats need
/// `/host/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In a container with this short ID.
    Container {
        /// The short container ID.
        id: heapless::String<CONTAINER_ID_SHORT_BYTES>,
        /// Where it came from.
        source: IdSource,
    },
    /// Not in a container we can name (also a container on cgroup v2 with a private cgroup namespace
    /// and a custom `--hostname`; spec §1.5 notes the same misdetection in the Go agent).
    Systemd,
}

impl Mode {
    /// The short container ID in container mode.
    pub fn container_id(&self) -> Option<&str> {
        match self {
            Mode::Container { id, .. } => Some(id),
            Mode::Systemd => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Container {
                id,
                source: IdSource::Cgroup,
            } => write!(f, "container mode: own container ID {id} from /proc/self/cgroup"),
            Mode::Container {
                id,
                source: IdSource::Hostname,
            } => write!(f, "container mode: own container ID {id} from HOSTNAME"),
            Mode::Systemd => f.write_str(
                "systemd mode: no container ID in /proc/self/cgroup and HOSTNAME is not a container ID",
            ),
        }
    }
}

/// Reads `<proc_dir>/self/cgroup` and decides the mode with [`parse_container_id`]. An unreadable file
/// counts as empty (then only `HOSTNAME` can give container mode).
pub fn detect_mode(proc_dir: &Path, hostname_env: Option<&str>) -> Mode {
    let path = proc_dir.join("self/cgroup");
    let mut buf = Vec::new();
    let text = match read_capped(&path, &mut buf, CGROUP_READ_MAX_BYTES) {
        Ok(t) => t,
        Err(e) => {
            log::debug!("cannot read {}: {e}", path.display());
            ""
        }
    };
    match parse_container_id(text, hostname_env) {
        // `parse_container_id` returns exactly 12 ASCII bytes, which fit.
        Some((id, source)) => match heapless::String::try_from(id) {
            Ok(id) => Mode::Container { id, source },
            Err(_) => Mode::Systemd,
        },
        None => Mode::Systemd,
    }
}

// ---- Registration hostname (spec §2.3) --------------------------------------------------------------

/// A registration hostname, sanitised.
pub type Hostname = heapless::String<HOSTNAME_MAX_BYTES>;

/// Which tier gave the hostname: the `hostname_source` field (spec §2.3, §2.4 rule 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostnameSource {
    /// `AGENT_NAME`.
    AgentName,
    /// Docker `/info` `Name`.
    Daemon,
    /// The OS hostname of the agent (a container's own hostname in container mode).
    Os,
    /// The first 12 characters of the engine ID.
    EngineId,
}

impl HostnameSource {
    /// The wire value: `agent_name`, `daemon`, `os` or `engine_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostnameSource::AgentName => "agent_name",
            HostnameSource::Daemon => "daemon",
            HostnameSource::Os => "os",
            HostnameSource::EngineId => "engine_id",
        }
    }
}

impl fmt::Display for HostnameSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the backend keeps a character (spec §2.4 rule 13: `<`, `>` and non-printable characters are
/// stripped). The backend uses Python's `str.isprintable()`, which is false for Unicode categories
/// Cc, Cf, Co, Cs, Cn, Zl, Zp and Zs other than the ASCII space. Rust's standard library has no category
/// tables, so this approximates: control characters, every whitespace but `' '` (Zs, Zl, Zp and the
/// control whitespace), the common format characters (Cf) and the private use areas (Co) are dropped;
/// unassigned code points (Cn) are kept. The approximation only matters for names with such
/// characters, where the backend strips a little more than we do.
fn is_kept(c: char) -> bool {
    if c == '<' || c == '>' || c.is_control() || (c.is_whitespace() && c != ' ') {
        return false;
    }
    !matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E000}'..='\u{F8FF}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}'
        | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

/// Sanitises a hostname the way the backend does (spec §2.4 rules 13 and 14): strips `<`, `>` and
/// non-printable characters, trims spaces, and cuts to [`HOSTNAME_MAX_BYTES`] bytes on a character
/// boundary (then trims again, so a cut never leaves a trailing space).
pub fn sanitize_hostname(raw: &str) -> Hostname {
    let mut out = Hostname::new();
    for c in raw.chars().filter(|&c| is_kept(c)) {
        if out.is_empty() && c == ' ' {
            continue;
        }
        if out.push(c).is_err() {
            // Full: `push` refuses a char that does not fit whole, so the cut is on a boundary.
            break;
        }
    }
    let kept = out.trim_end_matches(' ').len();
    out.truncate(kept);
    out
}

/// The registration hostname and its source (spec §2.3): the first of `AGENT_NAME`, Docker's `Name`,
/// the OS hostname and the first 12 characters of the engine ID that is not empty **after**
/// sanitising.
///
/// Deviation from the Go agent: Go picks the first non-empty raw value (only `AGENT_NAME` trimmed) and
/// the backend sanitises afterwards, so a name made only of stripped characters reaches the backend as
/// an empty hostname with a source that does not match. Checking after sanitising sends what the
/// backend would store. When every tier is empty (an empty engine ID, which the backend rejects
/// anyway) the result is empty with source `engine_id`.
pub fn choose_hostname(
    agent_name: Option<&str>,
    daemon_name: Option<&str>,
    os_hostname: Option<&str>,
    engine_id: &str,
) -> (Hostname, HostnameSource) {
    let tiers = [
        (agent_name, HostnameSource::AgentName),
        (daemon_name, HostnameSource::Daemon),
        (os_hostname, HostnameSource::Os),
    ];
    for (value, source) in tiers {
        if let Some(v) = value {
            let name = sanitize_hostname(v);
            if !name.is_empty() {
                return (name, source);
            }
        }
    }
    let end = engine_id
        .char_indices()
        .nth(CONTAINER_ID_SHORT_BYTES)
        .map_or(engine_id.len(), |(i, _)| i);
    (
        sanitize_hostname(&engine_id[..end]),
        HostnameSource::EngineId,
    )
}

/// The kernel hostname from `<proc_dir>/sys/kernel/hostname` (what Go's `os.Hostname()` reads), trimmed.
/// `None` when unreadable, empty, not UTF-8 or longer than [`OS_HOSTNAME_MAX_BYTES`].
pub fn read_os_hostname(proc_dir: &Path) -> Option<heapless::String<OS_HOSTNAME_MAX_BYTES>> {
    let path = proc_dir.join("sys/kernel/hostname");
    let mut buf = Vec::new();
    // One byte more than a hostname and its newline, to tell an over-long file from a full one.
    match read_capped(&path, &mut buf, OS_HOSTNAME_MAX_BYTES + 2) {
        Ok(text) => {
            let name = text.trim();
            if name.is_empty() {
                return None;
            }
            heapless::String::try_from(name).ok()
        }
        Err(e) => {
            log::debug!("cannot read {}: {e}", path.display());
            None
        }
    }
}

// ---- agent_os / agent_arch (spec §2.3, §9 note 3) ---------------------------------------------------

/// Go's `GOARCH` spelling of a Rust `target_arch`: `x86_64` → `amd64`, `aarch64` → `arm64`, `arm` →
/// `arm`; any other is returned as Rust names it. The backend builds self-update download URLs from this
/// value and DockMon publishes only `amd64`, `arm64` and `arm`, so the others need no Go name (Go
/// would say `386` for `x86`, `ppc64le` for `powerpc64` little-endian).
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `agent_arch` of the registration message: [`go_arch`] of the `target_arch` this binary was built for
/// (`std::env::consts::ARCH` is `cfg!(target_arch)` as a string).
pub fn agent_arch() -> &'static str {
    go_arch(std::env::consts::ARCH)
}

/// `agent_os` of the registration message: Go's `GOOS`, always `linux` for this agent.
pub fn agent_os() -> &'static str {
    "linux"
}

// ---- Host IPs (spec §2.3) ---------------------------------------------------------------------------

/// The host IPs of the registration message, in report order.
pub type HostIps = heapless::Vec<Ipv4Addr, HOST_IPS_MAX_COUNT>;

/// Interface names never reported in systemd mode (spec §2.3), besides loopback.
pub const EXCLUDED_INTERFACE_NAMES: [&str; 3] = ["docker0", "docker_gwbridge", "cni0"];
/// Interface name prefixes never reported in systemd mode (spec §2.3).
pub const EXCLUDED_INTERFACE_PREFIXES: [&str; 10] = [
    "veth", "br-", "virbr", "flannel", "cali", "cni-", "weave", "podman", "vxlan", "tunl",
];

/// Whether an interface's addresses may be reported in systemd mode, by name (spec §2.3): not `lo`, not
/// one of [`EXCLUDED_INTERFACE_NAMES`], no prefix of [`EXCLUDED_INTERFACE_PREFIXES`]. Go excludes
/// loopback interfaces by their `IFF_LOOPBACK` flag; without libc we go by the name `lo` (loopback
/// addresses are left out by [`is_reported_addr`] anyway).
pub fn is_reported_interface(name: &str) -> bool {
    name != "lo"
        && !EXCLUDED_INTERFACE_NAMES.contains(&name)
        && !EXCLUDED_INTERFACE_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
}

/// Whether an address may be reported at all: not loopback (127/8), not link-local (169.254/16).
pub fn is_reported_addr(a: Ipv4Addr) -> bool {
    !a.is_loopback() && !a.is_link_local()
}

/// Whether `a` lies in `net/prefix_len`. A prefix length above 32 matches nothing.
pub fn in_subnet(a: Ipv4Addr, net: Ipv4Addr, prefix_len: u8) -> bool {
    if prefix_len > 32 {
        return false;
    }
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0);
    u32::from(a) & mask == u32::from(net) & mask
}

/// A line-fed parser of `/proc/net/fib_trie` that yields each address with a `/32 host LOCAL` entry: the
/// addresses configured on this host's interfaces, in every table the file lists (so an address may
/// come more than once; callers remove duplicates).
///
/// The format (`net/ipv4/fib_trie.c`, `fib_trie_seq_show`): a leaf line `|-- <address>` followed by one
/// line per entry `/<prefix len> <scope> <type>`; `+-- <prefix>` lines are inner nodes and table names
/// (`Main:`, `Local:`, `Id 34:`) start a table.
#[derive(Clone, Copy, Debug, Default)]
pub struct FibTrieLocal {
    leaf: Option<Ipv4Addr>,
}

impl FibTrieLocal {
    /// A parser at the start of the file.
    pub fn new() -> FibTrieLocal {
        FibTrieLocal::default()
    }

    /// Feeds one line (with or without its newline); returns the address when the line is the `/32 host
    /// LOCAL` entry of the current leaf.
    pub fn feed(&mut self, line: &str) -> Option<Ipv4Addr> {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("|--") {
            self.leaf = addr.trim().parse().ok();
            return None;
        }
        if t.starts_with('/') {
            let mut f = t.split_ascii_whitespace();
            let local =
                f.next() == Some("/32") && f.next() == Some("host") && f.next() == Some("LOCAL");
            return if local { self.leaf } else { None };
        }
        // An inner node or a table name: the entries that follow are not this leaf's.
        self.leaf = None;
        None
    }
}

/// Every `/32 host LOCAL` address of a whole `fib_trie` text, in file order, duplicates included.
pub fn fib_trie_local(text: &str) -> impl Iterator<Item = Ipv4Addr> + '_ {
    let mut p = FibTrieLocal::new();
    text.lines().filter_map(move |l| p.feed(l))
}

/// A connected route of `/proc/net/route`: the subnet an interface's address is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The interface.
    pub iface: heapless::String<IFNAME_MAX_BYTES>,
    /// The subnet's network address.
    pub net: Ipv4Addr,
    /// Its prefix length, 1 to 32.
    pub prefix_len: u8,
}

/// `RTF_UP`, `RTF_GATEWAY` and `RTF_REJECT` of `include/uapi/linux/route.h`.
const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;

/// Parses one line of `/proc/net/route` (`Iface Destination Gateway Flags RefCnt Use Metric Mask MTU
/// Window IRTT`) into a connected route. `None` for the header, a malformed line, and every route that
/// does not say which subnet an interface is on: not up, through a gateway, a reject route, a default
/// route (mask 0, which would contain every address) or a non-contiguous mask.
///
/// Byte order: the kernel prints each network-order address as a native-endian `%08X` word
/// (`net/ipv4/fib_trie.c`, `fib_route_seq_show`), so the word's native bytes are the address bytes.
/// The fixtures are from little-endian machines, as are all our release targets.
pub fn parse_route_line(line: &str) -> Option<Route> {
    let mut f = line.split_ascii_whitespace();
    let iface = f.next()?;
    let dest = u32::from_str_radix(f.next()?, 16).ok()?;
    let _gateway = f.next()?;
    let flags = u32::from_str_radix(f.next()?, 16).ok()?;
    let mask = u32::from_str_radix(f.nth(3)?, 16).ok()?;
    if flags & RTF_UP == 0 || flags & (RTF_GATEWAY | RTF_REJECT) != 0 {
        return None;
    }
    let mask = u32::from(Ipv4Addr::from(mask.to_ne_bytes()));
    let prefix_len = mask.leading_ones();
    if prefix_len == 0 || mask.count_ones() != prefix_len {
        return None;
    }
    Some(Route {
        iface: heapless::String::try_from(iface).ok()?,
        net: Ipv4Addr::from(dest.to_ne_bytes()),
        // At most 32, so it fits.
        prefix_len: prefix_len as u8,
    })
}

/// Host IPs in systemd mode (spec §2.3): IPv4 addresses of up, non-loopback interfaces that pass
/// [`is_reported_interface`], without loopback and link-local addresses.
///
/// Without `getifaddrs` (libc) we join three files: the local addresses of `<proc_dir>/net/fib_trie`,
/// the connected routes of `<proc_dir>/net/route` (an address belongs to the interface whose route has
/// the longest prefix containing it; when several interfaces share that subnet, the address counts if
/// any of them qualifies) and `<sys_dir>/class/net/<if>/operstate` (`up` or `unknown`). The result is
/// ordered by interface index and then by address, close to Go's interface-then-address order.
///
/// Differences from the Go agent, both from the missing address-to-interface table:
/// - an address that no connected route covers is left out: a `/32` on a VPN interface (Tailscale's
///   `100.x` address, WireGuard configured with `/32`, a point-to-point tunnel's local end). Go reports
///   those. Excluded interfaces (Calico's `tunl0`, `flannel.1`) carry such `/32`s too, and we cannot
///   tell them apart.
/// - "up" is the operational state (carrier), where Go checks the administrative `IFF_UP` flag: a
///   cable-less `eth0` that is administratively up is reported by Go and not by us.
///
/// Missing files give an empty list.
pub fn systemd_host_ips(proc_dir: &Path, sys_dir: &Path) -> HostIps {
    let route_path = proc_dir.join("net/route");
    let mut routes: heapless::Vec<Route, ROUTE_MAX_COUNT> = heapless::Vec::new();
    let mut routes_dropped = 0usize;
    let read = for_each_line(&route_path, |line| {
        if let Some(r) = parse_route_line(line) {
            if routes.push(r).is_err() {
                routes_dropped += 1;
            }
        }
    });
    if let Err(e) = read {
        log::debug!("no host IPs: cannot read {}: {e}", route_path.display());
        return HostIps::new();
    }
    if routes_dropped > 0 {
        log::debug!(
            "{}: {routes_dropped} routes beyond {ROUTE_MAX_COUNT} ignored",
            route_path.display()
        );
    }

    let net_dir = sys_dir.join("class/net");
    let mut found: heapless::Vec<(u32, Ipv4Addr), HOST_IPS_MAX_COUNT> = heapless::Vec::new();
    let mut dropped = 0usize;
    let mut parser = FibTrieLocal::new();
    let fib_path = proc_dir.join("net/fib_trie");
    let read = for_each_line(&fib_path, |line| {
        let Some(a) = parser.feed(line) else { return };
        if !is_reported_addr(a) || found.iter().any(|&(_, x)| x == a) {
            return;
        }
        let Some(ifindex) = reporting_interface(a, &routes, &net_dir) else {
            return;
        };
        if found.push((ifindex, a)).is_err() {
            dropped += 1;
        }
    });
    if let Err(e) = read {
        log::debug!("no host IPs: cannot read {}: {e}", fib_path.display());
        return HostIps::new();
    }
    if dropped > 0 {
        log::debug!("{dropped} host IPs beyond {HOST_IPS_MAX_COUNT} dropped");
    }
    found.sort_unstable_by_key(|&(i, a)| (i, u32::from(a)));
    found.iter().map(|&(_, a)| a).collect()
}

/// The index of the interface that makes `a` reportable, if any: among the routes with the longest
/// prefix containing `a`, the first whose interface passes the name filter and is up. Interfaces without
/// a readable `ifindex` sort last.
fn reporting_interface(a: Ipv4Addr, routes: &[Route], net_dir: &Path) -> Option<u32> {
    let best = routes
        .iter()
        .filter(|r| in_subnet(a, r.net, r.prefix_len))
        .map(|r| r.prefix_len)
        .max();
    let Some(best) = best else {
        log::debug!("host IP {a}: no connected route names its interface; left out");
        return None;
    };
    routes
        .iter()
        .filter(|r| r.prefix_len == best && in_subnet(a, r.net, r.prefix_len))
        .filter(|r| is_reported_interface(&r.iface))
        .filter(|r| {
            let state = read_attr(&net_dir.join(r.iface.as_str()).join("operstate"));
            matches!(state.as_deref().map(str::trim), Some("up" | "unknown"))
        })
        .map(|r| {
            read_attr(&net_dir.join(r.iface.as_str()).join("ifindex"))
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(u32::MAX)
        })
        .min()
}

/// A small sysfs attribute, or `None`.
fn read_attr(path: &Path) -> Option<String> {
    let mut buf = Vec::new();
    read_capped(path, &mut buf, SYSFS_ATTR_MAX_BYTES)
        .ok()
        .map(str::to_owned)
}

/// Adds `a` to a container-mode list if it is reportable, new and outside every Docker subnet.
fn push_container_ip(
    out: &mut HostIps,
    dropped: &mut usize,
    a: Ipv4Addr,
    subnets: &[(Ipv4Addr, u8)],
) {
    if !is_reported_addr(a)
        || out.contains(&a)
        || subnets.iter().any(|&(net, len)| in_subnet(a, net, len))
    {
        return;
    }
    if out.push(a).is_err() {
        *dropped += 1;
    }
}

/// Host IPs in container mode from the text of the host's `/proc/1/net/fib_trie` (spec §2.3): the
/// `/32 host LOCAL` addresses in file order, without duplicates, `127.*`, `169.254.*` and addresses inside
/// any of `docker_subnets` (the IPAM subnets of the Docker networks, `(network, prefix length)`).
pub fn container_ips_from_fib_trie(text: &str, docker_subnets: &[(Ipv4Addr, u8)]) -> HostIps {
    let mut out = HostIps::new();
    let mut dropped = 0;
    for a in fib_trie_local(text) {
        push_container_ip(&mut out, &mut dropped, a, docker_subnets);
    }
    if dropped > 0 {
        log::debug!("{dropped} host IPs beyond {HOST_IPS_MAX_COUNT} dropped");
    }
    out
}

/// Host IPs in container mode (spec §2.3): [`container_ips_from_fib_trie`] over
/// `<host_proc>/1/net/fib_trie` (the host's init network namespace), streamed. `host_proc` is
/// `/host/proc`; without that mount the list is empty.
pub fn container_host_ips(host_proc: &Path, docker_subnets: &[(Ipv4Addr, u8)]) -> HostIps {
    let path = host_proc.join("1/net/fib_trie");
    let mut out = HostIps::new();
    let mut dropped = 0;
    let mut parser = FibTrieLocal::new();
    let read = for_each_line(&path, |line| {
        if let Some(a) = parser.feed(line) {
            push_container_ip(&mut out, &mut dropped, a, docker_subnets);
        }
    });
    if let Err(e) = read {
        log::debug!("no host IPs: cannot read {}: {e}", path.display());
        return HostIps::new();
    }
    if dropped > 0 {
        log::debug!("{dropped} host IPs beyond {HOST_IPS_MAX_COUNT} dropped");
    }
    out
}

// ---- File helpers ------------------------------------------------------------------------------------

/// Reads at most `cap` bytes of `path` into `buf` and returns its longest UTF-8 prefix.
fn read_capped<'b>(path: &Path, buf: &'b mut Vec<u8>, cap: usize) -> io::Result<&'b str> {
    crate::procfs::read_capped(path, buf, cap)?;
    Ok(crate::procfs::utf8_prefix(buf))
}

/// Calls `f` with every line of `path` (without its newline), through one fixed line buffer. Lines
/// longer than [`PROC_LINE_MAX_BYTES`] or not UTF-8 are skipped whole.
fn for_each_line(path: &Path, mut f: impl FnMut(&str)) -> io::Result<()> {
    let file = fs::File::open(path)?;
    let mut reader = io::BufReader::with_capacity(STREAM_BUF_BYTES, file);
    let mut line: heapless::Vec<u8, PROC_LINE_MAX_BYTES> = heapless::Vec::new();
    let mut overlong = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        for &b in chunk {
            if b == b'\n' {
                if !overlong {
                    if let Ok(s) = core::str::from_utf8(&line) {
                        f(s);
                    }
                }
                line.clear();
                overlong = false;
            } else if !overlong && line.push(b).is_err() {
                overlong = true;
            }
        }
        reader.consume(n);
    }
    if !overlong && !line.is_empty() {
        if let Ok(s) = core::str::from_utf8(&line) {
            f(s);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/host")
            .join(rel)
    }

    fn text(rel: &str) -> String {
        fs::read_to_string(fixture(rel)).unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn ips(list: &[&str]) -> Vec<Ipv4Addr> {
        list.iter().map(|s| ip(s)).collect()
    }

    const ID64: &str = "0c6c216d3fd5bbcba882a60314bfdf81b8cc53c7f5034442374045a735ab7c20";

    #[test]
    fn container_id_table() {
        let v1 = format!("12:memory:/docker/{ID64}\n0::/docker/{ID64}\n");
        let scope = format!("0::/system.slice/docker-{ID64}.scope\n");
        let podman = format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID64}.scope/container\n"
        );
        let no_scope = format!("0::/system.slice/docker-{ID64}\n");
        let upper = format!("0::/docker/{}\n", ID64.to_uppercase());
        let buildkit = format!("0::/docker/buildkit/x\n1:cpu:/docker/{ID64}\n");
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<(&'a str, IdSource)>,
        );
        let cases: &[Case] = &[
            (
                "v1 /docker/",
                &v1,
                None,
                Some(("0c6c216d3fd5", IdSource::Cgroup)),
            ),
            (
                "v2 systemd scope",
                &scope,
                None,
                Some(("0c6c216d3fd5", IdSource::Cgroup)),
            ),
            (
                "podman scope",
                &podman,
                None,
                Some(("0c6c216d3fd5", IdSource::Cgroup)),
            ),
            ("docker- without .scope", &no_scope, None, None),
            ("upper-case hex is not an ID", &upper, None, None),
            (
                "a short name after /docker/ is skipped, the next line taken",
                &buildkit,
                None,
                Some(("0c6c216d3fd5", IdSource::Cgroup)),
            ),
            // cgroup v2 with a private namespace: only HOSTNAME can tell.
            (
                "0::/ + hex HOSTNAME",
                "0::/\n",
                Some("8be77af56335"),
                Some(("8be77af56335", IdSource::Hostname)),
            ),
            (
                "0::/ + long hex HOSTNAME",
                "0::/\n",
                Some(ID64),
                Some(("0c6c216d3fd5", IdSource::Hostname)),
            ),
            (
                "0::/ + custom HOSTNAME",
                "0::/\n",
                Some("raspberrypi"),
                None,
            ),
            ("0::/ + short HOSTNAME", "0::/\n", Some("8be77af5633"), None),
            (
                "0::/ + upper-case HOSTNAME",
                "0::/\n",
                Some("8BE77AF56335"),
                None,
            ),
            (
                "0::/ + multibyte HOSTNAME",
                "0::/\n",
                Some("8be77af5633é"),
                None,
            ),
            ("0::/ + no HOSTNAME", "0::/\n", None, None),
            (
                "cgroup wins over HOSTNAME",
                &v1,
                Some("8be77af56335"),
                Some(("0c6c216d3fd5", IdSource::Cgroup)),
            ),
            ("empty", "", None, None),
        ];
        for (what, cgroup, host, want) in cases {
            assert_eq!(parse_container_id(cgroup, *host), *want, "{what}");
        }
    }

    #[test]
    fn container_id_fixtures() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // Recorded on the VM: the agent's own shell (not in a container).
            ("cgroup/vm-host-v1.txt", None, None),
            ("cgroup/vm-host-v1.txt", Some("vm"), None),
            // Recorded in a container, cgroup v1, host cgroup namespace.
            ("cgroup/vm-container-v1.txt", None, Some("0c6c216d3fd5")),
            // Recorded in a container with --cgroupns private: only HOSTNAME (recorded in the same run).
            ("cgroup/vm-container-v1-private-ns.txt", None, None),
            (
                "cgroup/vm-container-v1-private-ns.txt",
                Some("7dc63afef82e"),
                Some("7dc63afef82e"),
            ),
            ("vm/t0/proc/self/cgroup", Some("vm"), None),
            ("pi/t0/proc/self/cgroup", None, Some("3f4e5d6c7b8a")),
            ("cgv2/proc/self/cgroup", None, None),
        ];
        for (file, host, want) in cases {
            let cg = text(file);
            assert_eq!(
                parse_container_id(&cg, *host).map(|(id, _)| id),
                *want,
                "{file} {host:?}"
            );
        }
    }

    #[test]
    fn detect_mode_on_trees() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("vm/t0/proc", Some("vm"), None),
            ("pi/t0/proc", None, Some("3f4e5d6c7b8a")),
            ("cgv2/proc", Some("4be4c1d3e2f1"), Some("4be4c1d3e2f1")),
            ("cgv2/proc", Some("debian-v2"), None),
            // No /proc at all: only HOSTNAME is left.
            ("missing/proc", Some("4be4c1d3e2f1"), Some("4be4c1d3e2f1")),
            ("missing/proc", None, None),
        ];
        for (dir, host, want) in cases {
            let mode = detect_mode(&fixture(dir), *host);
            assert_eq!(mode.container_id(), *want, "{dir}");
            let line = mode.to_string();
            assert!(
                line.starts_with(if want.is_some() {
                    "container mode"
                } else {
                    "systemd mode"
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn sanitize_hostname_table() {
        let long_ascii = "a".repeat(300);
        // 'é' is two bytes: 128 of them are 256 bytes, so the cut lands before the last one.
        let long_multibyte = "é".repeat(128);
        let cases: &[(&str, &str)] = &[
            ("vm", "vm"),
            ("  vm \n", "vm"),
            ("<script>host</script>", "scripthost/script"),
            ("pi\u{0}\u{7}\u{1b}[0m4", "pi[0m4"),
            ("tab\there", "tabhere"),
            ("nbsp\u{a0}name", "nbspname"),
            ("zero\u{200b}width\u{feff}", "zerowidth"),
            ("private\u{e000}use", "privateuse"),
            ("two words", "two words"),
            ("Büro-Pi ✓", "Büro-Pi ✓"),
            ("<>", ""),
            ("\u{2003} \u{2003}", ""),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_hostname(raw).as_str(), *want, "{raw:?}");
        }
        assert_eq!(sanitize_hostname(&long_ascii).len(), 255);
        let cut = sanitize_hostname(&long_multibyte);
        assert_eq!(cut.len(), 254);
        assert!(cut.chars().all(|c| c == 'é'));
        // A cut that leaves a space at the end is trimmed again.
        let spaced = format!("{} b", "a".repeat(254));
        assert_eq!(sanitize_hostname(&spaced).as_str(), "a".repeat(254));
    }

    #[test]
    fn choose_hostname_table() {
        use HostnameSource::*;
        let engine_legacy = "IFO2:3MUH:VFNQ:HHBS:6AHF:4QO6:44YY:KEHL:BR3S:SSCZ:MZVF:4HJM";
        let engine_uuid = "d7d3a2f0-1b2c-4d5e-8f90-a1b2c3d4e5f6";
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            &'a str,
            HostnameSource,
        );
        let cases: &[Case] = &[
            (
                Some("garage-pi"),
                Some("vm"),
                Some("c0ffee123456"),
                engine_legacy,
                "garage-pi",
                AgentName,
            ),
            (
                Some("  garage-pi \n"),
                Some("vm"),
                None,
                engine_legacy,
                "garage-pi",
                AgentName,
            ),
            (Some("   "), Some("vm"), None, engine_legacy, "vm", Daemon),
            (Some(""), Some("vm"), None, engine_legacy, "vm", Daemon),
            (
                None,
                Some("vm"),
                Some("c0ffee123456"),
                engine_legacy,
                "vm",
                Daemon,
            ),
            // Deviation: a name of only stripped characters falls through to the next tier.
            (
                Some("<>"),
                Some("\u{1}"),
                Some("raspberrypi"),
                engine_legacy,
                "raspberrypi",
                Os,
            ),
            (
                None,
                Some(""),
                Some("raspberrypi"),
                engine_legacy,
                "raspberrypi",
                Os,
            ),
            (None, None, None, engine_legacy, "IFO2:3MUH:VF", EngineId),
            (None, None, Some(""), engine_uuid, "d7d3a2f0-1b2", EngineId),
            (None, None, None, "short", "short", EngineId),
            (None, None, None, "", "", EngineId),
        ];
        for (agent, daemon, os, engine, want, source) in cases {
            let (name, got_source) = choose_hostname(*agent, *daemon, *os, engine);
            assert_eq!(
                (name.as_str(), got_source),
                (*want, *source),
                "{agent:?} {daemon:?} {os:?}"
            );
        }
        let names: Vec<&str> = [AgentName, Daemon, Os, EngineId]
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(names, ["agent_name", "daemon", "os", "engine_id"]);
    }

    #[test]
    fn read_os_hostname_on_trees() {
        let cases: &[(&str, Option<&str>)] = &[
            ("vm/t0/proc", Some("vm")),
            ("pi/t0/host/proc", Some("raspberrypi")),
            ("cgv2/host/proc", Some("debian-v2")),
            ("missing/proc", None),
        ];
        for (dir, want) in cases {
            assert_eq!(read_os_hostname(&fixture(dir)).as_deref(), *want, "{dir}");
        }
    }

    #[test]
    fn arch_table() {
        let cases = [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("arm", "arm"),
            ("riscv64", "riscv64"),
            ("x86", "x86"),
            ("powerpc64", "powerpc64"),
        ];
        for (rust, go) in cases {
            assert_eq!(go_arch(rust), go, "{rust}");
        }
        let want = if cfg!(target_arch = "x86_64") {
            "amd64"
        } else if cfg!(target_arch = "aarch64") {
            "arm64"
        } else if cfg!(target_arch = "arm") {
            "arm"
        } else {
            std::env::consts::ARCH
        };
        assert_eq!(agent_arch(), want);
        assert_eq!(agent_os(), "linux");
    }

    #[test]
    fn fib_trie_local_table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Main:\n  +-- 0.0.0.0/0 3 0 4\n     |-- 192.0.2.2\n        /32 host LOCAL\n",
                &["192.0.2.2"],
            ),
            // Other entries of a leaf are not local addresses.
            (
                "|-- 192.0.2.0\n   /24 link UNICAST\n|-- 192.0.2.255\n   /32 link BROADCAST\n",
                &[],
            ),
            ("|-- 127.0.0.0\n   /8 host LOCAL\n", &[]),
            // A leaf with two entries, the local one second; a trailing tos field.
            (
                "|-- 10.0.0.1\n   /24 link UNICAST\n   /32 host LOCAL tos=0\n",
                &["10.0.0.1"],
            ),
            // An entry after an inner node line belongs to no leaf.
            (
                "|-- 10.0.0.1\n+-- 10.0.0.0/24 2 0 2\n   /32 host LOCAL\n",
                &[],
            ),
            ("|-- not-an-ip\n   /32 host LOCAL\n", &[]),
            ("/32 host LOCAL\n", &[]),
            ("", &[]),
        ];
        for (input, want) in cases {
            let got: Vec<Ipv4Addr> = fib_trie_local(input).collect();
            assert_eq!(got, ips(want), "{input:?}");
        }
        // Recorded: Main and Local both list the three local addresses.
        let got: Vec<Ipv4Addr> = fib_trie_local(&text("vm/t0/proc/net/fib_trie")).collect();
        assert_eq!(
            got,
            ips(&[
                "127.0.0.1",
                "172.17.0.1",
                "192.0.2.2",
                "127.0.0.1",
                "172.17.0.1",
                "192.0.2.2"
            ])
        );
    }

    #[test]
    fn parse_route_line_table() {
        let r = |iface: &str, net: &str, len: u8| Route {
            iface: heapless::String::try_from(iface).unwrap(),
            net: ip(net),
            prefix_len: len,
        };
        let cases: &[(&str, Option<Route>)] = &[
            ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT", None),
            // Recorded lines (little-endian words).
            ("docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0      ", Some(r("docker0", "172.17.0.0", 16))),
            ("eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0", Some(r("eth0", "192.0.2.0", 24))),
            // Default route through a gateway, and a default route without one.
            ("eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0", None),
            ("wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0", None),
            // A subnet behind a gateway, a reject route, a route that is not up.
            ("eth0\t0000000A\t010200C0\t0003\t0\t0\t0\t000000FF\t0\t0\t0", None),
            ("eth0\t0000000A\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0", None),
            ("eth0\t0000000A\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0", None),
            // A host route.
            ("tun0\t0100080A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0", Some(r("tun0", "10.8.0.1", 32))),
            // Non-contiguous mask, junk, short line, name too long for IFNAMSIZ.
            ("eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0", None),
            ("eth0\tzz\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0", None),
            ("eth0\t0000000A\t00000000\t0001", None),
            ("abcdefghijklmnop\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_route_line(line), *want, "{line:?}");
        }
    }

    #[test]
    fn subnet_and_filters_table() {
        let cases = [
            ("172.17.0.1", "172.17.0.0", 16, true),
            ("172.18.0.1", "172.17.0.0", 16, false),
            ("192.168.100.1", "192.168.100.0", 24, true),
            ("10.0.0.5", "0.0.0.0", 0, true),
            ("10.0.0.5", "10.0.0.5", 32, true),
            ("10.0.0.6", "10.0.0.5", 32, false),
            ("10.0.0.5", "10.0.0.5", 33, false),
        ];
        for (a, net, len, want) in cases {
            assert_eq!(in_subnet(ip(a), ip(net), len), want, "{a} in {net}/{len}");
        }
        for (name, want) in [
            ("eth0", true),
            ("wlan0", true),
            ("wg0", true),
            ("tailscale0", true),
            ("docker1", true),
            ("lo", false),
            ("lo0", true),
            ("docker0", false),
            ("docker_gwbridge", false),
            ("cni0", false),
            ("cni-podman0", false),
            ("veth3c1a2b4", false),
            ("br-5e3f1c2d7a9b", false),
            ("virbr0", false),
            ("flannel.1", false),
            ("cali12ab", false),
            ("weave", false),
            ("podman1", false),
            ("vxlan.calico", false),
            ("tunl0", false),
            ("tun0", true),
        ] {
            assert_eq!(is_reported_interface(name), want, "{name}");
        }
        for (a, want) in [
            ("127.0.0.1", false),
            ("127.1.2.3", false),
            ("169.254.12.34", false),
            ("169.255.0.1", true),
            ("192.0.2.2", true),
        ] {
            assert_eq!(is_reported_addr(ip(a)), want, "{a}");
        }
    }

    #[test]
    fn systemd_host_ips_on_trees() {
        let cases: &[(&str, &str, &[&str])] = &[
            // Recorded: docker0's 172.17.0.1 is excluded by name.
            ("vm/t0/proc", "vm/t0/sys", &["192.0.2.2"]),
            // Hand-written Pi: eth0 (index 2) and wlan0 (index 3) share 192.168.1.0/24; wg0 (index 9) is
            // `unknown`; tailscale0's /32 has no connected route; usb0 is down; docker0 and br-* are
            // excluded by name; 169.254.12.34 is link-local.
            (
                "pi/t0/host/proc",
                "pi/t0/host/sys",
                &["192.168.1.23", "192.168.1.24", "10.8.0.2"],
            ),
            // No route file: nothing.
            ("cgv2/host/proc", "cgv2/sys", &[]),
            ("missing/proc", "missing/sys", &[]),
        ];
        for (proc_dir, sys_dir, want) in cases {
            let got = systemd_host_ips(&fixture(proc_dir), &fixture(sys_dir));
            assert_eq!(got.as_slice(), ips(want).as_slice(), "{proc_dir}");
        }
    }

    #[test]
    fn container_host_ips_on_trees() {
        let docker_vm = [(ip("172.17.0.0"), 16)];
        let docker_pi = [(ip("172.17.0.0"), 16), (ip("172.18.0.0"), 16)];
        let docker_v2 = [
            (ip("172.17.0.0"), 16),
            (ip("172.20.0.0"), 16),
            (ip("192.168.100.0"), 24),
        ];
        type Case<'a> = (&'a str, &'a [(Ipv4Addr, u8)], &'a [&'a str]);
        let cases: &[Case] = &[
            // Recorded: the spec's example answer.
            ("vm/t0/proc", &docker_vm, &["192.0.2.2"]),
            ("vm/t0/proc", &[], &["172.17.0.1", "192.0.2.2"]),
            // Container mode knows no interfaces: the Tailscale and the down usb0 addresses stay.
            (
                "pi/t0/host/proc",
                &docker_pi,
                &[
                    "10.8.0.2",
                    "100.101.102.103",
                    "192.168.1.23",
                    "192.168.1.24",
                    "192.168.7.2",
                ],
            ),
            ("cgv2/host/proc", &docker_v2, &["10.0.0.5"]),
            ("missing/proc", &docker_vm, &[]),
        ];
        for (host_proc, subnets, want) in cases {
            let got = container_host_ips(&fixture(host_proc), subnets);
            assert_eq!(got.as_slice(), ips(want).as_slice(), "{host_proc}");
            // The streaming reader and the pure function agree.
            if let Ok(t) = fs::read_to_string(fixture(host_proc).join("1/net/fib_trie")) {
                assert_eq!(container_ips_from_fib_trie(&t, subnets), got, "{host_proc}");
            }
        }
    }

    #[test]
    fn host_ips_stop_at_the_backend_limit() {
        let mut text = String::from("Local:\n");
        for i in 0..80u8 {
            text.push_str(&format!("  |-- 10.0.{i}.1\n     /32 host LOCAL\n"));
        }
        let got = container_ips_from_fib_trie(&text, &[]);
        assert_eq!(got.len(), HOST_IPS_MAX_COUNT);
        assert_eq!(got[0], ip("10.0.0.1"));
        assert_eq!(got[49], ip("10.0.49.1"));
    }
}
